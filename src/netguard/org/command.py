"""`netguard org`: plan, apply and drift of the guardrails in AWS Organizations, and export of the
organization as it is (a snapshot for `policy simulate --org` and `policy replay --org`).

Exit codes follow netguard's convention (2 is an error, 1 is "something to act on"), not Terraform's
(where 1 is the error and 2 the changes): plan --detailed-exitcode 0 no changes, 1 changes pending;
drift 0 in sync, 1 hand edits, 3 only config not yet applied; apply 0 done; export 0 written.
Every error is 2.
"""

from __future__ import annotations

import argparse
import sys

from netguard.errors import NetguardError
from netguard.org.aws import add_retry_option

NO_CHANGES, CHANGES, ERROR, UNAPPLIED_ONLY = 0, 1, 2, 3


def add_parser(sub: argparse._SubParsersAction) -> None:
    org = sub.add_parser("org", help="roll the SCP guardrails out through AWS Organizations")
    org_actions = org.add_subparsers(dest="org_command", required=True)
    for name, text in (
        ("plan", "show the changes that would make the organization match the config"),
        ("apply", "make the planned changes (only shows them without --yes)"),
        (
            "drift",
            "differences from the config, each a hand edit or config not applied yet; exit 0 in sync, 1 hand edits,"
            " 3 only config not applied, 2 error",
        ),
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
        if name != "drift":
            action.add_argument(
                "--detailed-exitcode",
                action="store_true",
                help="exit 1 when changes are pending, 0 when none, 2 on error (with apply: without --yes only)",
            )
        if name == "apply":
            action.add_argument("--yes", action="store_true", help="make the changes")
            action.add_argument(
                "--allow-detach-all",
                action="store_true",
                help="apply a config with no targets, or a plan that detaches every netguard guardrail from a target",
            )
    export = org_actions.add_parser(
        "export",
        help="write the organization as it is (OUs, accounts, every SCP and where it is attached) to a JSON"
        " snapshot for `policy simulate --org`; read-only",
    )
    export.add_argument(
        "--output", required=True, metavar="FILE", help="snapshot file, replaced whole or not at all; - for stdout"
    )
    export.add_argument("--endpoint-url", help="Organizations endpoint (e.g. a moto server)")
    export.add_argument("--profile", help="AWS profile (the management account or a delegated administrator)")
    export.add_argument("--region", help="AWS region for the client (default us-east-1)")
    add_retry_option(export)
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


def _refuse_detach_all(org, result=None) -> None:
    """A config with no targets, or a plan that strips a target of every netguard guardrail, is
    almost always the wrong file or a typo; apply makes it only when --allow-detach-all says so."""
    if not org.targets:
        raise NetguardError(
            org.source,
            "the config has no targets, so applying it would detach every guardrail netguard manages; check that"
            " this is the right org.yaml, or pass --allow-detach-all if that is what you want",
        )
    if result is not None and result.emptied:
        raise NetguardError(
            org.source,
            f"refusing to apply: the plan detaches every netguard guardrail from {', '.join(result.emptied)};"
            " pass --allow-detach-all if that is what you want",
        )


def _run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from netguard.org import aws, rollout
    from netguard.policy.orgconfig import load_org_config

    if args.org_command == "export":
        from netguard.org.export import run_export

        return run_export(args)
    org = load_org_config(Path(args.config))
    command = args.org_command
    guarded = command == "apply" and not args.allow_detach_all
    if guarded:
        _refuse_detach_all(org)  # before any AWS call: nothing in the organization can make it right
    connection = {"endpoint_url": args.endpoint_url, "profile": args.profile, "region": args.region}
    budget = aws.Budget(call_seconds=args.aws_retry_seconds)
    organization = rollout.Organization(rollout.make_client("organizations", **connection), budget=budget)
    if getattr(args, "validate_online", False):
        findings = rollout.validate_online(rollout.make_client("accessanalyzer", **connection), org, budget)
        for finding in findings:
            print(f"access-analyzer: {finding['policy']}: {finding['type']} {finding['code']}: {finding['detail']}")
        if any(f["type"] == "ERROR" for f in findings):
            print("netguard: error: Access Analyzer reports errors; nothing changed", file=sys.stderr)
            return ERROR
    if command == "drift":
        result = rollout.drift(org, organization)
    else:
        result = rollout.plan(org, organization, stage=args.stage)
    if guarded:
        _refuse_detach_all(org, result)
    written = None
    if command == "apply" and args.yes and result.changes:
        written = rollout.apply(org, organization, result.changes, result.notes)
    if args.format == "json":
        payload = result.to_dict()
        if written is not None:
            payload["write_calls"] = written
        print(json.dumps(payload, indent=2))
    else:
        for change in result.changes:
            print(change.describe(with_kind=command == "drift"))
            if change.policy in result.diffs and change.action in ("update", "create"):
                print("\n".join(f"    {line}" for line in result.diffs[change.policy].splitlines()))
        for note in result.notes:
            print(f"note: {note}")
        verb = {"plan": "planned", "drift": "drifted", "apply": "applied" if written is not None else "planned"}
        summary = f"netguard: {len(result.changes)} changes {verb[command]}"
        if command == "drift" and result.changes:
            unapplied = len(result.changes) - len(result.hand_edits)
            summary += f": {len(result.hand_edits)} hand edits, {unapplied} config not applied yet"
        if command == "apply" and not args.yes and result.changes:
            summary += " (run with --yes to make them)"
        print(summary)
    if command == "drift":
        return CHANGES if result.hand_edits else UNAPPLIED_ONLY if result.changes else NO_CHANGES
    if args.detailed_exitcode and written is None and result.changes:
        return CHANGES
    return NO_CHANGES
