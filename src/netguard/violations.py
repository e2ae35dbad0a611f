"""What a control reports, before an engine turns it into its own result type."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    control: str
    resource: str
    message: str
