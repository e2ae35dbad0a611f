"""Output formats for scan results: text, json, sarif (2.1.0), junit and github (Actions annotations)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote
from xml.etree import ElementTree as ET

from netguard import __version__
from netguard.catalog import load_catalog
from netguard.errors import printable
from netguard.scan.findings import Finding, ScanResult

DOCS_FILE = "docs/controls.md"  # in the netguard repository; `docs_url` in the config names a published copy
_SARIF_LEVEL = {"low": "note", "medium": "warning", "high": "error", "critical": "error"}
_SECURITY_SEVERITY = {"low": "3.0", "medium": "5.5", "high": "8.0", "critical": "9.5"}
_COLOUR = {"critical": "\033[1;31m", "high": "\033[31m", "medium": "\033[33m", "low": "\033[36m"}
_RESET = "\033[0m"
FORMATS = ("text", "json", "sarif", "junit", "github")


def render(result: ScanResult, fmt: str, *, color: bool = False, quiet: bool = False) -> str:
    if fmt == "text":
        return to_text(result, color=color, quiet=quiet)
    return {"json": to_json, "sarif": to_sarif, "junit": to_junit, "github": to_github}[fmt](result)


def doc_link(control: str, docs_url: str | None) -> str:
    """Where a control is documented: the published page when the config names one, else the section
    of docs/controls.md in the netguard repository (there is no public site to point at)."""
    return f"{docs_url or DOCS_FILE}#{control.lower()}"


def _status(f: Finding) -> str:
    if f.suppressed is not None:
        return f" (suppressed{f' by {f.suppressed_by}' if f.suppressed_by else ''}: {f.suppressed})"
    return " (in baseline)" if f.baselined else ""


def _summary(result: ScanResult) -> dict[str, int]:
    audited = (
        {
            "accounts_audited": len(result.audit.accounts),
            "scopes_audited": len(result.audit.scopes),
            "resources_audited": result.audit.resources,
        }
        if result.audit
        else {}
    )
    return {
        "files_scanned": result.files_scanned,
        **audited,
        "findings": len(result.failing()),
        "baselined": sum(1 for f in result.active() if f.baselined),
        "suppressed": len(result.findings) - len(result.active()),
        "errors": len(result.errors),
    }


def summary_line(result: ScanResult) -> str:
    """One line a person can gate on by eye: counts, failing findings per severity, and the config used."""
    counts = _summary(result)
    by_severity = ", ".join(f"{n} {s}" for s, n in result.severity_counts().items() if n)
    extra = "".join(f", {counts[k]} {k}" for k in ("baselined", "suppressed") if counts[k])
    config = f"config {result.config}" if result.config else "no config file (defaults)"
    read = f"{counts['files_scanned']} files scanned"
    if result.audit:
        read = (
            f"{counts['accounts_audited']} account{'' if counts['accounts_audited'] == 1 else 's'} audited"
            f" ({counts['scopes_audited']} scopes: each region and IAM"
            f" of each account; {counts['resources_audited']} resources)"
        )
    return (
        f"netguard: {read}, {counts['findings']} findings"
        f"{f' ({by_severity})' if by_severity else ''}{extra}, {counts['errors']} errors; {config}"
    )


def _paint(text: str, severity: str, color: bool) -> str:
    return f"{_COLOUR[severity]}{text}{_RESET}" if color else text


def to_text(result: ScanResult, *, color: bool = False, quiet: bool = False) -> str:
    """Human-readable report; every piece that came from input is shown with control characters escaped.

    quiet keeps only what fails the run (failing findings and errors) and the summary. Each control
    reported is explained once at the end: its fix and where it is documented."""
    catalog = load_catalog()
    lines = []
    shown = result.failing() if quiet else result.findings
    for f in shown:
        title = catalog[f.control].title
        head = printable(f"{f.file}: " if f.account is not None else f"{f.file}:{f.line}: ")
        lines.append(
            head
            + _paint(f.severity.upper(), f.severity, color)
            + printable(f" {f.control} {title}: {f.resource}{_status(f)}")
        )
        lines.append(printable(f"    {f.message}  [{', '.join(f.engines)}]"))
        lines.extend(printable(f"    fix: {command}") for command in f.fix)
    for e in result.errors:
        where = f"{e.file}:{e.line}" if e.line else e.file
        lines.append(printable(f"error: {where}: {e.message}"))
    if not quiet:
        for notice in result.notices:
            lines.append(printable(f"notice: {notice}"))
        for change in result.selection.changes if result.selection else ():
            lines.append(printable(f"note: {change}"))
        reported = list(dict.fromkeys(f.control for f in shown))
        if reported:
            lines.append("")
            for cid in reported:
                lines.append(f"{cid} {catalog[cid].title}")
                lines.append(f"    fix: {catalog[cid].remediation}")
                lines.append(f"    docs: {doc_link(cid, result.docs_url)}")
    lines.append(summary_line(result))
    return "\n".join(lines) + "\n"


def to_json(result: ScanResult) -> str:
    """Every finding with its control's title, remediation and doc link; the config and the control
    selection, so a stored report says what it was measured against."""
    catalog = load_catalog()
    findings = []
    for f in result.findings:
        entry = f.to_dict()
        control = catalog[f.control]
        entry.update(
            title=control.title, remediation=control.remediation, help_uri=doc_link(f.control, result.docs_url)
        )
        findings.append(entry)
    selection = result.selection
    payload = {
        "version": __version__,
        "config": result.config,
        "controls": {
            "run": sorted(selection.enabled) if selection else sorted(catalog),
            "changes": list(selection.changes) if selection else [],
        },
        "findings": findings,
        "errors": [e.to_dict() for e in result.errors],
        "notices": list(result.notices),
        "summary": {**_summary(result), "by_severity": result.severity_counts()},
    }
    return json.dumps(payload, indent=2) + "\n"


def _uri(path: str) -> str:
    """A percent-encoded URI reference: relative to the working directory when the file is below it."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.resolve().relative_to(Path.cwd())
        except ValueError:
            return p.as_uri()
    return quote(p.as_posix(), safe="/")


