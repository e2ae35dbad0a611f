"""What CloudTrail records cannot say, told by the user: the organization's id and principals' tags.

Without them a guardrail that exempts by principal tag or by organization is Indeterminate for every
record. A principal tags file makes those answers definite:

    principals:
      - arn: "arn:aws:iam::*:role/network/NetworkAdmin"
        tags: {netguard-exempt: "true"}
    unlisted: untagged        # or "unknown" (the default): principals no entry matches

Entries are matched in order against aws:PrincipalArn (wildcards as in ArnLike); the first match gives
the principal's complete tag set, so a key it lacks is known absent. A principal no entry matches has
no tags with `unlisted: untagged`, and unknown tags otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from netguard.errors import NetguardError
from netguard.iam.actions import arn_matches

_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["principals"],
    "properties": {
        "principals": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["arn", "tags"],
                "properties": {
                    "arn": {"type": "string", "pattern": "^arn:"},
                    "tags": {
                        "type": "object",
                        "propertyNames": {"minLength": 1, "maxLength": 128},
                        "additionalProperties": {"type": "string", "maxLength": 256},
                    },
                },
            },
        },
        "unlisted": {"enum": ["unknown", "untagged"]},
    },
}


@dataclass(frozen=True)
class PrincipalTags:
    """Tags per principal ARN pattern, in file order."""

    entries: tuple[tuple[str, Mapping[str, str]], ...] = ()
    unlisted_untagged: bool = False

    def tags_of(self, principal_arn: str | None) -> Mapping[str, str] | None:
        """The principal's complete tags, or None when they are unknown."""
        if principal_arn:
            for pattern, tags in self.entries:
                if arn_matches(pattern, principal_arn):
                    return tags
        return {} if self.unlisted_untagged else None


@dataclass(frozen=True)
class OrgFacts:
    """Facts about the organization the request context needs and records lack."""

    management_account: str | None = None
    organization_id: str | None = None
    principal_tags: PrincipalTags = field(default_factory=PrincipalTags)

    def context_values(self, principal_arn: str | None) -> tuple[dict[str, Any], list[str], list[str]]:
        """(values, absent keys, absent key prefixes) these facts add to a request's context."""
        values: dict[str, Any] = {}
        absent_prefixes: list[str] = []
        if self.organization_id:
            # SCPs restrict only principals of the organization's member accounts, so every record
            # they are evaluated for comes from a principal in this organization.
            values["aws:PrincipalOrgID"] = self.organization_id
        tags = self.principal_tags.tags_of(principal_arn)
        if tags is not None:
            for key, value in tags.items():
                values[f"aws:PrincipalTag/{key}"] = value
            absent_prefixes.append("aws:PrincipalTag/")
        return values, [], absent_prefixes


def load_principal_tags(path: Path) -> PrincipalTags:
    """Read and validate a principal tags file; a bad file is an error naming it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise NetguardError(str(path), f"cannot read principal tags: {exc}") from None
    except yaml.YAMLError as exc:
        raise NetguardError(str(path), f"invalid YAML: {' '.join(str(exc).split())}") from None
    try:
        jsonschema.validate(data, _SCHEMA)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise NetguardError(str(path), f"invalid principal tags at {where}: {exc.message}") from None
    entries = tuple((item["arn"], dict(item["tags"])) for item in data["principals"])
    return PrincipalTags(entries, data.get("unlisted", "unknown") == "untagged")


def supply_hints(undecided: Iterable[tuple[Iterable[str], int]]) -> list[str]:
    """How to make Indeterminate answers definite, for keys the user can supply and records never hold.

    undecided holds (missing keys, number of records) per Indeterminate result or group."""
    tag_records = org_records = 0
    for missing, count in undecided:
        keys = [key.lower() for key in missing]
        tag_records += count if any(key.startswith("aws:principaltag/") for key in keys) else 0
        org_records += count if "aws:principalorgid" in keys else 0
    hints = []
    if tag_records:
        hints.append(
            f"netguard: {tag_records} Indeterminate need principal tags, which CloudTrail does not record: "
            "give --principal-tags FILE (see README, Request context from CloudTrail)"
        )
    if org_records:
        hints.append(
            f"netguard: {org_records} Indeterminate need aws:PrincipalOrgID: set organization_id in the org config"
        )
    return hints
