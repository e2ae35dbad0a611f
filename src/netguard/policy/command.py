"""`netguard policy`: render, validate, simulate and replay the SCP guardrails."""

from __future__ import annotations

import argparse
import os
import re
import sys

from netguard.errors import NetguardError, printable
from netguard.org.aws import add_retry_option
from netguard.policy.limits import add_limit_options, limits_from, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    policy = sub.add_parser(
        "policy",
        help="render, validate, simulate and replay the SCP guardrails",
        description="Render the guardrails for an organization, validate SCP files, and evaluate SCPs "
        "against CloudTrail records (simulate: one decision per record; replay: impact grouped over history).",
    )
    actions = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")
    render = actions.add_parser("render", help="write the organization's guardrails, minified, into a folder")
    render.add_argument("--config", required=True, metavar="ORG_YAML", help="organization config")
    _output_option(render)
    render.add_argument(
        "--kind",
        choices=("scp", "iam"),
        default="scp",
        help="scp: service control policies; iam: permission boundary and NetworkAdmin policy",
    )
    validate = actions.add_parser("validate", help="check SCP files: grammar, size, Sids, actions, lockout guard")
    validate.add_argument("paths", nargs="+", metavar="PATH", help="policy files or folders of *.json")
    validate.add_argument("--config", metavar="ORG_YAML", help="organization config (exemptions, size limit)")
    validate.add_argument("--size-limit", type=positive_int, metavar="N", help="characters per SCP (default 10240)")
    validate.add_argument("--format", choices=("text", "json"), default="text")
    simulate = actions.add_parser("simulate", help="decide each CloudTrail record against the SCPs, offline")
    _policies_options(simulate)
    simulate.add_argument(
        "--events", required=True, nargs="+", metavar="PATH", help="CloudTrail files or folders of them"
    )
    simulate.add_argument(
        "--config", metavar="ORG_YAML", help="organization config (management account, organization id)"
    )
    _principal_tags_option(simulate)
    simulate.add_argument(
        "--no-full-aws-access", action="store_true", help="do not assume FullAWSAccess is attached at every level"
    )
    simulate.add_argument("--format", choices=("text", "json"), default="text")
    _fail_on_option(simulate, "record")
    add_limit_options(simulate)
    replay = actions.add_parser("replay", help="whom would the SCPs have blocked? CloudTrail history, grouped")
    _policies_options(replay)
    _events_option(replay)
    replay.add_argument("--since", type=_date, metavar="DATE", help="first day (YYYY-MM-DD or ISO time)")
    replay.add_argument(
        "--until", type=_date, metavar="DATE", help="last moment (YYYY-MM-DD is the start of it); not before --since"
    )
    replay.add_argument(
        "--accounts",
        nargs="+",
        type=_account_ids,
        default=[],
        metavar="ID",
        help="only these 12-digit account ids (spaces or commas between them)",
    )
    replay.add_argument(
        "--regions",
        nargs="+",
        type=_region_names,
        default=[],
        metavar="REGION",
        help="only these regions, such as eu-west-1 (spaces or commas between them)",
    )
    replay.add_argument(
        "--config", metavar="ORG_YAML", help="organization config (management account, organization id)"
    )
    _principal_tags_option(replay)
    replay.add_argument("--no-full-aws-access", action="store_true")
    replay.add_argument(
        "--format",
        choices=("text", "json", "csv", "html"),
        default="text",
        help="html: one self-contained page (charts, top principals; docs/replay-report.md), to stdout",
    )
    _fail_on_option(replay, "group")
    replay.add_argument(
        "--jobs",
        "-j",
        type=positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="worker processes (default: the cores)",
    )
    replay.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="local: worker processes on this machine; spark: a Spark job (netguard[spark], docs/replay-spark.md)",
    )
    replay.add_argument("--spark-master", metavar="URL", help="with --engine spark: the master, such as local[2]")
    replay.add_argument(
        "--emit-sql",
        action="store_true",
        help="print the Athena (Trino) query that selects the records to replay from a CloudTrail table in "
        "AWS's documented DDL, with the pre-filter and the filters, and exit; feed its results back with "
        "--events (docs/replay-athena.md)",
    )
    replay.add_argument(
        "--table", default="cloudtrail_logs", help="with --emit-sql: the table (default cloudtrail_logs)"
    )
    replay.add_argument(
        "--sql-dialect",
        choices=("athena", "duckdb"),
        default="athena",
        help="with --emit-sql: athena (Trino, the default) or duckdb (what the tests run)",
    )
    replay.add_argument(
        "--partitions",
        choices=("none", "manual", "projection"),
        default="none",
        help="with --emit-sql: the table's partitions, so --since/--until/--regions prune folders: manual "
        "(region, year, month, day) or projection (timestamp yyyy/MM/dd), as AWS's DDLs make them",
    )
    replay.add_argument("--endpoint-url", help="S3 endpoint (e.g. a moto server)")
    replay.add_argument("--profile", help="AWS profile for S3")
    replay.add_argument("--region", help="AWS region for S3")
    add_retry_option(replay)
    add_limit_options(replay)

    policy.set_defaults(run=run)


