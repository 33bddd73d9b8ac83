"""The generated models match the generator and the installed official schemas."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pnc_bridge.ocpp import _codegen
from pnc_bridge.ocpp._generated import v201, v21


@pytest.mark.parametrize("module", sorted(_codegen.VERSIONS))
def test_committed_models_equal_a_fresh_generation(module: str, tmp_path: Path) -> None:
    fresh = _codegen.generate(module, tmp_path)
    committed = _codegen.GENERATED_DIR / f"{module}.py"
    assert fresh.read_text(encoding="utf-8") == committed.read_text(encoding="utf-8"), (
        f"{committed} drifted from the generator: run `pnc-bridge ocpp generate`"
    )


@pytest.mark.parametrize("models,module", [(v201, "v201"), (v21, "v21")])
def test_schema_hashes_match_the_installed_ocpp_package(models, module: str) -> None:
    directory = _codegen.schema_dir(module)
    on_disk = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.glob("*.json")}
    assert on_disk == models.SCHEMA_SHA256


def test_every_2_0_1_action_has_a_request_and_a_response_model() -> None:
    directory = _codegen.schema_dir("v201")
    actions = {p.name[: -len("Request.json")] for p in directory.glob("*Request.json")}
    assert actions == set(v201.ACTIONS)
    assert len(actions) == 64
    for action, (request, response) in v201.ACTIONS.items():
        assert (request.ocpp_action, request.ocpp_kind) == (action, "Request")
        assert (response.ocpp_action, response.ocpp_kind) == (action, "Response")


def test_models_have_every_schema_property_under_its_schema_name() -> None:
    directory = _codegen.schema_dir("v201")
    for path in directory.glob("*.json"):
        schema = json.loads(path.read_bytes().decode("utf-8-sig"))
        model = getattr(v201, path.stem)
        aliases = {f.alias for f in model.model_fields.values()}
        assert aliases == set(schema.get("properties", {})), path.name
        required = {f.alias for f in model.model_fields.values() if f.is_required()}
        assert required == set(schema.get("required", [])), path.name


@pytest.mark.parametrize(
    "name,snake",
    [
        ("idToken", "id_token"),
        ("iso15118CertificateHashData", "iso15118_certificate_hash_data"),
        ("responderURL", "responder_url"),
        ("bulkSoC", "bulk_soc"),
        ("ocppCsmsUrl", "ocpp_csms_url"),
        ("evMaxV2XEnergyRequest", "ev_max_v2x_energy_request"),
        ("limit_L2", "limit_l2"),
        ("type", "type"),
    ],
)
def test_field_name_rule(name: str, snake: str) -> None:
    assert _codegen.snake_name(name) == snake


def test_enum_members_are_the_standard_values() -> None:
    assert v201.MeasurandEnumType.Energy_Active_Import_Register.value == "Energy.Active.Import.Register"
    assert v201.IdTokenEnumType.eMAID.value == "eMAID"
    assert v201.PhaseEnumType.L1_N.value == "L1-N"


def test_generator_check_mode(tmp_path: Path) -> None:
    assert _codegen.check("v201") is True
    assert _codegen.check("v201", tmp_path) is False  # nothing generated there
