"""`pnc-bridge exi ...` as a user runs it: one item or a stream of items per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.exi.vectors import load

CURRENT_DEMAND = next(v for v in load(schemas=("iso2",)) if v["msg"] == "CurrentDemandReq" and not v.get("negative"))


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "pnc_bridge", "exi", *args],
        input=stdin, capture_output=True, text=True, timeout=120, env=env, cwd=REPO,
    )


def test_decode_json_and_xml():
    out = cli("decode", "--schema", "iso2", CURRENT_DEMAND["hex"])
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert "CurrentDemandReq" in doc["V2G_Message"]["Body"]
    out = cli("decode", "--schema", "iso2", "--format", "xml", CURRENT_DEMAND["hex"])
    assert out.returncode == 0 and "<v2gci_b:CurrentDemandReq>" in out.stdout


def test_decode_accepts_a_whole_v2gtp_frame():
    payload = bytes.fromhex(CURRENT_DEMAND["hex"])
    frame = bytes([1, 0xFE, 0x80, 0x01]) + len(payload).to_bytes(4, "big") + payload
    out = cli("decode", "--schema", "iso2", frame.hex())
    assert out.returncode == 0, out.stderr


def test_encode_round_trip_through_files(tmp_path):
    for fmt in ("json", "xml"):
        dec = cli("decode", "--schema", "iso2", "--format", fmt, CURRENT_DEMAND["hex"])
        f = tmp_path / f"m.{fmt}"
        f.write_text(dec.stdout)
        enc = cli("encode", "--schema", "iso2", str(f))
        assert enc.returncode == 0, enc.stderr
        assert bytes.fromhex(enc.stdout.strip()).rstrip(b"\0") == bytes.fromhex(CURRENT_DEMAND["hex"]).rstrip(b"\0")


def test_streams_many_items_with_errors_per_item():
    vectors = [v for v in load(schemas=("din",)) if not v.get("negative")][:50]
    lines = "\n".join([v["hex"] for v in vectors] + ["not-hex", "8000"]) + "\n"
    out = cli("decode", "--schema", "din", "-", stdin=lines)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 52
    assert all("json" in r for r in rows[:50])
    assert "error" in rows[50] and "error" in rows[51]
    assert out.returncode == 1  # some items failed
    # and back: one JSON document per line -> hex per line
    docs = "\n".join(json.dumps(r["json"]) for r in rows[:50]) + "\n{\"nope\": 1}\n"
    enc = cli("encode", "--schema", "din", "-", stdin=docs)
    back = [json.loads(line) for line in enc.stdout.splitlines()]
    assert [bytes.fromhex(b["hex"]).rstrip(b"\0") for b in back[:50]] == [bytes.fromhex(v["hex"]).rstrip(b"\0") for v in vectors]
    assert "error" in back[50]


@pytest.mark.parametrize(
    "args,fragment",
    [
        (("decode", "--schema", "iso2", "zz"), "cannot decode"),
        (("decode", "--schema", "iso2", "8098"), "unexpected end of stream"),
        (("encode", "--schema", "iso2", "/nonexistent.xml"), "cannot read"),
        (("decode", "--schema", "iso3", "80"), "invalid choice"),
    ],
)
def test_user_errors_are_one_line_without_traceback(args, fragment):
    out = cli(*args)
    assert out.returncode != 0
    assert fragment in out.stderr
    assert "Traceback" not in out.stderr


def test_generate_check_reports_up_to_date():
    out = cli("generate", "--check")
    if "generation failed" in out.stderr:
        pytest.skip(out.stderr.strip())
    assert out.returncode == 0, out.stderr
