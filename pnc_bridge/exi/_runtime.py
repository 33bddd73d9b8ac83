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
        result = 0
        shift = 0
        for _ in range(max_groups):
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
        if self.boolean():
            return -self.uint(max_groups) - 1
        return self.uint(max_groups)

    # ---- strings and binaries (EXI 7.1.10, 7.1.1, 7.3) ---------------------- #

    def _length(self, what: str, lo: int | None, hi: int | None, unit_bits: int) -> int:
        at = self.pos
        n = self.uint(5)
        if hi is not None and n > hi and self.strict:
            raise ExiDecodeError(at, f"{what} length {n} exceeds maxLength {hi}")
        if lo is not None and n < lo and self.strict:
            raise ExiDecodeError(at, f"{what} length {n} below minLength {lo}")
        if n * unit_bits > self.end - self.pos:
            raise ExiDecodeError(at, f"{what} length {n} exceeds the remaining input")
        return n

    def blob(self, n: int) -> bytes:
        """n whole bytes at the current bit position."""
        p = self.pos
        q = p + 8 * n
        if q > self.end:
            raise ExiDecodeError(p, "unexpected end of stream")
        b = p >> 3
        off = p & 7
        self.pos = q
        if off == 0:
            return self.data[b : b + n]
        v = int.from_bytes(self.data[b : b + n + 1], "big") >> (8 - off)
        return (v & ((1 << (8 * n)) - 1)).to_bytes(n, "big")

    def binary(self, lo: int | None = None, hi: int | None = None) -> bytes:
        n = self._length("binary", lo, hi, 8)
        return self.blob(n)

    def string(self, lo: int | None = None, hi: int | None = None) -> str:
        at = self.pos
        code = self.uint(5)
        if code < 2:
            # 0 = local value hit, 1 = global value hit: ISO 15118 streams carry no string
            # table entries (valuePartitionCapacity 0), so a hit cannot be resolved.
            raise ExiDecodeError(at, "string table hit, but ISO 15118 streams use no string table")
        n = code - 2
        if hi is not None and n > hi and self.strict:
            raise ExiDecodeError(at, f"string length {n} exceeds maxLength {hi}")
        if lo is not None and n < lo and self.strict:
            raise ExiDecodeError(at, f"string length {n} below minLength {lo}")
        if n * 8 > self.end - self.pos:
            raise ExiDecodeError(at, f"string length {n} exceeds the remaining input")
        if n == 0:
            return ""
        start = self.pos
        raw = self.blob(n)
        if raw.isascii():  # every character one 7-bit group: the bytes are the code points
            return raw.decode("ascii")
        self.pos = start
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
            self.bits(v, 8)
            return
        acc = 0
        n = 0
        while v >= 0x80:
            acc = (acc << 8) | (0x80 | (v & 0x7F))
            v >>= 7
            n += 8
        acc = (acc << 8) | v
        self.bits(acc, n + 8)

    def integer(self, v: int) -> None:
        if v < 0:
            self.bits(1, 1)
            self.uint(-v - 1)
        else:
            self.bits(0, 1)
            self.uint(v)

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
        self.uint(len(data))
        self.blob(data)

    def string(self, s: str) -> None:
        self.uint(len(s) + 2)
        if s.isascii():
            self.blob(s.encode("ascii"))
        else:
            for ch in s:
                self.uint(ord(ch))

    def getvalue(self) -> bytes:
        pad = (-self.n) & 7
        if pad:
            self.acc <<= pad
            self.n += pad
        self._flush()
        return bytes(self.buf)
