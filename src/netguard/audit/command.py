"""`netguard audit`: the catalogue's controls on what is deployed, read-only, in one account or in
every account of an organization, with the same report formats and exit codes as `netguard scan`.

An account or region that cannot be read (its role cannot be assumed, a region not enabled, an
endpoint down) is an error naming it, and the rest of the audit goes on: exit 2, every other
account's findings still reported.
"""

from __future__ import annotations

import argparse
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netguard.errors import InputError, NetguardError, printable

if TYPE_CHECKING:
    from netguard.audit.checks import Hit
    from netguard.audit.collect import Reader
    from netguard.config import ScanConfig
    from netguard.scan.findings import Finding
    from netguard.scan.selection import Selection

FORMATS = ("text", "json", "sarif", "junit")
DEFAULT_ROLE = "NetguardAudit"
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_REGION = re.compile(r"^[a-z]{2,4}(-[a-z]+)+-[0-9]+$")  # eu-west-1, and eusc-de-east-1 (European Sovereign Cloud)


def _ids(pattern: re.Pattern, what: str):
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if not pattern.match(v)]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"not {what}: {', '.join(bad) or repr(text)}")
        return values

    return parse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from netguard.org.aws import add_retry_option
    from netguard.scan.command import positive_int

    audit = sub.add_parser(
        "audit",
        help="apply the controls to live AWS accounts, read-only, and print the fix for each finding",
        description="Exit codes: 0 no failing findings, 1 failing findings, 2 errors (an account or region not"
        " read, bad arguments or config); the rest of the audit is reported either way. See docs/audit.md.",
    )
    audit.add_argument("--profile", help="AWS profile of the identity running the audit")
    audit.add_argument("--endpoint-url", help="one endpoint for every AWS service (e.g. a moto server)")
    audit.add_argument(
        "--organization",
        action="store_true",
        help="audit every ACTIVE account of the caller's organization (organizations:ListAccounts), assuming --role"
        " in each; without it, the caller's own account (and any --accounts, through --role)",
    )
    audit.add_argument(
        "--accounts",
        type=_ids(_ACCOUNT, "12-digit account ids"),
        action="extend",
        metavar="ID,...",
        help="only these accounts (comma-separated, repeatable)",
    )
    audit.add_argument(
        "--regions",
        type=_ids(_REGION, "region names"),
        action="extend",
        metavar="REGION,...",
        help="only these regions (default: every region enabled in the account); one not enabled is an error",
    )
    audit.add_argument("--role", default=DEFAULT_ROLE, help=f"role assumed in each account (default {DEFAULT_ROLE})")
    audit.add_argument("--external-id", help="ExternalId the role's trust policy requires")
    audit.add_argument(
        "--jobs", "-j", type=positive_int, default=4, metavar="N", help="accounts read at once (default 4)"
    )
    audit.add_argument(
        "--config", metavar="FILE", help="configuration file (default: the working directory's repository's)"
    )
    audit.add_argument("--check", action="append", metavar="IDS", help="run only these controls (as scan's)")
    audit.add_argument("--skip-check", action="append", metavar="IDS", help="leave these controls out (as scan's)")
    audit.add_argument("--format", "-f", choices=FORMATS, default="text", help="the report on stdout (default text)")
    audit.add_argument(
        "--output",
        "-o",
        action="append",
        default=[],
        metavar="[FORMAT=]FILE",
        help="write a report to FILE (FORMAT=FILE, repeatable); the terminal still gets the text report",
    )
    audit.add_argument("--no-color", action="store_true", help="no colour on a terminal (also: NO_COLOR set)")
    audit.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    add_retry_option(audit)
    audit.set_defaults(run=run)


@dataclass
class AccountResult:
    """What one account's audit produced: findings, errors (naming account and region) and scope."""

    account: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    scopes: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    resources: int = 0
    notices: list[str] = field(default_factory=list)  # what was left to others or deserves a look


@dataclass(frozen=True)
class AuditPlan:
    """Everything an account's audit needs besides its Reader; shared read-only by the worker threads."""

    config: ScanConfig
    enabled: frozenset[str]
    severity: dict[str, str]
    regions: tuple[str, ...]
    role: str
    external_id: str | None
    retry_seconds: float
    debug: bool = False


