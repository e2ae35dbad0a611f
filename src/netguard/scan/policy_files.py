"""Policy documents committed as files: SCPs judged by the NG-SCP controls, identity policies by the IAM
controls. Resource policies are not read.

Which files are SCPs is the config's `scp_paths`: globs matched against the file's path relative to
the root of the repository the scan runs in (the folder holding `.git` at or above the working
directory, where `.netguard.yaml` is found; outside a repository, the working directory), with `/`
between folders and case-insensitively. A file outside that folder is matched by its absolute path, so
patterns that start with `**/` still apply to it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from netguard.catalog import load_catalog
from netguard.config import ScanConfig, repository_root
from netguard.errors import InputError
from netguard.scan.findings import Finding
from netguard.scan.suppress import Spans, apply_suppressions
from netguard.scan.unit import ENGINE, UnitResult


def is_policy_document(data: object) -> bool:
    return isinstance(data, dict) and "Statement" in data and "Resources" not in data


@cache
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob over a /-separated path: `**` as a whole segment spans any number of folders (none
    included), `*` and `?` stay within one segment, `[...]` is a character class (`[!...]` negated)."""
    segments = pattern.split("/")
    out = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            out.append(".*" if last else "(?:[^/]*/)*")
            continue
        i = 0
        while i < len(segment):
            char = segment[i]
            close = segment.find("]", i + 2) if char == "[" else -1
            if char == "*":
                out.append("[^/]*")
            elif char == "?":
                out.append("[^/]")
            elif close > 0:
                body = segment[i + 1 : close]
                out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
                i = close
            else:
                out.append(re.escape(char))
            i += 1
        if not last:
            out.append("/")
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def scan_root_relative(path: str) -> str:
    """The path the scp_paths globs see: relative to the repository root, else absolute; `/` between folders."""
    file = Path(path)
    absolute = Path(os.path.abspath(file.parent)).resolve() / file.name
    try:
        return absolute.relative_to(repository_root(Path.cwd())).as_posix()
    except ValueError:
        return absolute.as_posix()


def is_scp_path(path: str, config: ScanConfig) -> bool:
    """Whether the config's scp_paths globs name this file as a service control policy."""
    relative = scan_root_relative(path)
    return any(_glob_regex(pattern).fullmatch(relative) for pattern in config.scp_paths)


def scan_policy_file(path: str, document: dict, config: ScanConfig) -> UnitResult:
    """A policy document committed as a file. An SCP (named by scp_paths) is judged by the NG-SCP
    controls: each problem `netguard policy validate` finds is a finding, since the file was read and
    evaluated. Elsewhere it is an identity policy, judged by the IAM controls; resource policies (with a
    Principal) are not identity grants, and are left alone."""
    from netguard.iam.statements import risky_statements, statements_of

    out = UnitResult()
    name = Path(path).name
    if is_scp_path(path, config):
        try:
            text = json.dumps(document)
        except (TypeError, ValueError) as exc:  # YAML values JSON has no form for
            out.errors.append(InputError(path, f"cannot read as a JSON policy document: {exc}"))
            return out
        findings = _scp_findings(path, document, text)
    else:
        if any(isinstance(s, dict) and ("Principal" in s or "NotPrincipal" in s) for s in statements_of(document)):
            out.scanned.append(path)
            return out  # a resource policy (bucket, endpoint): not an identity grant
        line = _line_of(document, "Statement")
        findings = []
        for control in load_catalog().values():
            if not control.actions:
                continue
            hits = risky_statements(document, control.actions)
            if hits:
                message = f"{name}: " + "; ".join(hit.describe() for hit in hits)
                findings.append(Finding(control.id, path, name, line, control.severity, message, [ENGINE]))
    spans = _spans(document, name)
    out.notices.extend(apply_suppressions(findings, {path: Spans(spans)}))
    out.findings.extend(findings)
    out.scanned.append(path)
    out.resources[path] = set(spans)
    return out


def _statements(document: Mapping[str, Any]) -> list[Any]:
    raw = document.get("Statement")
    return raw if isinstance(raw, list) else [raw] if raw is not None else []


def _line_of(document: Any, key: str) -> int:
    line = document.line_of(key) if hasattr(document, "line_of") else 0
    return line or getattr(document, "start", 0) or 1


def _span(node: Any) -> tuple[int, int] | None:
    start = getattr(node, "start", 0)
    return (start, max(getattr(node, "end", 0), start)) if start else None


def _spans(document: Mapping[str, Any], name: str) -> dict[str, tuple[int, int]]:
    """Where each resource of a policy file is written: the file as a whole, and each statement by its Sid."""
    spans = {name: _span(document) or (1, 1)}
    for statement in _statements(document):
        sid = statement.get("Sid") if isinstance(statement, Mapping) else None
        if isinstance(sid, str) and sid and sid not in spans:
            spans[sid] = _span(statement) or spans[name]
    return spans


def _scp_findings(path: str, document: dict, text: str) -> list[Finding]:
    """One finding per (control, statement Sid or the file): problems in statements without a Sid, and
    problems with the document as a whole, fall on the file; on the statement's line where known."""
    from netguard.policy.validate import document_problems

    catalog = load_catalog()
    name = Path(path).name
    statements = _statements(document)
    document_line = (_span(document) or (1, 1))[0]
    grouped: dict[tuple[str, str], tuple[int, list[str]]] = {}
    for problem in document_problems(text, lockout=True):
        resource = problem.sid or name
        span = _span(statements[problem.statement]) if problem.statement is not None else None
        line = span[0] if span else document_line
        first, messages = grouped.get((problem.control, resource), (line, []))
        grouped[(problem.control, resource)] = (min(first, line), [*messages, problem.message])
    return [
        Finding(
            control, path, resource, line, catalog[control].severity, f"{resource}: " + "; ".join(messages), [ENGINE]
        )
        for (control, resource), (line, messages) in grouped.items()
    ]