def _policies_options(parser: argparse.ArgumentParser) -> None:
    """What the records are decided against: a folder of SCPs as if attached to every account, or the
    organization's real chains from a snapshot plus the guardrails org.yaml would roll out."""
    against = parser.add_mutually_exclusive_group(required=True)
    against.add_argument("--policies", metavar="DIR", help="folder of rendered SCPs, as if attached everywhere")
    against.add_argument(
        "--org",
        metavar="SNAPSHOT",
        help="organization snapshot (`netguard org export`): each record is decided against its caller's "
        "account's SCP chain today and after the rollout of --config's targets; needs --config",
    )
    parser.add_argument(
        "--stage",
        choices=("canary", "all"),
        default="all",
        help="with --org: the rollout stage to evaluate, as `org apply --stage` (default all)",
    )


def _chains(args: argparse.Namespace, org):
    """The organization's chains today and after the rollout (--org), or None with --policies."""
    if not args.org:
        if args.stage != "all":
            raise NetguardError("--stage", "only with --org: --policies folders have no stages")
        return None
    from netguard.org.snapshot import load_snapshot
    from netguard.policy.orgchain import org_chains

    if org is None:
        raise NetguardError("--org", "needs --config ORG_YAML: its guardrails and targets are the rollout evaluated")
    if args.no_full_aws_access:
        raise NetguardError("--no-full-aws-access", "not with --org: the snapshot says where FullAWSAccess is attached")
    snapshot = load_snapshot(args.org)
    for what, ours, theirs in (
        ("management account", org.management_account_id, snapshot.management_account_id),
        ("organization", org.organization_id, snapshot.organization_id),
    ):
        if ours and ours != theirs:
            raise NetguardError(
                args.org,
                f"{what} {theirs} differs from {ours} in {org.source or 'the org config'}: "
                "a snapshot of another organization?",
            )
    return org_chains(snapshot, org, args.stage)


def _output_option(render: argparse.ArgumentParser) -> None:
    """Every "where to write" is --output/-o, as in `netguard scan`; render's former --out still works
    but is left out of the help, so that the help shows one name per idea."""
    where = render.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--output",
        "-o",
        dest="output",
        metavar="DIR",
        help="folder for the rendered policies, render's own: a new or empty one, or one it rendered before "
        "(it removes its files no longer rendered and refuses files it did not write; --out is the former name)",
    )
    where.add_argument("--out", dest="output", metavar="DIR", help=argparse.SUPPRESS)


