"""EMAID syntax (ISO 15118-2 Annex H) and the eMI3 check digit.

The check digit's defining property is tested, not a table copied from somewhere: it
changes under every single-character substitution and every swap of two adjacent
different characters (the error classes the eMI3 algorithm is designed to detect).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pnc_bridge.pki import EmaidError, emaid_check_digit, parse_emaid
from pnc_bridge.pki._emaid import with_check_digit

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
first14 = st.builds(
    lambda cc, rest: cc + rest,
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2),
    st.text(alphabet=ALNUM, min_size=12, max_size=12),
)


@pytest.mark.parametrize(
    "text, compact",
    [
        ("DE8AA001234567", "DE8AA001234567"),
        ("DE-8AA-001234567", "DE8AA001234567"),
        ("DE-8AA-001234567-X", "DE8AA001234567X"),
        ("de8aa001234567x", "DE8AA001234567X"),
        (" NL-TNM-000122045-U ", "NLTNM000122045U"),
    ],
)
def test_valid_forms(text, compact):
    assert parse_emaid(text).compact() == compact


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "not an EMAID"),
        ("DE8AA00123456", "not an EMAID"),  # 13 characters
        ("DE8AA0012345678X", "not an EMAID"),  # 16 characters
        ("D18AA001234567", "not an EMAID"),  # country code with a digit
        ("DE-8AA001234567", "not an EMAID"),  # separators must be used consistently
        ("DE*8AA*001234567", "not an EMAID"),
        ("DE-8AA-012345-6", "DIN SPEC 91286"),
        ("DE8AA00123456_", "not an EMAID"),
    ],
)
def test_invalid_forms(text, words):
    with pytest.raises(EmaidError, match=words):
        parse_emaid(text)


def test_check_digit_verified_only_on_request():
    good = with_check_digit("DE8AA001234567")
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    assert parse_emaid(bad).check_digit_ok is False
    assert parse_emaid(good, verify_check_digit=True).check_digit_ok is True
    assert parse_emaid("DE8AA001234567", verify_check_digit=True).check_digit_ok is None
    with pytest.raises(EmaidError, match="check digit"):
        parse_emaid(bad, verify_check_digit=True)


@given(first14, st.integers(0, 13), st.sampled_from(ALNUM))
def test_check_digit_detects_single_substitutions(emaid, position, replacement):
    changed = emaid[:position] + replacement + emaid[position + 1 :]
    if changed != emaid:
        assert emaid_check_digit(changed) != emaid_check_digit(emaid)


@given(first14, st.integers(0, 12))
def test_check_digit_detects_adjacent_swaps(emaid, position):
    swapped = emaid[:position] + emaid[position + 1] + emaid[position] + emaid[position + 2 :]
    if swapped != emaid:
        assert emaid_check_digit(swapped) != emaid_check_digit(emaid)


@given(first14)
def test_check_digit_is_one_alphanumeric_character(emaid):
    digit = emaid_check_digit(emaid)
    assert len(digit) == 1 and digit in ALNUM
    assert parse_emaid(emaid + digit, verify_check_digit=True).check_digit == digit


@given(st.text(max_size=40))
def test_arbitrary_text_parses_or_raises_emaid_error(text):
    try:
        parse_emaid(text)
    except EmaidError:
        pass
