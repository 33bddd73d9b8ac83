"""EMAID: the e-mobility account identifier carried in the contract certificate's CN.

Rules of this module:

- Syntax per ISO 15118-2 Annex H (the same identifier is used by ISO 15118-20):
  ``<Country Code> <S> <Provider ID> <S> <eMA Instance> <S> <Check Digit>`` where the
  country code is 2 letters (ISO 3166-1 alpha-2), the provider ID 3 letters or digits, the
  eMA instance 9 letters or digits, the check digit 1 letter or digit and may be left out,
  and ``<S>`` is an optional ``-``. On the wire (``eMAIDType`` of the -2 XSD) it is
  14 or 15 characters, i.e. without separators.
- The older DIN SPEC 91286 form (6-character instance, numeric or ``X`` check digit,
  ``*`` or ``-`` separators) is recognised and reported as such, so an admin sees why a
  contract is refused; it is not a valid ISO 15118 EMAID.
- The check digit is the eMI3 algorithm ("Check Digit Calculation for Contract-IDs"),
  which ISO 15118 refers to: every character is read as a 2x2 matrix, row one over GF(2)
  and row two over GF(3), each position is weighted by a power of a fixed matrix, and the
  sum is mapped back to a character. It detects every single-character error and every
  swap of two adjacent characters.
- Comparison is case-insensitive; :meth:`Emaid.compact` is the normalised form (upper
  case, no separators) that goes to OCPP as the ``eMAID`` idToken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_ISO_RE = re.compile(
    r"(?P<country>[A-Z]{2})(?P<s>-?)(?P<provider>[A-Z0-9]{3})(?P=s)"
    r"(?P<instance>[A-Z0-9]{9})(?:(?P=s)(?P<check>[A-Z0-9]))?"
)
_DIN_RE = re.compile(
    r"(?P<country>[A-Z]{2})(?P<s>[-*]?)(?P<provider>[A-Z0-9]{3})(?P=s)"
    r"(?P<instance>[A-Z0-9]{6})(?:(?P=s)(?P<check>[0-9X]))?"
)


class EmaidError(ValueError):
    """The text is not an ISO 15118 EMAID; the message says which rule it breaks."""


@dataclass(frozen=True)
class Emaid:
    country: str
    provider: str
    instance: str
    check_digit: str | None

    def compact(self) -> str:
        """Upper case, no separators: the 14 or 15 characters of ``eMAIDType``."""
        return f"{self.country}{self.provider}{self.instance}{self.check_digit or ''}"

    def __str__(self) -> str:
        parts = [self.country, self.provider, self.instance]
        if self.check_digit:
            parts.append(self.check_digit)
        return "-".join(parts)

    @property
    def check_digit_ok(self) -> bool | None:
        """``None`` without a check digit, else whether it matches the eMI3 algorithm."""
        if self.check_digit is None:
            return None
        return self.check_digit == emaid_check_digit(
            f"{self.country}{self.provider}{self.instance}"
        )


def parse_emaid(text: str, *, verify_check_digit: bool = False) -> Emaid:
    """Parse an EMAID in ISO 15118-2 Annex H form, with or without ``-`` separators.

    Raises :class:`EmaidError` with a one-line reason. With ``verify_check_digit`` a check
    digit that is present must also be right (an absent one is accepted, as Annex H allows).
    """
    if not isinstance(text, str):
        raise EmaidError(f"EMAID must be text, not {type(text).__name__}")
    candidate = text.strip().upper()
    match = _ISO_RE.fullmatch(candidate)
    if match is None:
        if _DIN_RE.fullmatch(candidate):
            raise EmaidError(
                f"{text!r} is a DIN SPEC 91286 contract ID (6-character instance), "
                "not an ISO 15118 EMAID (9-character eMA instance)"
            )
        raise EmaidError(
            f"{text!r} is not an EMAID: expected 2 letters (country), 3 letters/digits "
            "(provider), 9 letters/digits (eMA instance) and an optional check digit, "
            "optionally separated by '-'"
        )
    emaid = Emaid(
        country=match["country"],
        provider=match["provider"],
        instance=match["instance"],
        check_digit=match["check"],
    )
    if verify_check_digit and emaid.check_digit_ok is False:
        expected = emaid_check_digit(emaid.compact()[:14])
        raise EmaidError(
            f"EMAID {text!r} has check digit {emaid.check_digit!r}, expected {expected!r}"
        )
    return emaid


# --------------------------------------------------------------------------- #
# eMI3 check digit                                                             #
# --------------------------------------------------------------------------- #
# A character c with index k in 0-9A-Z is the matrix [[a, b], [c, d]] with
# k = 18a + 9b + 3c + d, a, b in GF(2) and c, d in GF(3). Position i (0-based) of the
# 14-character ID contributes its first row times P1^(i+1) (mod 2) and its second row
# times P2^(i+1) (mod 3). The GF(3) sum is multiplied by -P2^-15 so that appending the
# check digit makes the weighted sum over all 15 positions zero.

_Matrix = tuple[tuple[int, int], tuple[int, int]]


def _mat_mul(x: _Matrix, y: _Matrix, mod: int) -> _Matrix:
    return (
        ((x[0][0] * y[0][0] + x[0][1] * y[1][0]) % mod, (x[0][0] * y[0][1] + x[0][1] * y[1][1]) % mod),
        ((x[1][0] * y[0][0] + x[1][1] * y[1][0]) % mod, (x[1][0] * y[0][1] + x[1][1] * y[1][1]) % mod),
    )


def _powers(p: _Matrix, mod: int, count: int) -> list[_Matrix]:
    out = [p]
    while len(out) < count:
        out.append(_mat_mul(out[-1], p, mod))
    return out


_P1: _Matrix = ((0, 1), (1, 1))  # over GF(2)
_P2: _Matrix = ((0, 1), (1, 2))  # over GF(3)
_P1_POWERS = _powers(_P1, 2, 14)
_P2_POWERS = _powers(_P2, 3, 15)


def _inverse_mod3(m: _Matrix) -> _Matrix:
    det = (m[0][0] * m[1][1] - m[0][1] * m[1][0]) % 3
    det_inv = det  # in GF(3), 1 and 2 are their own inverses
    return (
        ((m[1][1] * det_inv) % 3, (-m[0][1] * det_inv) % 3),
        ((-m[1][0] * det_inv) % 3, (m[0][0] * det_inv) % 3),
    )


_NEG_P2_INV_15: _Matrix = tuple(  # type: ignore[assignment]
    tuple((-v) % 3 for v in row) for row in _inverse_mod3(_P2_POWERS[14])
)


def _row_times(row: tuple[int, int], m: _Matrix, mod: int) -> tuple[int, int]:
    return ((row[0] * m[0][0] + row[1] * m[1][0]) % mod, (row[0] * m[0][1] + row[1] * m[1][1]) % mod)


def emaid_check_digit(first14: str) -> str:
    """The eMI3 check digit of the 14 characters country + provider + instance."""
    chars = first14.upper()
    if len(chars) != 14 or any(c not in _ALPHABET for c in chars):
        raise EmaidError(f"check digit needs 14 letters or digits, got {first14!r}")
    sum1 = (0, 0)
    sum2 = (0, 0)
    for i, c in enumerate(chars):
        k = _ALPHABET.index(c)
        row1 = (k // 18, (k // 9) % 2)
        row2 = ((k // 3) % 3, k % 3)
        sum1 = tuple(a + b for a, b in zip(sum1, _row_times(row1, _P1_POWERS[i], 2)))  # type: ignore[assignment]
        sum2 = tuple(a + b for a, b in zip(sum2, _row_times(row2, _P2_POWERS[i], 3)))  # type: ignore[assignment]
    a, b = sum1[0] % 2, sum1[1] % 2
    c, d = _row_times((sum2[0] % 3, sum2[1] % 3), _NEG_P2_INV_15, 3)
    return _ALPHABET[18 * a + 9 * b + 3 * c + d]


def with_check_digit(first14: str) -> str:
    """Append the eMI3 check digit: ``DE8AA001234567`` -> 15 characters."""
    return first14.upper() + emaid_check_digit(first14)


__all__ = ["Emaid", "EmaidError", "emaid_check_digit", "parse_emaid", "with_check_digit"]
