"""Errors are values: every problem with an input becomes an InputError naming the file."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """Text from input with every control character shown escaped (\\n, \\x1b, \\u202e), so a
    file or resource name cannot forge lines, colours, links or workflow commands in a report."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


@dataclass(frozen=True)
class InputError:
    """A file (or setting) netguard could not use, and why."""

    file: str
    message: str
    line: int | None = None

    def to_dict(self) -> dict:
        data: dict = {"file": self.file, "message": self.message}
        if self.line is not None:
            data["line"] = self.line
        return data


class NetguardError(Exception):
    """A usage or configuration problem that stops the run with exit code 2."""

    def __init__(self, file: str, message: str) -> None:
        super().__init__(f"{file}: {message}")
        self.file = file
        self.message = message
