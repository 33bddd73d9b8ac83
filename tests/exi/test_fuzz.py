"""Hostile input: random bytes and mutated real messages give a message or
ExiDecodeError, never another exception, never a hang (pytest-timeout bounds every
test), and memory stays bounded whatever lengths the stream claims."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pnc_bridge import exi
from tests.exi.vectors import load

ALL = ("apphand", "din", "iso2", "iso20-common", "iso20-ac", "iso20-dc", "iso20-acdp", "iso20-wpt")
try:
    POSITIVE = [v for v in load() if not v.get("negative")]
except FileNotFoundError:  # pragma: no cover
    POSITIVE = []


def _decode_or_error(schema: str, data: bytes) -> None:
    try:
        msg = exi.decode(schema, data, strict=False)
    except exi.ExiDecodeError:
        return
    # whatever decodes must be a message object the rest of the stack can use
    assert hasattr(type(msg), "_exi_fields")


@pytest.mark.parametrize("schema", ALL)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300))
def test_random_bytes(schema, data):
    _decode_or_error(schema, data)


@pytest.mark.parametrize("schema", ALL)
@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_random_bytes_after_header(schema, data):
    _decode_or_error(schema, b"\x80" + data)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_vectors(data):
    v = data.draw(st.sampled_from(POSITIVE))
    raw = bytearray.fromhex(v["hex"])
    kind = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete", "ones", "overwrite"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(raw) * 8 - 1))
            raw[i // 8] ^= 0x80 >> (i % 8)
    elif kind == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif kind == "insert":
        i = data.draw(st.integers(0, len(raw)))
        raw[i:i] = data.draw(st.binary(min_size=1, max_size=16))
    elif kind == "delete":
        i = data.draw(st.integers(0, max(0, len(raw) - 1)))
        del raw[i : i + data.draw(st.integers(1, 16))]
    elif kind == "ones":
        i = data.draw(st.integers(1, max(1, len(raw) - 1)))
        raw[i:] = b"\xff" * (len(raw) - i)
    else:
        i = data.draw(st.integers(0, max(0, len(raw) - 1)))
        chunk = data.draw(st.binary(min_size=1, max_size=8))
        raw[i : i + len(chunk)] = chunk
    _decode_or_error(v["ns"], bytes(raw))


def test_every_truncation_of_every_curated_vector():
    """Each prefix of each captured message: a message (only where the prefix is itself a
    complete document) or ExiDecodeError. Catches any read past the end."""
    rng = random.Random(15118)
    for v in POSITIVE:
        raw = bytes.fromhex(v["hex"])
        cuts = range(len(raw)) if len(raw) <= 64 else sorted(rng.sample(range(len(raw)), 64))
        for n in cuts:
            _decode_or_error(v["ns"], raw[:n])


def test_huge_claimed_lengths_are_refused_before_allocation():
    # SessionSetupReq EVCCID (hexBinary max 8) claiming 2**34 bytes; a string claiming
    # 2**34 characters: both refused from the length alone.
    head = bytes.fromhex("80980211d63f74d2297ac911d0")  # iso2 ... up to the EVCCID length
    for tail in (b"\xff\xff\xff\xff\x7f", b"\x80\x80\x80\x80\x40"):
        with pytest.raises(exi.ExiDecodeError):
            exi.decode("iso2", head + tail + bytes(32))
    with pytest.raises(exi.ExiDecodeError, match="exceeds the"):
        exi.decode("iso2", b"\x80" + bytes(5 * 1024 * 1024))


def test_not_bytes_is_a_type_error():
    with pytest.raises(TypeError):
        exi.decode("iso2", "80980211")  # type: ignore[arg-type]
    with pytest.raises(exi.UnknownSchemaError):
        exi.decode("iso3", b"\x80")
