"""The netguard command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from netguard import __version__
from netguard.errors import NetguardError, printable
from netguard.policy.limits import add_limit_options, limits_from


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netguard", description="Policy-as-code guardrails for AWS networks.")
    parser.add_argument("--version", action="version", version=f"netguard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    scan = sub.add_parser("scan", help="scan CloudFormation and Terraform for risky network configuration")
    scan.add_argument("paths", nargs="+", metavar="PATH", help="files or folders to scan")
    scan.add_argument("--format", "-f", choices=("text", "json", "sarif", "junit", "github"), default="text")
    scan.add_argument("--output", "-o", metavar="FILE", help="write the report here instead of stdout")
    scan.add_argument("--config", metavar="FILE", help="configuration file (default: nearest .netguard.yaml)")
    scan.add_argument("--baseline", metavar="FILE", help="findings listed here are reported but do not fail")
    scan.add_argument("--create-baseline", metavar="FILE", help="write the current findings as a baseline")
    scan.add_argument(
        "--tf-module-dirs",
        action="store_true",
        help="scan the folder of each .tf file given (its module), as the pre-commit hook does",
    )
    scan.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="worker processes for large runs (default: the number of cores)",
    )
    scan.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    scan.add_argument("--engine", help=argparse.SUPPRESS)  # removed: refused with an explanation

    policy = sub.add_parser("policy", help="render, validate and simulate the SCP guardrails")
    actions = policy.add_subparsers(dest="policy_command", required=True)
    render = actions.add_parser("render", help="write the organization's guardrails, minified")
    render.add_argument("--config", required=True, metavar="ORG_YAML", help="organization config")
    render.add_argument("--out", required=True, metavar="DIR", help="folder for the rendered policies")
    render.add_argument(
        "--kind",
        choices=("scp", "iam"),
        default="scp",
        help="scp: service control policies; iam: permission boundary and NetworkAdmin policy",
    )
    validate = actions.add_parser("validate", help="check SCP files: grammar, size, Sids, actions, lockout")
    validate.add_argument("paths", nargs="+", metavar="PATH", help="policy files or folders of *.json")
    validate.add_argument("--config", metavar="ORG_YAML", help="organization config (exemptions, size limit)")
    validate.add_argument("--size-limit", type=int, metavar="N", help="characters per SCP (default 10240)")
    validate.add_argument("--format", choices=("text", "json"), default="text")
    simulate = actions.add_parser("simulate", help="evaluate SCPs against CloudTrail records, offline")
    simulate.add_argument("--policies", required=True, metavar="DIR", help="folder of rendered SCPs")
    simulate.add_argument("--events", required=True, nargs="+", metavar="PATH", help="CloudTrail files or folders")
    simulate.add_argument(
        "--config", metavar="ORG_YAML", help="organization config (management account, organization id)"
    )
    _principal_tags_option(simulate)
    simulate.add_argument(
        "--no-full-aws-access", action="store_true", help="do not assume FullAWSAccess is attached at every level"
    )
    simulate.add_argument("--format", choices=("text", "json"), default="text")
    add_limit_options(simulate)
    replay = actions.add_parser("replay", help="whom would the guardrails have blocked? replay CloudTrail history")
    replay.add_argument("--policies", required=True, metavar="DIR", help="folder of rendered SCPs")
    replay.add_argument("--source", required=True, metavar="PATH|s3://BUCKET/PREFIX", help="CloudTrail logs")
    replay.add_argument("--since", type=_date, metavar="DATE", help="first day (YYYY-MM-DD or ISO time)")
    replay.add_argument("--until", type=_date, metavar="DATE", help="last moment (YYYY-MM-DD is the start of it)")
    replay.add_argument("--accounts", nargs="+", default=[], metavar="ID")
    replay.add_argument("--regions", nargs="+", default=[], metavar="REGION")
    replay.add_argument(
        "--config", metavar="ORG_YAML", help="organization config (management account, organization id)"
    )
    _principal_tags_option(replay)
    replay.add_argument("--no-full-aws-access", action="store_true")
    replay.add_argument("--format", choices=("text", "json", "csv"), default="text")
    replay.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, metavar="N")
    replay.add_argument("--endpoint-url", help="S3 endpoint (e.g. a moto server)")
    replay.add_argument("--profile", help="AWS profile for S3")
    replay.add_argument("--region", help="AWS region for S3")
    _retry_option(replay)
    add_limit_options(replay)

    org = sub.add_parser("org", help="roll the SCP guardrails out through AWS Organizations")
    org_actions = org.add_subparsers(dest="org_command", required=True)
    for name, text in (
        ("plan", "show the changes that would make the organization match the config"),
        ("apply", "make the planned changes (only shows them without --yes)"),
        ("drift", "managed policies whose content or attachments changed by hand; exit 1 if any"),
    ):
        action = org_actions.add_parser(name, help=text)
        action.add_argument("--config", required=True, metavar="ORG_YAML", help="organization config with targets")
        action.add_argument("--format", choices=("text", "json"), default="text")
        action.add_argument("--endpoint-url", help="Organizations endpoint (e.g. a moto server)")
        action.add_argument("--profile", help="AWS profile")
        action.add_argument("--region", help="AWS region for the clients (default us-east-1)")
        _retry_option(action)
        if name != "drift":
            action.add_argument(
                "--stage",
                choices=("canary", "all"),
                default="all",
                help="canary: only targets marked stage: canary; all: every target",
            )
            action.add_argument(
                "--validate-online",
                action="store_true",
                help="also run IAM Access Analyzer ValidatePolicy on every guardrail",
            )
        if name == "apply":
            action.add_argument("--yes", action="store_true", help="make the changes")
    return parser


def _retry_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--aws-retry-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="how long one AWS call may be retried (throttling, server errors, dropped connections) before it"
        " is an error naming the call; each attempt times out after 5 s to connect, 30 s to read (default 60)",
    )


def _org(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from netguard.org import aws, rollout
    from netguard.policy.orgconfig import load_org_config

    org = load_org_config(Path(args.config))
    connection = {"endpoint_url": args.endpoint_url, "profile": args.profile, "region": args.region}
    budget = aws.Budget(call_seconds=args.aws_retry_seconds)
    organization = rollout.Organization(rollout.make_client("organizations", **connection), budget=budget)
    if getattr(args, "validate_online", False):
        findings = rollout.validate_online(rollout.make_client("accessanalyzer", **connection), org, budget)
        for finding in findings:
            print(f"access-analyzer: {finding['policy']}: {finding['type']} {finding['code']}: {finding['detail']}")
        if any(f["type"] == "ERROR" for f in findings):
            print("netguard: error: Access Analyzer reports errors; nothing changed", file=sys.stderr)
            return 2
    if args.org_command == "drift":
        result = rollout.drift(org, organization)
    else:
        result = rollout.plan(org, organization, stage=args.stage)
    written = None
    if args.org_command == "apply" and args.yes and result.changes:
        written = rollout.apply(org, organization, result.changes, result.notes)
    if args.format == "json":
        payload = result.to_dict()
        if written is not None:
            payload["write_calls"] = written
        print(json.dumps(payload, indent=2))
    else:
        for change in result.changes:
            print(change.describe())
            if change.policy in result.diffs and change.action == "update":
                print("\n".join(f"    {line}" for line in result.diffs[change.policy].splitlines()))
        for note in result.notes:
            print(f"note: {note}")
        verb = {"plan": "planned", "drift": "drifted", "apply": "applied" if written is not None else "planned"}
        print(
            f"netguard: {len(result.changes)} changes {verb[args.org_command]}"
            + (
                " (run with --yes to make them)"
                if args.org_command == "apply" and not args.yes and result.changes
                else ""
            )
        )
    if args.org_command == "drift":
        return 1 if result.changes else 0
    return 0


def _scan(args: argparse.Namespace) -> int:
    from pathlib import Path

    from netguard.scan.baseline import apply_baseline, write_baseline
    from netguard.scan.report import render
    from netguard.scan.run import resolve_config, scan

    if args.create_baseline and os.environ.get("PRE_COMMIT"):
        raise NetguardError("--create-baseline", "refused inside a pre-commit hook: create baselines by hand")
    if args.engine is not None:
        raise NetguardError(
            "--engine",
            "removed: netguard evaluates every file with its own rules. To check the Checkov or cfn-lint"
            " plug-in, run the plain engine with the pack (README, 'Using the pack in Checkov or cfn-lint')",
        )
    paths = args.paths
    if args.tf_module_dirs:
        paths = list(dict.fromkeys(str(Path(p).parent) if p.endswith(".tf") else p for p in paths))
    config = resolve_config(args.config)
    result = scan(paths, config, debug=args.debug, jobs=max(args.jobs, 1))
    if args.baseline:
        apply_baseline(result, Path(args.baseline))
    if args.create_baseline:
        count = write_baseline(result, Path(args.create_baseline))
        print(f"netguard: wrote {count} findings to {args.create_baseline}", file=sys.stderr)
        for finding in result.findings:
            finding.baselined = True
    text = render(result, args.format)
    if args.output:
        try:
            with open(args.output, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise NetguardError(args.output, f"cannot write report: {exc.strerror}") from None
    else:
        sys.stdout.write(text)
    if result.errors and args.format != "text":
        for error in result.errors:
            print(printable(f"netguard: error: {error.file}: {error.message}"), file=sys.stderr)
    return result.exit_code()


def _date(text: str):
    from datetime import datetime

    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r}") from None


def _principal_tags_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--principal-tags",
        metavar="FILE",
        help="YAML mapping principal ARN patterns to their tags, so tag exemptions get definite answers",
    )


def _org_facts(args: argparse.Namespace, org):
    """What the records lack, from the org config and the principal tags file (policy/facts.py)."""
    from pathlib import Path

    from netguard.policy.facts import OrgFacts, PrincipalTags, load_principal_tags

    tags = load_principal_tags(Path(args.principal_tags)) if args.principal_tags else PrincipalTags()
    return OrgFacts(
        org.management_account_id if org else None, org.organization_id if org else None, principal_tags=tags
    )


def _replay(args: argparse.Namespace, org) -> int:
    import time
    from pathlib import Path

    from netguard.org import aws
    from netguard.policy import replay as rp
    from netguard.policy.simulate import load_policy_levels

    facts = _org_facts(args, org)
    levels, errors = load_policy_levels(Path(args.policies), full_aws_access=not args.no_full_aws_access)
    if errors:
        for error in errors:
            print(printable(f"netguard: error: {error.file}: {error.message}"), file=sys.stderr)
        return 2
    client = None
    if args.source.startswith("s3://"):
        from netguard.org.rollout import make_client

        client = make_client("s3", endpoint_url=args.endpoint_url, profile=args.profile, region=args.region)
    elif not Path(args.source).exists():
        raise NetguardError(args.source, "no such file or directory")
    filters = rp.Filters(args.since, args.until, frozenset(args.accounts), frozenset(args.regions))
    start = time.monotonic()
    tty = sys.stderr.isatty()

    def progress(totals) -> None:
        elapsed = time.monotonic() - start
        if tty and elapsed > 2:
            rate = totals.records / elapsed
            sys.stderr.write(f"\rnetguard: {totals.files} files, {totals.records} records, {rate:,.0f} records/s ")
            sys.stderr.flush()

    totals = rp.replay(
        rp.compile_policies(levels),
        rp.Source(args.source, client, limits_from(args), aws.Budget(call_seconds=args.aws_retry_seconds)),
        filters,
        facts=facts,
        jobs=max(args.jobs, 1),
        progress=progress,
    )
    if tty and time.monotonic() - start > 2:
        sys.stderr.write("\n")
    sys.stdout.write({"text": rp.to_text, "json": rp.to_json, "csv": rp.to_csv}[args.format](totals))
    if args.format == "csv":  # a CSV report has no place for them
        for error in totals.errors:
            print(printable(f"netguard: error: {error.file}: {error.message}"), file=sys.stderr)
    return 2 if totals.errors else 0


def _policy(args: argparse.Namespace) -> int:
    from pathlib import Path

    from netguard.policy.orgconfig import load_org_config

    org = load_org_config(Path(args.config)) if getattr(args, "config", None) else None
    if args.policy_command == "render":
        from netguard.policy.render import render_to_dir

        for name, size in render_to_dir(org, Path(args.out), kind=args.kind):
            print(f"{Path(args.out) / (name + '.json')}: {size} characters")
        return 0
    if args.policy_command == "validate":
        return _validate(args, org)
    if args.policy_command == "replay":
        return _replay(args, org)
    from netguard.policy import simulate as sim

    facts = _org_facts(args, org)
    levels, errors = sim.load_policy_levels(Path(args.policies), full_aws_access=not args.no_full_aws_access)
    outcome = sim.simulate(levels, [Path(p) for p in args.events], limits=limits_from(args), facts=facts)
    outcome.errors[:0] = errors
    sys.stdout.write(sim.to_json(outcome) if args.format == "json" else sim.to_text(outcome))
    return 2 if outcome.errors else 0


def _validate(args: argparse.Namespace, org) -> int:
    import json
    from pathlib import Path

    from netguard.policy.validate import validate_file

    limit = args.size_limit or (org.scp_size_limit if org else 10240)
    files: list[Path] = []
    report: list[dict] = []
    for raw in args.paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(path.glob("*.json")))
        elif path.is_file():
            files.append(path)
        else:
            report.append({"file": raw, "problems": ["no such file or directory"]})
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


def smuggled_option(argv: Sequence[str]) -> str | None:
    """An argument before `--` that looks like an option but names an existing file.

    pre-commit and xargs append file names after the options; a committed file named
    `--create-baseline=x.yaml` would otherwise become an option and change what the run does.
    """
    for arg in argv:
        if arg == "--":
            return None
        if arg.startswith("-") and len(arg) > 1 and os.path.lexists(arg):
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    smuggled = smuggled_option(argv)
    if smuggled is not None:
        print(
            f"netguard: error: {printable(smuggled)}: a file is named like an option; put `--` before file"
            " names (the pre-commit hooks do)",
            file=sys.stderr,
        )
        return 2
    args = _parser().parse_args(argv)
    try:
        if args.command == "scan":
            return _scan(args)
        if args.command == "policy":
            return _policy(args)
        if args.command == "org":
            from botocore.exceptions import BotoCoreError, ClientError

            try:
                return _org(args)
            except (BotoCoreError, ClientError) as exc:
                raise NetguardError("organization", f"AWS call failed: {exc}") from None
    except NetguardError as exc:
        print(printable(f"netguard: error: {exc.file}: {exc.message}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if getattr(args, "debug", False):
            raise
        print(
            printable(f"netguard: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)"),
            file=sys.stderr,
        )
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
