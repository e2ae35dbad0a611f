"""`netguard org`: plan, apply and drift of the guardrails in AWS Organizations."""

from __future__ import annotations

import argparse
import sys

from netguard.errors import NetguardError
from netguard.org.aws import add_retry_option


def add_parser(sub: argparse._SubParsersAction) -> None:
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
        add_retry_option(action)
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
    org.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """An AWS call that fails is an error naming the call and the likely fix, never a traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    from netguard.org.aws import user_error

    try:
        return _run(args)
    except (BotoCoreError, ClientError) as exc:
        known = user_error(exc)
        raise NetguardError("organization", known.message if known else str(exc)) from None


def _run(args: argparse.Namespace) -> int:
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
