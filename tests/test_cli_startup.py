"""The `pnc-bridge` command starts fast: building the parser (what --help and every
sub-command pay) must not load the generated OCPP models or EXI codecs."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_parser_does_not_import_heavy_modules():
    code = (
        "import sys; from pnc_bridge.cli import build_parser; build_parser(); "
        "heavy = [m for m in sys.modules if m.startswith(('pnc_bridge.exi._generated.', 'pnc_bridge.ocpp._generated.'))]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_help_lists_every_area():
    out = subprocess.run([sys.executable, "-m", "pnc_bridge", "--help"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0
    for cmd in ("run", "exi", "pki", "link", "ocpp", "hil"):
        assert cmd in out.stdout
