"""Statement analysis for identity policies: which guarded actions a policy grants unconditionally."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from netguard.iam.actions import actions_granted, resource_is_unrestricted


@dataclass(frozen=True)
class RiskyStatement:
    """A statement that grants guarded actions on every resource with no condition."""

    index: int
    sid: str | None
    actions: tuple[str, ...]
    reason: str

    def describe(self) -> str:
        label = f"statement {self.index}" + (f" (Sid {self.sid})" if self.sid else "")
        shown = ", ".join(self.actions[:4]) + (" ..." if len(self.actions) > 4 else "")
        return f"{label} allows {shown} {self.reason}"


def parse_document(document: Any) -> dict | None:
    """Accept a policy document as a mapping or a JSON string; None when it is neither."""
    if isinstance(document, dict):
        return document
    if isinstance(document, str):
        try:
            parsed = json.loads(document)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def statements_of(document: Mapping[str, Any]) -> list[Any]:
    """The Statement list; a single statement object counts as a list of one."""
    statement = document.get("Statement")
    if statement is None:
        return []
    if isinstance(statement, list):
        return statement
    return [statement]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def risky_statements(document: dict, guarded: Iterable[str]) -> list[RiskyStatement]:
    """Allow statements that grant any guarded action on all resources without a Condition.

    Values that are not plain strings (unresolved intrinsics or variables) cannot be proven
    harmless, so they count as matching: netguard fails closed.
    """
    guarded = tuple(guarded)
    risky = []
    for index, statement in enumerate(statements_of(document)):
        if not isinstance(statement, dict):
            continue
        effect = statement.get("Effect")
        if isinstance(effect, str) and effect != "Allow":
            continue
        if statement.get("Condition"):
            continue
        if "NotResource" in statement:
            resource_reason = "on every resource but those in NotResource"
        else:
            resources = _as_list(statement.get("Resource"))
            if not any(not isinstance(r, str) or resource_is_unrestricted(r) for r in resources):
                continue
            resource_reason = "on Resource *"
        negated = "NotAction" in statement
        patterns = _as_list(statement.get("NotAction" if negated else "Action"))
        if any(not isinstance(p, str) for p in patterns):
            granted = list(guarded)
            how = "through an Action value netguard cannot resolve"
        else:
            granted = actions_granted(patterns, guarded, negated=negated)
            how = "through NotAction" if negated else ""
        if not granted:
            continue
        sid = statement.get("Sid") if isinstance(statement.get("Sid"), str) else None
        reason = " ".join(part for part in (how, resource_reason, "with no Condition") if part)
        risky.append(RiskyStatement(index, sid, tuple(granted), reason))
    return risky