def _events_option(replay: argparse.ArgumentParser) -> None:
    """Every "CloudTrail input" is --events, as in simulate; replay's former --source still works but
    is left out of the help."""
    source = replay.add_mutually_exclusive_group()  # required unless --emit-sql: checked in _replay
    source.add_argument(
        "--events",
        dest="events",
        metavar="PATH|s3://BUCKET/PREFIX",
        help="CloudTrail logs: a file, a folder, or an S3 prefix; or Athena's results of --emit-sql's query, "
        "CSV or GetQueryResults JSON (--source is the former name)",
    )
    source.add_argument("--source", dest="events", metavar="PATH|s3://BUCKET/PREFIX", help=argparse.SUPPRESS)


_ACCOUNT_ID = re.compile(r"\d{12}")
# A region name as AWS forms them: us-east-1, eu-central-2, us-gov-west-1, cn-northwest-1, us-isob-east-1.
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


def _values(text: str, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    """One value or a comma list, each checked, so that a typo is refused rather than filtering out
    every record."""
    values = tuple(part.strip() for part in text.split(",") if part.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"no {what} in {text!r}")
    for value in values:
        if not pattern.fullmatch(value):
            raise argparse.ArgumentTypeError(f"not {what}: {value[:40]!r}")
    return values


def _account_ids(text: str) -> tuple[str, ...]:
    return _values(text, _ACCOUNT_ID, "a 12-digit account id")


def _region_names(text: str) -> tuple[str, ...]:
    return _values(text, _REGION, "a region name such as eu-west-1")


def _date(text: str):
    """A day or a moment, in UTC as CloudTrail's eventTime is: a time with an offset is converted, not
    stripped of it."""
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text[:40]!r} (YYYY-MM-DD or ISO time)") from None
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


# What --fail-on accepts, and the decision each names. AlreadyFailing is not among them: a call that
# failed when it was made is not impact, so it never fails a pipeline.
FAIL_ON = {"deny": "Deny", "indeterminate": "Indeterminate"}


def _fail_on_value(text: str) -> frozenset[str]:
    """One decision or a comma list, so `--fail-on deny,indeterminate` and two options mean the same."""
    chosen = set()
    for part in text.split(","):
        word = part.strip().lower()
        if word not in FAIL_ON:
            raise argparse.ArgumentTypeError(f"not a decision: {part.strip()[:40]!r} (choose from deny, indeterminate)")
        chosen.add(FAIL_ON[word])
    return frozenset(chosen)


def _fail_on_option(parser: argparse.ArgumentParser, unit: str) -> None:
    parser.add_argument(
        "--fail-on",
        type=_fail_on_value,
        action="append",
        default=[],
        metavar="deny|indeterminate",
        help=f"exit 1 when a {unit} has this decision (repeatable or a comma list; AlreadyFailing never "
        "counts; errors still exit 2); default: exit 0 whatever the decisions",
    )


def _failed_on(args: argparse.Namespace, found: dict[str, str]) -> int:
    """Exit 1 when --fail-on names a decision the run found (found: decision -> how much of it, for
    the message), saying which on stderr so that a failed pipeline step explains itself; else 0."""
    wanted = set().union(*args.fail_on)
    hits = [f"{decision}: {amount}" for decision, amount in found.items() if decision in wanted and amount]
    if not hits:
        return 0
    print(f"netguard: exit 1 (--fail-on): {'; '.join(hits)}", file=sys.stderr)
    return 1


def _principal_tags_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--principal-tags",
        metavar="FILE",
        help="YAML mapping principal ARN patterns to their tags, so tag exemptions get definite answers",
    )


def _org_facts(args: argparse.Namespace, org, chains=None):
    """What the records lack, from the org config, the snapshot (--org) and the principal tags file
    (policy/facts.py)."""
    from pathlib import Path

    from netguard.policy.facts import OrgFacts, PrincipalTags, load_principal_tags

    tags = load_principal_tags(Path(args.principal_tags)) if args.principal_tags else PrincipalTags()
    management = chains.management_account_id if chains else org.management_account_id if org else None
    organization = (org.organization_id if org else None) or (chains.organization_id if chains else None)
    return OrgFacts(management, organization, principal_tags=tags)


