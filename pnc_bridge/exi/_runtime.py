"""EXI bit-packed stream primitives used by the generated codecs (EXI 1.0 section 7).

Rules of this module:

- ``Reader`` never reads past the end of its input: every read is checked against the
  bit length, so a truncated message raises ``ExiDecodeError`` instead of producing
  phantom zero bits (EXIficient reads phantom bits there and can spin on a huge string).
- Every length read from the stream (strings, binaries, unsigned integers) is checked
  against what the remaining input can hold before anything is allocated, so memory is
  bounded by the input size whatever the stream claims.
- Hot paths are written for CPython speed: a sliding window of the input held as one
  int, whole byte blobs moved with ``int.from_bytes``/``to_bytes`` rather than bit by bit.
"""

from __future__ import annotations

__all__ = ["ExiDecodeError", "ExiEncodeError", "Reader", "Writer"]

_WINDOW = 32  # bytes held in the reader's window


class ExiDecodeError(ValueError):
    """The bytes are not a valid EXI message of the schema (truncated, malformed,
    out of grammar, or a value outside the XSD facets). ``position`` is the bit offset
    from the start of the EXI stream where the problem was found."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"bit {position}: {reason}")
        self.position = position
        self.reason = reason


class ExiEncodeError(ValueError):
    """The message cannot be encoded: it does not conform to the schema (a missing
    required element, a value outside its facets, a wrong type). ``path`` names the
    offending field."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


class Reader:
    __slots__ = ("data", "pos", "end", "win", "wend", "strict")

    def __init__(self, data: bytes, strict: bool = True) -> None:
        self.data = bytes(data)
        self.end = len(self.data) * 8
        self.pos = 0
        self.win = 0
        self.wend = 0
        self.strict = strict

    # ---- bits --------------------------------------------------------------- #

    def _refill(self, q: int) -> None:
        if q > self.end:
            raise ExiDecodeError(self.pos, "unexpected end of stream")
        b = self.pos >> 3
        chunk = self.data[b : b + _WINDOW]
        self.win = int.from_bytes(chunk, "big")
        self.wend = (b + len(chunk)) << 3
        if q > self.wend:  # a read wider than the window (long n-bit values)
            chunk = self.data[b : (q + 7) >> 3]
            self.win = int.from_bytes(chunk, "big")
            self.wend = (b + len(chunk)) << 3

    def bits(self, n: int) -> int:
        q = self.pos + n
        if q > self.wend:
            self._refill(q)
        self.pos = q
        return (self.win >> (self.wend - q)) & ((1 << n) - 1)

    def boolean(self) -> bool:
        q = self.pos + 1
        if q > self.wend:
            self._refill(q)
        self.pos = q
        return bool((self.win >> (self.wend - q)) & 1)

    # ---- integers (EXI 7.1.6, 7.1.5) ---------------------------------------- #

    def uint(self, max_groups: int = 10) -> int:
        """Unsigned Integer: 7-bit groups, least significant first, high bit = more."""
        pos = self.pos
        q = pos + 8
        if q > self.wend:
            self._refill(q)
        b = (self.win >> (self.wend - q)) & 0xFF
        if b < 0x80:  # the common case: one octet
            self.pos = q
            return b
        result = b & 0x7F
        shift = 7
        pos = q
        for _ in range(max_groups - 1):
            q = pos + 8
            if q > self.wend:
                self.pos = pos
                self._refill(q)
            b = (self.win >> (self.wend - q)) & 0xFF
            pos = q
            result |= (b & 0x7F) << shift
            if b < 0x80:
                self.pos = pos
                return result
            shift += 7
        self.pos = pos
        raise ExiDecodeError(pos, f"unsigned integer longer than {max_groups} octets")

    def integer(self, max_groups: int = 10) -> int:
        """Integer: a sign bit, then the magnitude (minus one when negative)."""
        pos = self.pos
        q = pos + 9
        if q > self.wend:
            self._refill(q)
        x = (self.win >> (self.wend - q)) & 0x1FF
        negative = x & 0x100
        result = x & 0x7F
        if x & 0x80:  # more octets
            shift = 7
            pos = q
            for _ in range(max_groups - 1):
                q = pos + 8
                if q > self.wend:
                    self.pos = pos
                    self._refill(q)
                b = (self.win >> (self.wend - q)) & 0xFF
                pos = q
                result |= (b & 0x7F) << shift
                if b < 0x80:
                    break
                shift += 7
            else:
                self.pos = pos
                raise ExiDecodeError(pos, f"integer longer than {max_groups} octets")
        self.pos = q
        return -result - 1 if negative else result

    # ---- strings and binaries (EXI 7.1.10, 7.1.1, 7.3) ---------------------- #

    def _blob_at(self, p: int, n: int) -> bytes:
        b = p >> 3
        off = p & 7
        if off == 0:
            return self.data[b : b + n]
        return (int.from_bytes(self.data[b : b + n + 1], "big") >> (8 - off)).to_bytes(n + 1, "big")[1:]

    def blob(self, n: int) -> bytes:
        """n whole bytes at the current bit position, moved as one integer."""
        p = self.pos
        q = p + 8 * n
        if q > self.end:
            raise ExiDecodeError(p, "unexpected end of stream")
        self.pos = q
        return self._blob_at(p, n)

    def binary(self, lo: int | None = None, hi: int | None = None) -> bytes:
        """Binary (EXI 7.1.1): a length, then that many octets."""
        at = self.pos
        n = self.uint(5)
        if (hi is not None and n > hi or lo is not None and n < lo) and self.strict:
            raise ExiDecodeError(at, f"binary length {n} outside {lo or 0}..{hi}")
        p = self.pos
        q = p + 8 * n
        if q > self.end:
            raise ExiDecodeError(at, f"binary length {n} exceeds the remaining input")
        self.pos = q
        return self._blob_at(p, n)

    def string(self, lo: int | None = None, hi: int | None = None) -> str:
        """String (EXI 7.1.10) without string-table hits: length + 2, then code points."""
        at = self.pos
        code = self.uint(5)
        if code < 2:
            # 0 = local value hit, 1 = global value hit: ISO 15118 streams carry no string
            # table entries (valuePartitionCapacity 0), so a hit cannot be resolved.
            raise ExiDecodeError(at, "string table hit, but ISO 15118 streams use no string table")
        n = code - 2
        if (hi is not None and n > hi or lo is not None and n < lo) and self.strict:
            raise ExiDecodeError(at, f"string length {n} outside {lo or 0}..{hi}")
        p = self.pos
        q = p + 8 * n
        if q > self.end:
            raise ExiDecodeError(at, f"string length {n} exceeds the remaining input")
        raw = self._blob_at(p, n)
        if raw.isascii():  # every character one 7-bit group: the bytes are the code points
            self.pos = q
            return raw.decode("ascii")
        chars = []
        for _ in range(n):
            c = self.uint(3)
            if c > 0x10FFFF:
                raise ExiDecodeError(self.pos, f"code point {c:#x} out of range")
            chars.append(chr(c))
        return "".join(chars)

    # ---- errors -------------------------------------------------------------- #

    def fail(self, reason: str) -> "NoReturn":  # noqa: F821
        raise ExiDecodeError(self.pos, reason)

    def facet(self, reason: str) -> None:
        """A value outside its XSD facets: an error unless decoding leniently."""
        if self.strict:
            raise ExiDecodeError(self.pos, reason)


