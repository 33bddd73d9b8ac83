"""Device model rules (B05, B06, B07) and persistence, without a connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from pnc_bridge.ocpp import DeviceModel, OCPPCommCtrlr, SecurityCtrlr, Store, TxCtrlr
from pnc_bridge.ocpp._variables import ISO15118Ctrlr, StationSettings, standard_variables


def model(store: Store | None = None, **settings) -> DeviceModel:
    return DeviceModel(standard_variables(StationSettings(identity="CS1", basic_auth_password="A" * 16, **settings)), store)


def test_required_variables_of_the_issue_exist() -> None:
    dm = model()
    for key in (
        ISO15118Ctrlr.PnCEnabled, ISO15118Ctrlr.CentralContractValidationAllowed, ISO15118Ctrlr.ContractValidationOffline,
        ISO15118Ctrlr.V2GCertificateInstallationEnabled, ISO15118Ctrlr.ContractCertificateInstallationEnabled,
        ISO15118Ctrlr.SeccId, ISO15118Ctrlr.CountryName, ISO15118Ctrlr.OrganizationName,
        TxCtrlr.TxStartPoint, TxCtrlr.TxStopPoint, SecurityCtrlr.SecurityProfile, OCPPCommCtrlr.MessageAttempts,
    ):
        assert key in dm


@pytest.mark.parametrize(
    "component,variable,instance,value,status,reason",
    [
        ("Nope", "X", None, "1", "UnknownComponent", None),  # B05.FR.04
        ("OCPPCommCtrlr", "Nope", None, "1", "UnknownVariable", None),  # B05.FR.05
        ("OCPPCommCtrlr", "HeartbeatInterval", None, "abc", "Rejected", "InvalidValue"),  # B05.FR.07
        ("OCPPCommCtrlr", "HeartbeatInterval", None, "0", "Rejected", "ValueTooLow"),  # B05.FR.08
        ("OCPPCommCtrlr", "MessageTimeout", "Default", "10", "Rejected", "ReadOnly"),  # B05.FR.09
        ("OCPPCommCtrlr", "HeartbeatInterval", None, "60", "Accepted", None),  # B05.FR.10
        ("TxCtrlr", "TxStartPoint", None, "EVConnected,Authorized", "Accepted", None),
        ("TxCtrlr", "TxStartPoint", None, "Sunrise", "Rejected", "InvalidValue"),
        ("SecurityCtrlr", "BasicAuthPassword", None, "short", "Rejected", "InvalidValue"),  # A00.FR.205
        ("SecurityCtrlr", "BasicAuthPassword", None, "Valid-Password_0123", "Accepted", None),
        ("SecurityCtrlr", "BasicAuthPassword", None, "has space 0123456789", "Rejected", "InvalidValue"),
        ("ISO15118Ctrlr", "PnCEnabled", None, "TRUE", "Accepted", None),
        ("ISO15118Ctrlr", "PnCEnabled", None, "yes", "Rejected", "InvalidValue"),
    ],
)
def test_set_variable_statuses(component, variable, instance, value, status, reason) -> None:
    outcome = model().set_variable(component, None, None, None, variable, instance, value)
    assert (outcome.status, outcome.reason) == (status, reason)


def test_get_variable_statuses() -> None:
    dm = model()
    assert dm.get_variable("OCPPCommCtrlr", None, None, None, "HeartbeatInterval", None).status == "Accepted"
    assert dm.get_variable("SecurityCtrlr", None, None, None, "BasicAuthPassword", None).status == "Rejected"  # B06.FR.09
    assert dm.get_variable("OCPPCommCtrlr", None, None, None, "HeartbeatInterval", None, "Target").status == (
        "NotSupportedAttributeType"  # B06.FR.08
    )
    assert dm.get_variable("EVSE", None, 1, None, "AvailabilityState", None).status == "Accepted"
    assert dm.get_variable("EVSE", None, 7, None, "AvailabilityState", None).status == "UnknownComponent"


def test_booleans_are_normalised_and_written_values_persist(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    dm = model(store)
    assert dm.set_variable("ISO15118Ctrlr", None, None, None, "PnCEnabled", None, "FALSE").status == "Accepted"
    assert dm.set_variable("OCPPCommCtrlr", None, None, None, "HeartbeatInterval", None, "42").status == "Accepted"
    store.close()
    again = model(Store(tmp_path / "s.sqlite"))
    assert again.get(ISO15118Ctrlr.PnCEnabled) == "false"
    assert again.get_int(OCPPCommCtrlr.HeartbeatInterval) == 42


def test_a_changed_configured_default_wins_over_an_older_csms_value(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    dm = model(store, organization_name="Old Org")
    dm.set_variable("SecurityCtrlr", None, None, None, "OrganizationName", None, "Set By CSMS")
    store.close()
    kept = model(Store(tmp_path / "s.sqlite"), organization_name="Old Org")
    assert kept.get(SecurityCtrlr.OrganizationName) == "Set By CSMS"
    replaced = model(Store(tmp_path / "s.sqlite"), organization_name="New Org")
    assert replaced.get(SecurityCtrlr.OrganizationName) == "New Org"


def test_reports() -> None:
    dm = model()
    full = dm.report(base="FullInventory")
    config = dm.report(base="ConfigurationInventory")
    summary = dm.report(base="SummaryInventory")
    assert len(full) > len(config) > 0
    assert all(a["mutability"] != "ReadOnly" for row in config for a in row["variableAttribute"])
    assert {row["variable"]["name"] for row in summary} <= {"AvailabilityState", "Available", "Problem"}
    password = next(r for r in full if r["variable"]["name"] == "BasicAuthPassword")
    assert all("value" not in a for a in password["variableAttribute"])  # WriteOnly is never reported
