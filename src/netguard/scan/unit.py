"""What the scan evaluates in one go, and what one evaluation returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from netguard.errors import InputError
from netguard.scan.findings import Finding

ENGINE = "netguard"


@dataclass(frozen=True)
class Unit:
    """What is evaluated in one go: a template, or the .tf files of one module folder."""

    kind: str  # "cloudformation" or "terraform"
    files: tuple[str, ...]


@dataclass
class UnitResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    scanned: list[str] = field(default_factory=list)  # files whose every resource was evaluated
    resources: dict[str, set[str]] = field(default_factory=dict)  # file -> the resources (addresses) evaluated
    notices: list[str] = field(default_factory=list)