def run(args: argparse.Namespace) -> int:
    """Audit; exit 0 clean, 1 findings, 2 errors."""
    from netguard.scan.command import outputs, use_color
    from netguard.scan.findings import AuditScope, ScanResult
    from netguard.scan.report import render
    from netguard.scan.run import resolve_config
    from netguard.scan.selection import select

    for value in args.output:  # audit writes no github report: it has no files to annotate
        name, sep, _ = value.partition("=")
        if sep and name == "github":
            raise NetguardError("--output", "audit reports are text, json, sarif or junit")
    reports = outputs(args.output, args.format)
    config = resolve_config(args.config)
    selection = select(args.check, args.skip_check, dict(config.controls))
    results = audit(args, config, selection)

    result = ScanResult(config=config.source, docs_url=config.docs_url)
    for account in results:
        for finding in account.findings:
            result.add(finding)
        result.errors.extend(account.errors)
        result.notices.extend(account.notices)
    if not any(r.scopes for r in results):  # nothing read is never a clean pass
        result.errors.append(InputError("audit", "no account, region or IAM scope was audited, so nothing was judged"))
    result.apply_selection(selection)
    result.apply_threshold(config.severity_threshold)
    for finding in result.findings:
        rule = next((s for s in config.audit_suppressions if s.covers(finding.control, finding.file)), None)
        if rule is not None:
            finding.suppressed, finding.suppressed_by = rule.reason, config.source
    result.audit = AuditScope(
        accounts=tuple(r.account for r in results if r.scopes),  # an account not read at all is an error
        scopes=tuple(scope for r in results for scope in r.scopes),
        resources=sum(r.resources for r in results),
    )
    result.sort()
    for fmt, path in reports:
        try:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(render(result, fmt))
        except OSError as exc:
            raise NetguardError(path, f"cannot write report: {exc.strerror}") from None
    terminal = "text" if any(path for fmt, path in reports if fmt == args.format) else args.format
    sys.stdout.write(render(result, terminal, color=use_color(args)))
    if result.errors and terminal != "text":
        for error in result.errors:
            print(printable(f"netguard: error: {error.file}: {error.message}"), file=sys.stderr)
    return result.exit_code()


def audit(args: argparse.Namespace, config: ScanConfig, selection: Selection) -> list[AccountResult]:
    """Find the accounts, then read each (at most --jobs at once) through its own session."""
    from netguard.audit import collect
    from netguard.org.aws import AwsCallFailed

    plan = AuditPlan(
        config=config,
        enabled=selection.enabled,
        severity=dict(selection.severity),
        regions=tuple(dict.fromkeys(args.regions or ())),
        role=args.role,
        external_id=args.external_id,
        retry_seconds=args.aws_retry_seconds,
        debug=bool(getattr(args, "debug", False)),
    )
    caller, caller_account = collect.caller(args.profile, args.endpoint_url, args.aws_retry_seconds)
    wanted = list(dict.fromkeys(args.accounts or ()))
    problems: list[AccountResult] = []
    if args.organization:
        members = collect.organization_accounts(caller)
        accounts = [a for a, state in members.items() if state == "ACTIVE" and (not wanted or a in wanted)]
        for account, state in sorted(members.items()):
            if state != "ACTIVE" and (not wanted or account in wanted):
                note = f"account {account} is {state} in the organization (not ACTIVE): not audited"
                if wanted:  # asked for by name: not auditing it is an error, not a remark
                    problems.append(AccountResult(account, errors=[InputError(account, note)]))
                else:
                    problems.append(AccountResult(account, notices=[note]))
        for missing in (a for a in wanted if a not in members):
            problems.append(
                AccountResult(
                    missing,
                    errors=[
                        InputError(missing, f"account {missing} is not an account of the organization: not audited")
                    ],
                )
            )
        if not accounts and not wanted:
            problems.append(
                AccountResult(
                    "organization",
                    errors=[
                        InputError(
                            "organization",
                            f"ListAccounts listed no ACTIVE account ({len(members)} in all): nothing audited",
                        )
                    ],
                )
            )
    else:
        accounts = wanted or [caller_account]

    caller.client("sts")  # made here, once: the worker threads share this client, never the session

    def one(account: str) -> AccountResult:
        try:
            if account == caller_account:  # the caller's own account: read with its own credentials
                reader = collect.own_account(args.profile, caller, account)
            else:
                reader = collect.assume(caller, account, plan.role, plan.external_id, plan.retry_seconds)
        except (AwsCallFailed, NetguardError) as exc:
            return AccountResult(account, errors=[InputError(account, f"account {account}: {_message(exc)}")])
        except Exception as exc:  # one account's surprise must not lose every other account's findings
            return AccountResult(account, errors=[_internal(account, f"account {account}", exc, plan)])
        try:
            return audit_account(reader, account, plan)
        except Exception as exc:
            return AccountResult(account, errors=[_internal(account, f"account {account}", exc, plan)])

    with ThreadPoolExecutor(max_workers=max(1, min(args.jobs, len(accounts) or 1))) as pool:
        done = list(pool.map(one, accounts))
    return sorted(done + problems, key=lambda r: r.account)


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, NetguardError) else f"{type(exc).__name__}: {exc}"


