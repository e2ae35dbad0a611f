"""Reading JSON that an attacker may have written: bounded in bytes, nesting and number size.

Every failure is a `Refused` carrying a message (and, for syntax errors, a position), never a crash:
the callers turn it into an error naming the file or record, and go on with the rest.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from netguard.policy.limits import size_text

try:
    import orjson

    _fast_loads = orjson.loads
    _FastDecodeError: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)
except ImportError:  # pragma: no cover - orjson is a dependency; the standard library still reads
    _fast_loads = json.loads
    _FastDecodeError = (ValueError, RecursionError)

# Python refuses to turn longer digit strings into int (CVE-2020-10735); JSON numbers get the same bound.
MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300


class Refused(ValueError):
    """Input netguard will not use, and why."""

    def __init__(self, message: str, position: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


class _TooManyDigits(Exception):
    def __init__(self, digits: int) -> None:
        self.digits = digits


def _bounded_int(text: str) -> int:
    digits = len(text) - (text[:1] == "-")
    if digits > MAX_INT_DIGITS:
        raise _TooManyDigits(digits)
    return int(text)


def loads(data: bytes | str) -> Any:
    """The decoded value, or Refused. orjson decodes; only when it refuses does the standard library
    try, so that input it alone accepts (a UTF-8 byte order mark, UTF-16, NaN, integers past 64 bits)
    still reads, and syntax errors carry its line and column."""
    try:
        return _fast_loads(data)
    except _FastDecodeError:
        pass
    try:
        return json.loads(data, parse_int=_bounded_int)
    except _TooManyDigits as exc:
        raise Refused(f"an integer of {exc.digits} digits, over the limit of {MAX_INT_DIGITS}") from None
    except UnicodeDecodeError as exc:
        raise Refused(f"not valid UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise Refused(f"invalid JSON: {exc.msg}", f"line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise Refused("JSON nested too deeply to parse") from None
    except ValueError as exc:  # any other number or text the decoder cannot represent
        raise Refused(f"invalid JSON: {exc}") from None


def deeper_than(value: Any, max_depth: int) -> bool:
    """Whether value nests objects/arrays more than max_depth levels (iterative: no recursion limit)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list, Mapping)):  # dict first: the ABC check only for other mappings
            children = node.values() if not isinstance(node, list) else node
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if not isinstance(child, _SCALARS) and child is not None)
    return False


_SCALARS = (str, int, float)  # bool is an int


def loads_document(data: bytes | str, max_depth: int) -> Any:
    """A small JSON document (a policy), decoded and checked for depth; Refused otherwise."""
    value = loads(data)
    if deeper_than(value, max_depth):
        raise Refused(f"JSON nested more than {max_depth} levels deep")
    return value


def read_file(path: Path | str, max_bytes: int, option: str) -> bytes:
    """A regular file's bytes, at most max_bytes of them; Refused otherwise (named by the option
    that raises the limit). Opened without blocking and checked on the descriptor, so a FIFO or a
    link to a device never hangs the run, and the limit holds while reading."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise Refused(f"cannot read file: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused("not a regular file; only regular files are read")
        if info.st_size > max_bytes:
            raise Refused(too_big(info.st_size, max_bytes, option))
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > max_bytes:
                raise Refused(too_big(total, max_bytes, option))
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise Refused(f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def too_big(size: int, max_bytes: int, option: str) -> str:
    return f"file is {size_text(size)}, over the limit of {size_text(max_bytes)} ({option})"