def _progress(args: argparse.Namespace, client):
    """Progress on stderr for a terminal (netguard/progress.py); the files of a local --events are
    counted first, with a filter of their own (counting must not count skips twice), for an ETA."""
    from netguard import progress
    from netguard.policy import replay as rp

    total = None
    if progress.wanted() and client is None and args.engine == "local":
        counting = rp.Filters(
            args.since, args.until, frozenset().union(*args.accounts), frozenset().union(*args.regions)
        )
        total = sum(1 for _ in rp.Source(args.events).files(counting))
    return progress.Progress(total)


def _replay(args: argparse.Namespace, org) -> int:
    from pathlib import Path

    from netguard.org import aws
    from netguard.policy import replay as rp
    from netguard.policy.simulate import load_policy_levels

    if args.since and args.until and args.since > args.until:  # no record could be in scope
        raise NetguardError("--since", f"{args.since.isoformat()} is after --until {args.until.isoformat()}: swap them")
    chains = _chains(args, org)
    facts = _org_facts(args, org, chains)
    if chains is None:
        levels, errors = load_policy_levels(Path(args.policies), full_aws_access=not args.no_full_aws_access)
        if errors:
            for error in errors:
                print(printable(f"netguard: error: {error.file}: {error.message}"), file=sys.stderr)
            return 2
        compiled = rp.compile_policies(levels)
    else:
        compiled = chains
    if args.emit_sql:  # the query for Athena; no log is read
        from netguard.policy.athena import emit_sql

        sys.stdout.write(emit_sql(args, compiled, chains))
        return 0
    if not args.events:  # as argparse says it of a required option, which --events is but with --emit-sql
        print(
            "netguard policy replay: error: one of the arguments --events is required (or --emit-sql)", file=sys.stderr
        )
        raise SystemExit(2)
    client = None
    if "://" in args.events and args.engine == "spark":  # Spark reads s3a:// (and s3://) through Hadoop
        pass
    elif args.events.startswith("s3://"):
        from netguard.org.rollout import make_client

        client = make_client("s3", endpoint_url=args.endpoint_url, profile=args.profile, region=args.region)
    elif not Path(args.events).exists():
        raise NetguardError(args.events, "no such file or directory (--events)")
    filters = rp.Filters(args.since, args.until, frozenset().union(*args.accounts), frozenset().union(*args.regions))
    bar = _progress(args, client)

    def progress(totals) -> None:
        bar.update(totals.files, totals.records)

    if args.engine == "spark":  # the same Totals, computed by a Spark job (netguard/spark.py)
        from netguard import spark

        totals = spark.run_cli(args, compiled, filters, facts, limits_from(args))
    else:
        totals = rp.replay(
            compiled,
            rp.Source(args.events, client, limits_from(args), aws.Budget(call_seconds=args.aws_retry_seconds)),
            filters,
            facts=facts,
            jobs=args.jobs,
            progress=progress,
        )
    bar.close()
    if chains is not None:
        totals.organization = chains.describe()
    warnings = filters.warnings(totals) + (chains.warnings() if chains else [])
    if not totals.files and not filters.skipped_files:
        warnings.append(f"no CloudTrail log files (*.json, *.json.gz, *.gz) in --events {args.events}")
    if args.format == "csv":
        sys.stdout.write(rp.to_csv(totals))
    elif args.format == "html":  # drawn from the JSON report's own data, so the two cannot disagree
        from netguard.policy.html_report import page_from_cli

        sys.stdout.write(page_from_cli(rp.to_json(totals, warnings), args, filters.describe()))
    else:
        sys.stdout.write((rp.to_json if args.format == "json" else rp.to_text)(totals, warnings))
    for warning in warnings:  # on stderr too: a report sent to a file should not hide them
        print(printable(f"netguard: warning: {warning}"), file=sys.stderr)
    if args.format == "csv":  # a CSV report has no place for them
        for error in totals.errors:
            print(printable(f"netguard: error: {error.file}: {error.message}"), file=sys.stderr)
    if totals.errors:
        return 2
    return _failed_on(args, rp.decision_summary(totals))


