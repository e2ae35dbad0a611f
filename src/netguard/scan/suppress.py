"""Suppressions that mean the same whichever engine found the finding.

netguard runs both engines without their own skip handling and applies one layer afterwards, so a
finding is suppressed, or not, identically under Checkov and cfn-lint. Recognised forms:
- `# netguard:skip=NG-VPC-001: reason` inside a resource block or in the comments right above it;
- Checkov's `#checkov:skip=CKV_NG_VPC_001:reason` comments and `Metadata.checkov.skip` entries;
- netguard's `Metadata.netguard.skip: [{id: NG-VPC-001, reason: ...}]`;
- cfn-lint's `Metadata.cfn-lint.config.ignore_checks` (it carries no reason: see below).
A suppression needs a reason. One without is not honoured and the finding says so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netguard.catalog import control_for_engine_id, load_catalog
from netguard.scan.findings import ScanResult

_NETGUARD = re.compile(r"#\s*netguard:skip=(NG-[A-Z]+-\d{3})(?:\s*:\s*(.*\S))?")
_CHECKOV = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?:\s*:\s*(.*\S))?")
_CFN_RESOURCE = re.compile(r"^  ([A-Za-z0-9]+):\s*(#.*)?$")
_TF_BLOCK = re.compile(r'^(resource|data)\s+"([\w-]+)"\s+"([\w-]+)"')
_TOP_LEVEL = re.compile(r"^\S")


@dataclass(frozen=True)
class Suppression:
    control: str
    reason: str | None
    source: str


def _control(identifier: str) -> str | None:
    if identifier in load_catalog():
        return identifier
    for engine in ("checkov", "cfn_lint"):
        control = control_for_engine_id(engine, identifier)
        if control:
            return control.id
    return None


def _from_comment(line: str) -> Suppression | None:
    for pattern, source in ((_NETGUARD, "netguard"), (_CHECKOV, "checkov")):
        match = pattern.search(line)
        if match:
            control = _control(match.group(1))
            if control:
                return Suppression(control, match.group(2), source)
    return None


def _blocks(lines: list[str], terraform: bool) -> dict[str, tuple[int, int]]:
    """Line ranges (start, end) per resource, the start including the comments right above it."""
    starts: list[tuple[str, int]] = []
    for number, line in enumerate(lines):
        if terraform:
            match = _TF_BLOCK.match(line)
            name = (
                (("data." if match.group(1) == "data" else "") + f"{match.group(2)}.{match.group(3)}")
                if match
                else None
            )
        else:
            match = _CFN_RESOURCE.match(line)
            name = match.group(1) if match else None
        if name:
            first = number
            while first > 0 and lines[first - 1].lstrip().startswith("#"):
                first -= 1
            starts.append((name, first))
    ranges = {}
    for index, (name, first) in enumerate(starts):
        end = starts[index + 1][1] if index + 1 < len(starts) else len(lines)
        if not terraform:
            for number in range(first + 1, end):
                if _TOP_LEVEL.match(lines[number]) and not lines[number].startswith("#"):
                    end = number
                    break
        ranges[name] = (first, end)
    return ranges


def _from_metadata(resource: Mapping[str, Any]) -> list[Suppression]:
    metadata = resource.get("Metadata") if isinstance(resource, Mapping) else None
    if not isinstance(metadata, Mapping):
        return []
    found = []
    for entry in _as_list(
        (metadata.get("netguard") or {}).get("skip") if isinstance(metadata.get("netguard"), Mapping) else None
    ):
        if isinstance(entry, Mapping) and _control(str(entry.get("id", ""))):
            found.append(Suppression(_control(str(entry["id"])), entry.get("reason") or None, "netguard"))
    checkov = metadata.get("checkov")
    for entry in _as_list(checkov.get("skip") if isinstance(checkov, Mapping) else None):
        if isinstance(entry, Mapping) and _control(str(entry.get("id", ""))):
            found.append(Suppression(_control(str(entry["id"])), entry.get("comment") or None, "checkov"))
    cfn_lint = metadata.get("cfn-lint")
    config = cfn_lint.get("config") if isinstance(cfn_lint, Mapping) else None
    for rule_id in _as_list(config.get("ignore_checks") if isinstance(config, Mapping) else None):
        control = _control(str(rule_id))
        if control:
            found.append(Suppression(control, None, "cfn-lint"))
    return found


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def suppressions_in(path: Path, template: Mapping[str, Any] | None = None) -> dict[str, list[Suppression]]:
    """Suppressions per resource (logical id or Terraform block address) in one file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    found: dict[str, list[Suppression]] = {}
    if path.suffix != ".json":
        lines = text.splitlines()
        for name, (first, end) in _blocks(lines, path.suffix == ".tf").items():
            for line in lines[first:end]:
                suppression = _from_comment(line)
                if suppression:
                    found.setdefault(name, []).append(suppression)
    if template is None and path.suffix == ".json":
        try:
            template = json.loads(text)
        except ValueError:
            template = None
    resources = template.get("Resources") if isinstance(template, Mapping) else None
    if isinstance(resources, Mapping):
        for name, resource in resources.items():
            for suppression in _from_metadata(resource):
                found.setdefault(str(name), []).append(suppression)
    return found


def apply_suppressions(result: ScanResult, templates: Mapping[str, Mapping[str, Any]]) -> None:
    """Mark findings suppressed when a reasoned suppression covers them; flag reasonless ones."""
    cache: dict[str, dict[str, list[Suppression]]] = {}
    for finding in result.findings:
        if finding.file not in cache:
            cache[finding.file] = suppressions_in(Path(finding.file), templates.get(finding.file))
        base = finding.resource.split("[", 1)[0]
        matching = [s for s in cache[finding.file].get(base, []) if s.control == finding.control]
        reasoned = [s for s in matching if s.reason]
        if reasoned:
            finding.suppressed = reasoned[0].reason
        elif matching:
            finding.suppressed = None
            sources = ", ".join(sorted({s.source for s in matching}))
            finding.message += f" (a {sources} suppression without a reason is not honoured)"