def sarif_rules(docs_url: str | None = None) -> list[dict]:
    """One reportingDescriptor per catalogue control, in catalogue order. helpUri only with a published
    docs_url: SARIF wants an absolute URI, and a link to a page that does not exist helps nobody."""
    rules = []
    for control in load_catalog().values():
        link = doc_link(control.id, docs_url)
        rule = {
            "id": control.id,
            "name": "".join(word.capitalize() for word in control.title.replace("-", " ").split()),
            "shortDescription": {"text": control.title},
            "fullDescription": {"text": control.rationale},
            "help": {
                "text": f"{control.remediation} Docs: {link}",
                "markdown": f"**Remediation:** {control.remediation}\n\nDocs: {link}",
            },
            "defaultConfiguration": {"level": _SARIF_LEVEL[control.severity]},
            "properties": {
                "tags": ["security", "aws", "network", control.id],
                "security-severity": _SECURITY_SEVERITY[control.severity],
                "precision": "high",
                "problem.severity": "error" if control.severity in ("high", "critical") else "warning",
            },
        }
        if docs_url:
            rule["helpUri"] = link
        rules.append(rule)
    return rules


def _overrides(result: ScanResult) -> list[dict]:
    """SARIF ruleConfigurationOverrides: the controls the config or the command line turned off or re-rated."""
    selection = result.selection
    if selection is None:
        return []
    overrides = []
    for index, control in enumerate(load_catalog().values()):
        configuration: dict = {}
        if control.id not in selection.enabled:
            configuration["enabled"] = False
        if selection.severity_of(control.id) != control.severity:
            configuration["level"] = _SARIF_LEVEL[selection.severity_of(control.id)]
        if configuration:
            overrides.append({"descriptor": {"id": control.id, "index": index}, "configuration": configuration})
    return overrides


def _logical_locations(f: Finding) -> list[dict]:
    """The resource by logical id and, for CDK output, by construct path (its fully qualified name in
    the app, which is how CDK users find it)."""
    locations = [{"name": f.resource, "kind": "resource"}]
    if f.construct:
        locations.append({"name": f.construct.rsplit("/", 1)[-1], "fullyQualifiedName": f.construct, "kind": "module"})
    return locations


def _physical_location(f: Finding) -> dict:
    """A file and line for scan; for audit, the resource's ARN (a URI of scheme arn) and no line."""
    if f.account is not None:
        return {"artifactLocation": {"uri": quote(f.file, safe=":/*")}}
    return {"artifactLocation": {"uri": _uri(f.file)}, "region": {"startLine": max(f.line, 1)}}