def run(args: argparse.Namespace) -> int:
    """render, validate, simulate or replay."""
    from pathlib import Path

    from netguard.policy.orgconfig import load_org_config

    org = load_org_config(Path(args.config)) if getattr(args, "config", None) else None
    if args.policy_command == "render":
        from netguard.policy.render import render_folder

        out = Path(args.output)
        done = render_folder(org, out, kind=args.kind)
        for name, size in done.written:
            print(f"{out / (name + '.json')}: {size} characters")
        for name in done.removed:
            print(printable(f"{out / name}: removed, no longer rendered"))
        return 0
    if args.policy_command == "validate":
        return _validate(args, org)
    if args.policy_command == "replay":
        return _replay(args, org)
    from netguard.policy import simulate as sim

    chains = _chains(args, org)
    facts = _org_facts(args, org, chains)
    levels: list = []
    if chains is None:
        levels, errors = sim.load_policy_levels(Path(args.policies), full_aws_access=not args.no_full_aws_access)
        if errors:  # decisions without a policy that failed to load would pass what was never evaluated
            for error in errors:
                print(printable(f"netguard: error: {error.file}: {error.message}"), file=sys.stderr)
            print("netguard: no record evaluated: fix the policies above", file=sys.stderr)
            return 2
    outcome = sim.simulate(levels, [Path(p) for p in args.events], limits=limits_from(args), facts=facts, chains=chains)
    warnings = (chains.warnings() if chains else []) + [
        f"no CloudTrail log files (*.json, *.json.gz, *.gz) in --events {folder}"
        for folder in args.events
        if Path(folder).is_dir() and not any(True for _ in sim.event_files([Path(folder)]))
    ]
    if chains is not None:
        outcome.organization = chains.describe()
    sys.stdout.write((sim.to_json if args.format == "json" else sim.to_text)(outcome, warnings))
    for warning in warnings:  # on stderr too: a report sent to a file should not hide them
        print(printable(f"netguard: warning: {warning}"), file=sys.stderr)
    if outcome.errors:
        return 2
    return _failed_on(args, sim.decision_summary(outcome))


def _validate(args: argparse.Namespace, org) -> int:
    import json
    from pathlib import Path

    from netguard.policy.render import MANIFEST
    from netguard.policy.validate import validate_file

    limit = args.size_limit or (org.scp_size_limit if org else 10240)
    files: list[Path] = []
    report: list[dict] = []
    wrong: list[str] = []  # arguments that name nothing to check: the run stops before checking anything
    for raw in args.paths:
        path = Path(raw)
        if path.is_dir():  # render's manifest is no policy
            found = sorted(p for p in path.glob("*.json") if p.name != MANIFEST)
            if not found:
                wrong.append(f"{raw}: no policy files (*.json) in this folder")
            files.extend(found)
        elif path.name == MANIFEST:  # named by a pre-commit hook with the rendered files: not a policy
            continue
        elif path.is_file():
            files.append(path)
        elif path.exists() or path.is_symlink():
            wrong.append(f"{raw}: not a file or folder")
        else:
            wrong.append(f"{raw}: no such file or directory")
    if wrong:
        for message in wrong:
            print(printable(f"netguard: error: {message}"), file=sys.stderr)
        print("netguard: no policy checked: fix the paths above", file=sys.stderr)
        return 2
    for path in files:
        problems = validate_file(path, size_limit=limit, org=org)
        report.append({"file": str(path), "problems": problems})
    if args.format == "json":
        print(json.dumps({"policies": report}, indent=2))
    else:
        for entry in report:
            for problem in entry["problems"]:
                print(printable(f"{entry['file']}: {problem}"))
        bad = sum(1 for entry in report if entry["problems"])
        print(f"netguard: {len(report)} policies checked, {bad} with problems")
    return 2 if any(entry["problems"] for entry in report) else 0
