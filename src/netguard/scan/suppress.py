"""Suppressions that mean the same whichever engine found the finding.

netguard applies one layer of suppressions to its own findings, and recognises the engines' forms too,
so a team moving from Checkov or cfn-lint keeps its skips. Recognised forms:
- `# netguard:skip=NG-VPC-001: reason` inside a resource block or in the comments right above it;
- Checkov's `#checkov:skip=CKV_NG_VPC_001:reason` comments and `Metadata.checkov.skip` entries;
- netguard's `Metadata.netguard.skip: [{id: NG-VPC-001, reason: ...}]`;
- cfn-lint's `Metadata.cfn-lint.config.ignore_checks` (it carries no reason: see below);
- the config's `suppressions`, by control and construct path glob, for CDK output nobody writes by hand.
A suppression needs a reason. One without is not honoured and the finding says so.

A suppression that does nothing is never silent: one naming an id that is no control (`NG-EIP-01`,
`CKV_NG_EIP_01`; the engines' own check ids are theirs and left alone) or one without a reason gives
a notice, starting `warning: `, with the file, the line and, for an unknown id, `did you mean ...?`.
apply_suppressions returns these notices; the finding a mistyped id meant to suppress stays
unsuppressed, and its message says so.
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
from netguard.suggest import did_you_mean

# The id runs to a colon or a space, so a mistyped one (NG-EIP-01) is read, and reported, not skipped.
_NETGUARD = re.compile(r"(?:#|//)\s*netguard:skip=([^\s:]*)(?:\s*:\s*(.*\S))?")
_CHECKOV = re.compile(r"(?:#|//)\s*checkov:skip=([^\s:]*)(?:\s*:\s*(.*\S))?")
# Ids in the engines' forms that are meant for netguard; any other is the engine's own check.
_OURS = {
    "checkov": re.compile(r"CKV_NG|NG-", re.I),
    "cfn-lint": re.compile(r"[EWI]95\d\d$", re.I),
}
WARNING = "warning: "  # notices that start with this are about something the user wrote that does not work


@dataclass
class Spans:
    """Where each resource of one file is written (first and last line, from the parser)."""

    resources: dict[str, tuple[int, int]] = field(default_factory=dict)
    template: Mapping[str, Any] | None = None  # a CloudFormation template, for Metadata suppressions


@dataclass(frozen=True)
class Suppression:
    """One suppression as written. control is None when the id names no control (a typo)."""

    control: str | None
    reason: str | None
    source: str
    written: str = ""  # the id as written
    form: str = ""  # how it was written, for messages: `netguard:skip=...`, Metadata.netguard.skip, ...
    line: int = 0

    @property
    def suggestion(self) -> str:
        """`did you mean X?` for an id that names no control, over the ids its form takes."""
        return did_you_mean(self.written, _choices(self.source)) if self.control is None else ""


@lru_cache(maxsize=4)
def _choices(source: str) -> tuple[str, ...]:
    controls = load_catalog().values()
    if source in ("checkov", "cfn-lint"):
        engine = source.replace("-", "_")
        return tuple(c.engines[engine] for c in controls if engine in c.engines)
    return tuple(c.id for c in controls)


def _control(identifier: str) -> str | None:
    if identifier in load_catalog():
        return identifier
    for engine in ("checkov", "cfn_lint"):
        control = control_for_engine_id(engine, identifier)
        if control:
            return control.id
    return None


def _meant(suppression: Suppression) -> str | None:
    """The control a mistyped id was most likely meant to name."""
    suggestion = suppression.suggestion
    return _control(suggestion.removeprefix("did you mean ").removesuffix("?")) if suggestion else None


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


def _from_comment(line: str, terraform: bool = False, number: int = 0) -> Suppression | None:
    comment = comment_of(line, terraform)
    if comment is None:
        return None
    for pattern, source in ((_NETGUARD, "netguard"), (_CHECKOV, "checkov")):
        match = pattern.search(comment)
        if match:
            written = match.group(1)
            control = _control(written)
            if control or source == "netguard" or _OURS[source].match(written):
                form = f"`{source}:skip={written}`"
                return Suppression(control, match.group(2), source, written, form, number)
    return None


def _line(node: Any, key: Any, fallback: int) -> int:
    line = node.line_of(key) if hasattr(node, "line_of") else 0
    return line or fallback


def _from_metadata(resource: Mapping[str, Any], fallback: int = 0) -> list[Suppression]:
    metadata = resource.get("Metadata") if isinstance(resource, Mapping) else None
    if not isinstance(metadata, Mapping):
        return []
    found = []
    netguard = metadata.get("netguard")
    where = _line(metadata, "netguard", fallback)
    for entry in _as_list(netguard.get("skip") if isinstance(netguard, Mapping) else None):
        written = _id(entry.get("id") if isinstance(entry, Mapping) else entry)
        reason = _reason(entry.get("reason")) if isinstance(entry, Mapping) else None
        line = _line(entry, "id", where)
        found.append(Suppression(_control(written), reason, "netguard", written, "Metadata.netguard.skip id", line))
    checkov = metadata.get("checkov")
    where = _line(metadata, "checkov", fallback)
    for entry in _as_list(checkov.get("skip") if isinstance(checkov, Mapping) else None):
        if not isinstance(entry, Mapping):
            continue
        written = _id(entry.get("id"))
        control = _control(written)
        if control or _OURS["checkov"].match(written):
            line = _line(entry, "id", where)
            reason = _reason(entry.get("comment"))
            found.append(Suppression(control, reason, "checkov", written, "Metadata.checkov.skip id", line))
    cfn_lint = metadata.get("cfn-lint")
    config = cfn_lint.get("config") if isinstance(cfn_lint, Mapping) else None
    line = _line(config, "ignore_checks", _line(metadata, "cfn-lint", fallback))
    for rule_id in _as_list(config.get("ignore_checks") if isinstance(config, Mapping) else None):
        written = _id(rule_id)
        control = _control(written)
        if control or _OURS["cfn-lint"].match(written):
            found.append(Suppression(control, None, "cfn-lint", written, "cfn-lint ignore_checks", line))
    return found


def _id(value: Any) -> str:
    return "" if value is None else str(value).strip()[:60]


def _reason(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def suppressions_in(path: Path, spans: Spans) -> dict[str, list[Suppression]]:
    """Suppressions per resource (logical id or Terraform block address) in one file, mistyped ones
    included (control None).

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
            for number, line in enumerate(lines[top:last], start=top + 1):
                suppression = _from_comment(line, terraform, number)
                if suppression:
                    found.setdefault(name, []).append(suppression)
    resources = spans.template.get("Resources") if isinstance(spans.template, Mapping) else None
    if isinstance(resources, Mapping):
        for name, resource in resources.items():
            for suppression in _from_metadata(resource, _line(resources, name, 0)):
                found.setdefault(str(name), []).append(suppression)
    return found