def to_sarif(result: ScanResult) -> str:
    index = {control: i for i, control in enumerate(load_catalog())}
    results = []
    for f in result.findings:
        location = _physical_location(f)["artifactLocation"]["uri"]
        entry = {
            "ruleId": f.control,
            "ruleIndex": index[f.control],
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f.message},
            "locations": [{"physicalLocation": _physical_location(f), "logicalLocations": _logical_locations(f)}],
            "partialFingerprints": {
                "netguard/v1": f"{f.control}|{location}|{f.resource}"
                + (f"|{f.via}" if f.via else "")
                + (f"|{f.account}" if f.account is not None else "")
            },
            "properties": {"engines": f.engines},
        }
        if f.account is not None:
            entry["properties"].update(account=f.account, region=f.region, fix=list(f.fix))
        for key in ("construct", "stack"):
            if getattr(f, key):
                entry["properties"][key] = getattr(f, key)
        if f.suppressed is not None:
            kind = "external" if f.suppressed_by else "inSource"  # external: the config's, by construct path
            entry["suppressions"] = [{"kind": kind, "justification": f.suppressed}]
        if result.baseline:
            entry["baselineState"] = "unchanged" if f.baselined else "new"
        results.append(entry)
    notifications = []
    for e in result.errors:
        location = {"physicalLocation": {"artifactLocation": {"uri": _uri(e.file)}}}
        if e.line:
            location["physicalLocation"]["region"] = {"startLine": e.line}
        notifications.append({"level": "error", "message": {"text": e.message}, "locations": [location]})
    notifications.extend({"level": "note", "message": {"text": notice}} for notice in result.notices)
    invocation = {"executionSuccessful": not result.errors, "toolExecutionNotifications": notifications}
    overrides = _overrides(result)
    if overrides:
        invocation["ruleConfigurationOverrides"] = overrides
    invocation["properties"] = {
        "config": result.config,
        "controlChanges": list(result.selection.changes) if result.selection else [],
    }
    driver = {"name": "netguard", "version": __version__, "rules": sarif_rules(result.docs_url)}
    if result.docs_url:
        driver["informationUri"] = result.docs_url
    run = {"tool": {"driver": driver}, "results": results, "invocations": [invocation]}
    sarif = {"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0", "runs": [run]}
    return json.dumps(sarif, indent=2) + "\n"


def to_junit(result: ScanResult) -> str:
    """One testcase per (scanned file, control that applies to it); failures list the resources.
    For audit, one per (account and region, or account and IAM; control evaluated there)."""
    by_case: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for f in result.failing():
        by_case[(f"{f.account}/{f.region}" if f.account is not None else f.file, f.control)].append(f)
    cases = set(by_case)
    enabled = result.selection.enabled if result.selection else frozenset(load_catalog())
    broken = {e.file for e in result.errors}  # a file that could not be evaluated passed nothing
    for file in result.files:
        if file in broken:
            continue
        framework = "terraform" if file.endswith(".tf") else "cloudformation"
        cases |= {(file, c.id) for c in load_catalog().values() if c.resource_types(framework) and c.id in enabled}
    for scope, controls in result.audit.scopes if result.audit else ():
        cases |= {(scope, control) for control in controls}
    suite = ET.Element(
        "testsuite",
        name="netguard",
        tests=str(len(cases) + len(result.errors)),
        failures=str(len(by_case)),
        errors=str(len(result.errors)),
    )
    for file, control in sorted(cases):
        case = ET.SubElement(suite, "testcase", classname=file, name=control)
        findings = by_case.get((file, control))
        if findings:
            failure = ET.SubElement(
                case, "failure", message=f"{len(findings)} resource(s) fail {control}", type=findings[0].severity
            )
            failure.text = "\n".join(
                f"{f.file}: {f.message}" if f.account is not None else f"{f.resource} (line {f.line}): {f.message}"
                for f in findings
            )
    for e in result.errors:
        case = ET.SubElement(suite, "testcase", classname=e.file, name="input")
        error = ET.SubElement(case, "error", message=e.message)
        error.text = e.message
    for element in suite.iter():  # XML 1.0 cannot hold most control characters: show them escaped
        element.attrib.update({k: printable(v) for k, v in element.attrib.items()})
        if element.text:
            element.text = "\n".join(printable(line) for line in element.text.split("\n"))
    if result.notices:
        ET.SubElement(suite, "system-out").text = "\n".join(printable(n) for n in result.notices)
    properties = ET.Element("properties")
    ET.SubElement(properties, "property", name="config", value=printable(result.config or "(defaults)"))
    suite.insert(0, properties)
    suites = ET.Element("testsuites")
    suites.append(suite)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _escape_data(text: str) -> str:
    """Workflow-command encoding, then every other control character shown escaped."""
    return printable(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def to_github(result: ScanResult) -> str:
    """GitHub Actions workflow commands: one annotation per failing finding and per error."""
    lines = []
    for f in result.failing():
        level = "error" if f.severity in ("high", "critical") else "warning"
        title = _escape_property(f"{f.control} {f.resource}")
        lines.append(
            f"::{level} file={_escape_property(_uri(f.file))},line={max(f.line, 1)},title={title}::"
            f"{_escape_data(f.message)}"
        )
    for e in result.errors:
        line = f",line={e.line}" if e.line else ""
        lines.append(
            f"::error file={_escape_property(_uri(e.file))}{line},title=netguard input error::{_escape_data(e.message)}"
        )
    lines.extend(f"::notice title=netguard::{_escape_data(notice)}" for notice in result.notices)
    lines.append(summary_line(result))
    return "\n".join(lines) + "\n"
