"""Errors are values: every problem with an input becomes an InputError naming the file."""

from __future__ import annotations

from dataclasses import dataclass


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