def _notice(file: str, suppression: Suppression) -> str | None:
    """What is wrong with a suppression as written, or None when it is honoured."""
    where = f"{file}:{suppression.line}" if suppression.line else file
    said = f"{suppression.form} {suppression.written}" if suppression.form[:1] != "`" else suppression.form
    if suppression.control is None:
        hint = f"; {suppression.suggestion}" if suppression.suggestion else ""
        return f"{WARNING}{where}: {said} names no netguard control{hint} (it suppresses nothing)"
    if suppression.reason:
        return None
    if suppression.source == "cfn-lint":
        return (
            f"{WARNING}{where}: {said} ({suppression.control}) has no place for a reason, so netguard does not"
            f" honour it; use Metadata.netguard.skip [{{id: {suppression.control}, reason: ...}}]"
        )
    if suppression.form[:1] == "`":
        separator = ": " if suppression.source == "netguard" else ":"
        how = f"write `{suppression.source}:skip={suppression.written}{separator}<why>`"
    else:
        how = f"give it a {'comment' if suppression.source == 'checkov' else 'reason'}"
    return f"{WARNING}{where}: {said} has no reason, so it is not honoured; {how}"


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


def apply_suppressions(
    findings: list[Finding], files: Mapping[str, Spans], config: ScanConfig | None = None
) -> list[str]:
    """Mark findings suppressed when a reasoned suppression covers them; flag reasonless ones.

    Suppressions in the source come first; then the config's (by construct path), which a team adds
    where the template is generated and cannot carry a comment. Returns notices, each starting with
    WARNING, for every suppression in these files that does nothing: one naming no control (with a
    `did you mean` suggestion) and one without a reason. Callers add them to the result's notices.
    """
    cache = {file: suppressions_in(Path(file), spans) for file, spans in files.items()}
    notices = []
    for file, by_resource in cache.items():
        for suppressions in by_resource.values():
            notices.extend(n for s in suppressions if (n := _notice(file, s)) and n not in notices)
    for finding in findings:
        if finding.file not in cache:
            continue
        written = cache[finding.file].get(finding.resource.split("[", 1)[0], [])
        matching = [s for s in written if s.control == finding.control]
        reasoned = [s for s in matching if s.reason]
        if reasoned:
            finding.suppressed = reasoned[0].reason
            continue
        if matching:
            finding.suppressed = None
            sources = ", ".join(sorted({s.source for s in matching}))
            finding.message += f" (a {sources} suppression without a reason is not honoured)"
        for typo in dict.fromkeys(s.written for s in written if s.control is None and _meant(s) == finding.control):
            finding.message += (
                f" (not suppressed: a suppression names {typo}, which is no control; did you mean {finding.control}?)"
            )
    for finding in findings:
        reason = _from_config(finding, config) if config is not None and finding.suppressed is None else None
        if reason:
            finding.suppressed, finding.suppressed_by = reason, config.source or CONFIG_NAME
    return notices
