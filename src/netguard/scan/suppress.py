"""Suppressions that mean the same whichever engine found the finding.

netguard applies one layer of suppressions to its own findings, and recognises the engines' forms too,
so a team moving from Checkov or cfn-lint keeps its skips. Recognised forms:
- `# netguard:skip=NG-VPC-001: reason` inside a resource block or in the comments right above it;
- Checkov's `#checkov:skip=CKV_NG_VPC_001:reason` comments and `Metadata.checkov.skip` entries;
- netguard's `Metadata.netguard.skip: [{id: NG-VPC-001, reason: ...}]`;
- cfn-lint's `Metadata.cfn-lint.config.ignore_checks` (it carries no reason: see below);
- the config's `suppressions`, by control and construct path glob, for CDK output nobody writes by hand.
A suppression needs a reason. One without is not honoured and the finding says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from netguard.catalog import control_for_engine_id, load_catalog
from netguard.config import CONFIG_NAME, ScanConfig
from netguard.scan.findings import Finding

_NETGUARD = re.compile(r"(?:#|//)\s*netguard:skip=(NG-[A-Z]+-\d{3})(?:\s*:\s*(.*\S))?")
_CHECKOV = re.compile(r"(?:#|//)\s*checkov:skip=([A-Z0-9_]+)(?:\s*:\s*(.*\S))?")


@dataclass
class Spans:
    """Where each resource of one file is written (first and last line, from the parser)."""

    resources: dict[str, tuple[int, int]] = field(default_factory=dict)
    template: Mapping[str, Any] | None = None  # a CloudFormation template, for Metadata suppressions


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


def comment_of(line: str, terraform: bool = False) -> str | None:
    """The comment on a line, or None: a `#` (or `//` in Terraform) outside quotes, at the start of the
    line or after a space, as YAML and HCL read it. Text inside a string value is never a comment."""
    quote: str | None = None
    index = 0
    while index < len(line):
        char = line[index]
        if quote:
            if char == "\\" and quote == '"':
                index += 1
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif (char == "#" or (terraform and line.startswith("//", index))) and (index == 0 or line[index - 1] in " \t"):
            return line[index:]
        index += 1
    return None


def _from_comment(line: str, terraform: bool = False) -> Suppression | None:
    comment = comment_of(line, terraform)
    if comment is None:
        return None
    for pattern, source in ((_NETGUARD, "netguard"), (_CHECKOV, "checkov")):
        match = pattern.search(comment)
        if match:
            control = _control(match.group(1))
            if control:
                return Suppression(control, match.group(2), source)
    return None


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


def suppressions_in(path: Path, spans: Spans) -> dict[str, list[Suppression]]:
    """Suppressions per resource (logical id or Terraform block address) in one file.

    A comment counts when it is inside the resource's lines, as the parser recorded them, or in the
    run of comment lines right above it.
    """
    found: dict[str, list[Suppression]] = {}
    if path.suffix != ".json":
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").split("\n")  # lines as parsers count them
        except OSError:
            lines = []
        for name, (first, last) in spans.resources.items():
            top = first - 1  # 0-based index of the resource's first line
            terraform = path.suffix == ".tf"
            indent = len(lines[top]) - len(lines[top].lstrip()) if top < len(lines) else 0
            while top > 0 and lines[top - 1].lstrip().startswith(("#", "//") if terraform else "#"):
                if len(lines[top - 1]) - len(lines[top - 1].lstrip()) > indent:
                    break  # indented deeper: it belongs to the body of the resource above
                top -= 1
            for line in lines[top:last]:
                suppression = _from_comment(line, terraform)
                if suppression:
                    found.setdefault(name, []).append(suppression)
    resources = spans.template.get("Resources") if isinstance(spans.template, Mapping) else None
    if isinstance(resources, Mapping):
        for name, resource in resources.items():
            for suppression in _from_metadata(resource):
                found.setdefault(str(name), []).append(suppression)
    return found


@lru_cache(maxsize=256)
def construct_glob(pattern: str) -> re.Pattern[str]:
    """A construct path glob as a regular expression: `*` and `?` stay within one path segment (as in
    `cdk deploy 'Prod/*'`), `**` spans segments."""
    parts = re.split(r"(\*\*|\*|\?)", pattern.strip("/"))
    wild = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wild.get(part, re.escape(part)) for part in parts))


def _from_config(finding: Finding, config: ScanConfig) -> str | None:
    """The reason of the first config suppression covering the finding's construct, or None."""
    if not finding.construct:
        return None
    for entry in config.suppressions:
        if entry.control == finding.control and construct_glob(entry.construct).fullmatch(finding.construct):
            return entry.reason
    return None


def apply_suppressions(findings: list[Finding], files: Mapping[str, Spans], config: ScanConfig | None = None) -> None:
    """Mark findings suppressed when a reasoned suppression covers them; flag reasonless ones.

    Suppressions in the source come first; then the config's (by construct path), which a team adds
    where the template is generated and cannot carry a comment.
    """
    cache: dict[str, dict[str, list[Suppression]]] = {}
    for finding in findings:
        if finding.file not in files:
            continue
        if finding.file not in cache:
            cache[finding.file] = suppressions_in(Path(finding.file), files[finding.file])
        base = finding.resource.split("[", 1)[0]
        matching = [s for s in cache[finding.file].get(base, []) if s.control == finding.control]
        reasoned = [s for s in matching if s.reason]
        if reasoned:
            finding.suppressed = reasoned[0].reason
        elif matching:
            finding.suppressed = None
            sources = ", ".join(sorted({s.source for s in matching}))
            finding.message += f" (a {sources} suppression without a reason is not honoured)"
    for finding in findings:
        reason = _from_config(finding, config) if config is not None and finding.suppressed is None else None
        if reason:
            finding.suppressed, finding.suppressed_by = reason, config.source or CONFIG_NAME
