"""The scan result: findings (control, file, resource, line) and input errors.

`netguard audit` reuses it, so its reports have the formats and exit codes of scan: an audit finding's
`file` is the resource's ARN, `line` is 0, and account, region and fix are set (they stay unset, and
out of every report, for scan)."""

from __future__ import annotations

from dataclasses import dataclass, field

from netguard.catalog import SEVERITY_ORDER
from netguard.errors import InputError
from netguard.scan.selection import Selection


@dataclass
class Finding:
    control: str
    file: str
    resource: str
    line: int
    severity: str
    message: str
    engines: list[str] = field(default_factory=list)
    suppressed: str | None = None  # the reason, when a suppression comment covers it
    baselined: bool = False  # present in the --baseline file: reported, but does not fail the run
    via: str | None = None  # a called module's resource: the root module block it was called from
    construct: str | None = None  # CDK output: the resource's construct path (aws:cdk:path without /Resource)
    stack: str | None = None  # CDK output: the display name of the stack whose template holds the resource
    suppressed_by: str | None = None  # the config file whose suppression covers it (None: in the source)
    account: str | None = None  # audit: the account the resource is in
    region: str | None = None  # audit: its region, "global" for IAM
    fix: tuple[str, ...] = ()  # audit: AWS CLI commands that remediate it, ids filled in (never run)

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        # an AWS managed policy has one ARN in every account: the account keeps their findings apart
        return (self.file, self.resource, self.control, self.via or "", self.account or "")

    def to_dict(self) -> dict:
        data = {
            "control": self.control,
            "file": self.file,
            "resource": self.resource,
            "line": self.line,
            "severity": self.severity,
            "engine": ",".join(self.engines),
            "engines": list(self.engines),
            "message": self.message,
        }
        if self.construct:
            data["construct"] = self.construct
        if self.stack:
            data["stack"] = self.stack
        if self.suppressed is not None:
            data["suppressed"] = True
            data["suppression_reason"] = self.suppressed
            if self.suppressed_by:
                data["suppressed_by"] = self.suppressed_by
        if self.baselined:
            data["baselined"] = True
        if self.via:
            data["via"] = self.via
        if self.account is not None:
            data.update(arn=self.file, account=self.account, region=self.region, fix=list(self.fix))
        return data


@dataclass(frozen=True)
class AuditScope:
    """What an audit read, for the summary and the JUnit cases: a scan counts files, an audit counts
    accounts, the (account, region) scopes it evaluated and the resources it examined."""

    accounts: tuple[str, ...]
    scopes: tuple[tuple[str, tuple[str, ...]], ...]  # ("ACCOUNT/REGION" or "ACCOUNT/global", controls evaluated)
    resources: int


@dataclass
class ScanResult:
    findings: list[Finding] = field(default_factory=list)
    _by_key: dict[tuple[str, str, str, str, str], Finding] = field(default_factory=dict, repr=False)
    errors: list[InputError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # what a reader should know but does not fail the run
    baseline: str | None = None  # the baseline file the findings were compared with
    config: str | None = None  # the config file the scan used (None: the defaults)
    docs_url: str | None = None  # base URL of the published controls documentation
    selection: Selection | None = None  # the controls that ran and why any differ from the catalogue
    audit: AuditScope | None = None  # set by `netguard audit`: what it read instead of files

    @property
    def files_scanned(self) -> int:
        return len(self.files)

    def add(self, finding: Finding) -> None:
        """Merge by (file, resource, control): one finding, listing every engine that reported it."""
        existing = self._by_key.get(finding.key)
        if existing is None:
            self._by_key[finding.key] = finding
            self.findings.append(finding)
            return
        for engine in finding.engines:
            if engine not in existing.engines:
                existing.engines.append(engine)
        if finding.line and (not existing.line or finding.line < existing.line):
            existing.line = finding.line

    def sort(self) -> None:
        self.findings.sort(key=lambda f: (f.account or "", f.file, f.line, f.control, f.resource))
        self.errors.sort(key=lambda e: (e.file, e.line or 0))

    def active(self) -> list[Finding]:
        """Findings no suppression covers (baselined ones included)."""
        return [f for f in self.findings if f.suppressed is None]

    def failing(self) -> list[Finding]:
        """Findings that fail the run: not suppressed and not in the baseline."""
        return [f for f in self.active() if not f.baselined]

    def exit_code(self) -> int:
        if self.errors:
            return 2
        return 1 if self.failing() else 0

    def apply_selection(self, selection: Selection) -> None:
        """Drop the findings of controls that did not run; give the rest their configured severity."""
        self.selection = selection
        self.findings = [f for f in self.findings if f.control in selection.enabled]
        for finding in self.findings:
            finding.severity = selection.severity_of(finding.control)
        self._by_key = {f.key: f for f in self.findings}

    def severity_counts(self) -> dict[str, int]:
        """Failing findings per severity, most severe first."""
        counts = {s: 0 for s in sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.get, reverse=True)}
        for finding in self.failing():
            counts[finding.severity] += 1
        return counts

    def apply_threshold(self, threshold: str) -> None:
        floor = SEVERITY_ORDER[threshold]
        self.findings = [f for f in self.findings if SEVERITY_ORDER[f.severity] >= floor]
        self._by_key = {f.key: f for f in self.findings}
