"""Output formats for scan results: text, json, sarif (2.1.0) and junit."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from xml.etree import ElementTree as ET

from netguard import __version__
from netguard.catalog import load_catalog
from netguard.scan.findings import ScanResult

FORMATS = ("text", "json", "sarif", "junit")
DOCS_URL = "https://github.com/netguard/netguard/blob/main/docs/controls.md"
_SARIF_LEVEL = {"low": "note", "medium": "warning", "high": "error", "critical": "error"}
_SECURITY_SEVERITY = {"low": "3.0", "medium": "5.5", "high": "8.0", "critical": "9.5"}


def render(result: ScanResult, fmt: str) -> str:
    return {"text": to_text, "json": to_json, "sarif": to_sarif, "junit": to_junit}[fmt](result)


def to_text(result: ScanResult) -> str:
    lines = []
    for f in result.findings:
        status = f" (suppressed: {f.suppressed})" if f.suppressed is not None else ""
        lines.append(f"{f.file}:{f.line}: {f.severity.upper()} {f.control} {f.resource}{status}")
        lines.append(f"    {f.message}  [{', '.join(f.engines)}]")
    for e in result.errors:
        where = f"{e.file}:{e.line}" if e.line else e.file
        lines.append(f"error: {where}: {e.message}")
    active = len(result.active())
    suppressed = len(result.findings) - active
    lines.append(
        f"netguard: {result.files_scanned} files scanned, {active} findings"
        + (f", {suppressed} suppressed" if suppressed else "")
        + f", {len(result.errors)} errors"
    )
    return "\n".join(lines) + "\n"


def to_json(result: ScanResult) -> str:
    payload = {
        "version": __version__,
        "findings": [f.to_dict() for f in result.findings],
        "errors": [e.to_dict() for e in result.errors],
        "summary": {
            "files_scanned": result.files_scanned,
            "findings": len(result.active()),
            "suppressed": len(result.findings) - len(result.active()),
            "errors": len(result.errors),
        },
    }
    return json.dumps(payload, indent=2) + "\n"


def _uri(path: str) -> str:
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.relative_to(Path.cwd())
        except ValueError:
            return p.as_uri()
    return p.as_posix()


def to_sarif(result: ScanResult) -> str:
    catalog = load_catalog()
    rules = []
    index = {}
    for i, control in enumerate(catalog.values()):
        index[control.id] = i
        rules.append(
            {
                "id": control.id,
                "name": control.title.title().replace(" ", ""),
                "shortDescription": {"text": control.title},
                "fullDescription": {"text": control.rationale},
                "help": {"text": control.remediation},
                "helpUri": f"{DOCS_URL}#{control.id.lower()}",
                "defaultConfiguration": {"level": _SARIF_LEVEL[control.severity]},
                "properties": {
                    "tags": ["security", "aws", "network"],
                    "security-severity": _SECURITY_SEVERITY[control.severity],
                    "precision": "high",
                },
            }
        )
    results = []
    for f in result.findings:
        entry = {
            "ruleId": f.control,
            "ruleIndex": index[f.control],
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(f.file)},
                        "region": {"startLine": max(f.line, 1)},
                    },
                    "logicalLocations": [{"name": f.resource, "kind": "resource"}],
                }
            ],
            "properties": {"engines": f.engines},
        }
        if f.suppressed is not None:
            entry["suppressions"] = [{"kind": "inSource", "justification": f.suppressed}]
        results.append(entry)
    notifications = [
        {
            "level": "error",
            "message": {"text": e.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(e.file)},
                        **({"region": {"startLine": e.line}} if e.line else {}),
                    }
                }
            ],
        }
        for e in result.errors
    ]
    run = {
        "tool": {"driver": {"name": "netguard", "version": __version__, "informationUri": DOCS_URL, "rules": rules}},
        "results": results,
        "invocations": [{"executionSuccessful": not result.errors, "toolExecutionNotifications": notifications}],
    }
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [run],
    }
    return json.dumps(sarif, indent=2) + "\n"


def to_junit(result: ScanResult) -> str:
    """One testcase per (file, control); a failure lists the resources that break the control."""
    by_case: dict[tuple[str, str], list] = defaultdict(list)
    for f in result.active():
        by_case[(f.file, f.control)].append(f)
    suite = ET.Element(
        "testsuite",
        name="netguard",
        tests=str(len(by_case) + len(result.errors)),
        failures=str(len(by_case)),
        errors=str(len(result.errors)),
    )
    for (file, control), findings in sorted(by_case.items()):
        case = ET.SubElement(suite, "testcase", classname=file, name=control)
        failure = ET.SubElement(
            case, "failure", message=f"{len(findings)} resource(s) fail {control}", type=findings[0].severity
        )
        failure.text = "\n".join(f"{f.resource} (line {f.line}): {f.message}" for f in findings)
    for e in result.errors:
        case = ET.SubElement(suite, "testcase", classname=e.file, name="input")
        error = ET.SubElement(case, "error", message=e.message)
        error.text = e.message
    suites = ET.Element("testsuites")
    suites.append(suite)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