def _uint_code(v: int) -> tuple[int, int]:
    """The octets of an EXI Unsigned Integer (7-bit groups, least significant first)
    as one big-endian bit string: (value, width in bits)."""
    acc = 0
    n = 0
    while v >= 0x80:
        acc = (acc << 8) | (0x80 | (v & 0x7F))
        v >>= 7
        n += 8
    return (acc << 8) | v, n + 8


class Writer:
    __slots__ = ("buf", "acc", "n")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.acc = 0
        self.n = 0

    def _flush(self) -> None:
        k = self.n >> 3
        rem = self.n & 7
        self.buf += (self.acc >> rem).to_bytes(k, "big")
        self.acc &= (1 << rem) - 1
        self.n = rem

    def bits(self, v: int, n: int) -> None:
        self.acc = (self.acc << n) | v
        self.n += n
        if self.n > 256:
            self._flush()

    def uint(self, v: int) -> None:
        if v < 0x80:
            self.acc = (self.acc << 8) | v
            self.n += 8
        else:
            code, width = _uint_code(v)
            self.acc = (self.acc << width) | code
            self.n += width
        if self.n > 256:
            self._flush()

    def integer(self, v: int) -> None:
        if v < 0:
            v = -v - 1
            sign = 1
        else:
            sign = 0
        if v < 0x80:
            self.acc = (self.acc << 9) | (sign << 8) | v
            self.n += 9
        else:
            code, width = _uint_code(v)
            self.acc = (((self.acc << 1) | sign) << width) | code
            self.n += width + 1
        if self.n > 256:
            self._flush()

    def blob(self, data: bytes) -> None:
        if not data:
            return
        if self.n & 7 == 0:
            self._flush()
            self.buf += data
            return
        self.acc = (self.acc << (8 * len(data))) | int.from_bytes(data, "big")
        self.n += 8 * len(data)
        self._flush()

    def binary(self, data: bytes) -> None:
        """Binary (EXI 7.1.1): the length, then the octets, in one accumulation."""
        n = len(data)
        code, width = (n, 8) if n < 0x80 else _uint_code(n)
        self.acc = (self.acc << width) | code
        self.n += width
        if self.n & 7 == 0:  # byte-aligned: append the octets as they are
            self._flush()
            self.buf += data
            return
        self.acc = (self.acc << (8 * n)) | int.from_bytes(data, "big")
        self.n += 8 * n
        self._flush()

    def string(self, s: str) -> None:
        n = len(s) + 2
        if s.isascii():
            code, width = (n, 8) if n < 0x80 else _uint_code(n)
            self.acc = (((self.acc << width) | code) << (8 * (n - 2))) | int.from_bytes(s.encode("ascii"), "big")
            self.n += width + 8 * (n - 2)
            self._flush()
        else:
            self.uint(n)
            for ch in s:
                self.uint(ord(ch))

    def getvalue(self) -> bytes:
        pad = (-self.n) & 7
        if pad:
            self.acc <<= pad
            self.n += pad
        self._flush()
        return bytes(self.buf)
