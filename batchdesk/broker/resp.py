"""Reading Redis requests off a client's input buffer, as Redis's networking.c reads them.

A request is a RESP array of bulk strings, or else an inline command (a line of words, as typed into telnet) (k).
Before AUTH the array is held to Redis's far smaller limits, each checked as soon as its length arrives, so a client
without the password never gets more than a few KiB buffered (j). A malformed request raises :class:`ProtocolError`.
"""

from __future__ import annotations

import re

# Redis's limits on a request (networking.c): the parser keeps them as Redis does, so they are not tunables.
INLINE_MAX = 64 * 1024  # bytes: the longest inline request, or length line
BULK_MAX = 512 * 2**20  # bytes: the largest argument
MULTIBULK_MAX = 2**31 - 1  # the most arguments in a request
UNAUTHENTICATED_BULK_MAX = 16384  # bytes: the largest argument before AUTH (j)
UNAUTHENTICATED_MULTIBULK_MAX = 10  # the most arguments in a request before AUTH (j)

_ARRAY, _BULK = ord("*"), ord("$")  # the type bytes of a RESP request
# One inline argument, as Redis's sdssplitargs reads it: bare characters, then maybe one quoted part, which must end
# the argument. "Double quotes" take C escapes (\n, \x41, ...); in 'single quotes' only \' is one.
_INLINE_GAP = re.compile(rb"[ \n\r\t\0]*")
_INLINE_ARG = re.compile(
    rb"""([^ \n\r\t\0"']*)(?:"((?:\\.|[^"\\])*+)"|'((?:\\'|[^'])*+)')?(?=[ \n\r\t\0]|\Z)""", re.DOTALL
)
_INLINE_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|.)", re.DOTALL)
_INLINE_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"a": b"\a"}


class ProtocolError(Exception):
    """A malformed request: the client gets ``-ERR Protocol error: <message>`` and the connection closes."""


def parse_command(buf: bytearray, pos: int, authenticated: bool) -> tuple[list[bytes], int] | None:
    """One request from ``buf[pos:]``, as Redis reads it: (arguments, end), or None while it is incomplete."""
    if pos == len(buf):
        return None
    if buf[pos] != _ARRAY:
        return _parse_inline(buf, pos)
    header = _header(buf, pos, "too big mbulk count string")
    if header is None:
        return None
    count, pos = header
    if count is None or count > MULTIBULK_MAX:
        raise ProtocolError("invalid multibulk length")
    if count > UNAUTHENTICATED_MULTIBULK_MAX and not authenticated:
        raise ProtocolError("unauthenticated multibulk length")
    fields: list[bytes] = []
    while len(fields) < count:
        header = _header(buf, pos, "too big bulk count string")
        if header is None:
            return None
        if buf[pos] != _BULK:
            raise ProtocolError(f"expected '$', got '{chr(buf[pos])}'")
        length, start = header
        if length is None or not 0 <= length <= BULK_MAX:
            raise ProtocolError("invalid bulk length")
        if length > UNAUTHENTICATED_BULK_MAX and not authenticated:
            raise ProtocolError("unauthenticated bulk length")
        if len(buf) < start + length + 2:
            return None
        fields.append(bytes(buf[start : start + length]))
        pos = start + length + 2
    return fields, pos


def protocol_error_reply(exc: ProtocolError) -> bytes:
    """The error reply to a malformed request."""
    message = str(exc).replace("\r", " ").replace("\n", " ")  # as Redis's addReplyErrorFormat does
    return f"-ERR Protocol error: {message}\r\n".encode("latin-1")


def _header(buf: bytearray, pos: int, too_long: str) -> tuple[int | None, int] | None:
    """The length on the line at ``buf[pos]`` (after its one-character type) and where the next line starts: None
    while the line is incomplete; the length is None if it is not a number."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        if len(buf) - pos > INLINE_MAX:
            raise ProtocolError(too_long)
        return None
    digits = buf[pos + 1 : end]
    if digits.isdigit() or (digits[:1] == b"-" and digits[1:].isdigit()):
        return int(digits), end + 2
    return None, end + 2


def _parse_inline(buf: bytearray, pos: int) -> tuple[list[bytes], int] | None:
    end = buf.find(b"\n", pos)
    if end < 0:
        if len(buf) - pos > INLINE_MAX:
            raise ProtocolError("too big inline request")
        return None
    line = bytes(buf[pos:end])
    return _split_inline(line[:-1] if line.endswith(b"\r") else line), end + 1


def _split_inline(line: bytes) -> list[bytes]:
    """The arguments of an inline command, split as Redis's sdssplitargs splits them (k)."""
    args: list[bytes] = []
    pos = 0
    while (pos := _INLINE_GAP.match(line, pos).end()) < len(line):  # type: ignore[union-attr]  # a * always matches
        match = _INLINE_ARG.match(line, pos)
        if match is None:
            raise ProtocolError("unbalanced quotes in request")
        bare, double, single = match.groups()
        if double is not None:
            bare += _INLINE_ESCAPE.sub(_unescape, double)
        elif single is not None:
            bare += single.replace(b"\\'", b"'")
        args.append(bare)
        pos = match.end()
    return args


def _unescape(match: re.Match[bytes]) -> bytes:
    escaped = match.group(1)
    if len(escaped) == 3:  # x and two hex digits
        return bytes([int(escaped[1:], 16)])
    return _INLINE_ESCAPES.get(escaped, escaped)
