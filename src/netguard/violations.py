"""What a control reports, before an engine turns it into its own result type."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Violation:
    control: str
    resource: str
    message: str
    where: tuple[str, int] | None = None  # (file, line) when the rule knows it better than the resource name
    via: str | None = None  # for a called module's resource: the root's module block (file:line)


class RuleSet:
    """Controls by id for one kind of input (a CloudFormation template, a Terraform module)."""

    def __init__(self, framework: str) -> None:
        self.framework = framework
        self.rules: dict[str, Callable[[Any, Any], Iterable[Violation]]] = {}

    def types(self, control_id: str) -> tuple[str, ...]:
        """The resource types a control reports on, as the catalogue says (rules never restate them)."""
        from netguard.catalog import load_catalog

        return load_catalog()[control_id].resource_types(self.framework)

    def rule(self, control_id: str) -> Callable[[Callable], Callable]:
        def register(fn: Callable) -> Callable:
            self.rules[control_id] = fn
            return fn

        return register

    def evaluate(self, model: Any, config: Any, controls: set[str] | None = None) -> list[Violation]:
        """All violations in the model, optionally only for some controls."""
        found: list[Violation] = []
        for control_id, fn in self.rules.items():
            if controls is None or control_id in controls:
                found.extend(fn(model, config))
        return found