def _internal(scope: str, where: str, exc: Exception, plan: AuditPlan) -> InputError:
    """An unexpected exception (an odd shape in an answer, a bug) as the error of the one scope it hit,
    so the rest of the audit is still reported; --debug also prints its traceback."""
    if plan.debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    return InputError(scope, f"{where}: not audited: internal error {type(exc).__name__}: {exc}")


def audit_account(reader: Reader, account: str, plan: AuditPlan) -> AccountResult:
    """Regions one after another, then IAM once (it is global). A failed region or IAM read is an
    error of its own; the account's other regions still count."""
    from netguard.audit import checks, collect

    result = AccountResult(account)
    try:
        enabled_regions = collect.enabled_regions(reader)
    except NetguardError as exc:
        result.errors.append(InputError(account, f"account {account}: no region audited: {exc.message}"))
        enabled_regions = []
        regions: list[str] = []
    else:
        regions = list(plan.regions) or enabled_regions
    region_controls = tuple(c for c in checks.REGION_CONTROLS if c in plan.enabled)
    if region_controls and not enabled_regions and not result.errors:  # an empty answer must not read as clean
        result.errors.append(
            InputError(account, f"account {account}: DescribeRegions listed no enabled region: no region audited")
        )
    for region in regions if region_controls else ():
        scope = f"{account}/{region}"
        if region not in enabled_regions:
            if enabled_regions:
                result.errors.append(
                    InputError(
                        scope,
                        f"account {account}, region {region}: the region is not enabled in this account (an opt-in"
                        " region not opted in to, or not a region): not audited",
                    )
                )
            continue
        try:
            snapshot = collect.read_region(reader, region, plan.enabled)
            hits = checks.check_region(snapshot, account, region, plan.config, plan.enabled)
            findings = [_finding(hit, account, region, plan) for hit in hits]
            notices = checks.region_notices(snapshot, account, region, plan.enabled)
        except NetguardError as exc:
            result.errors.append(InputError(scope, f"account {account}, region {region}: {exc.message}"))
            continue
        except Exception as exc:  # judged per region: the account's other regions still count
            result.errors.append(_internal(scope, f"account {account}, region {region}", exc, plan))
            continue
        result.resources += snapshot.count()
        result.scopes.append((scope, region_controls))
        result.findings.extend(findings)
        result.notices.extend(notices)
    iam_controls = tuple(c for c in checks.IAM_CONTROLS if c in plan.enabled)
    if iam_controls:
        scope = f"{account}/global"
        try:
            snapshot = collect.read_iam(reader)
            hits, problems, notices = checks.check_iam(snapshot, plan.enabled)
            findings = [_finding(hit, account, "global", plan) for hit in hits]
        except NetguardError as exc:
            result.errors.append(InputError(scope, f"account {account}, IAM: {exc.message}"))
        except Exception as exc:
            result.errors.append(_internal(scope, f"account {account}, IAM", exc, plan))
        else:
            result.resources += snapshot.count()
            result.scopes.append((scope, iam_controls))
            result.findings.extend(findings)
            result.errors.extend(InputError(scope, f"account {account}, IAM: {p}") for p in problems)
            result.notices.extend(f"account {account}, IAM: {n}" for n in notices)
    return result


def _finding(hit: Hit, account: str, region: str, plan: AuditPlan) -> Finding:
    from netguard.audit.fixes import fill
    from netguard.catalog import load_catalog
    from netguard.scan.findings import Finding

    common = {"account": account} if region == "global" else {"account": account, "region": region}
    return Finding(
        control=hit.control,
        file=hit.arn,
        resource=hit.resource,
        line=0,
        severity=plan.severity[hit.control],
        message=hit.message,
        engines=["netguard-audit"],
        account=account,
        region=region,
        fix=fill(load_catalog()[hit.control].fix, hit.values, common),
    )
