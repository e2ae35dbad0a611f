"""`netguard org export`: the organization as it is, read-only, in one JSON snapshot.

The snapshot (schemas/org-snapshot.schema.json) is what `policy simulate --org` and `policy replay --org`
evaluate records against, so it must be the whole organization and nothing but what AWS said: every OU
at any depth, every account, every SCP with its content exactly as DescribePolicy returns it, and the
SCPs attached directly at the root, at each OU and at each account.

Only List* and Describe* calls are made, and the reader refuses any other operation before it reaches
botocore: an export can be run with credentials that could change the organization without any risk
that it does. Every call goes through `netguard.org.aws.call`, so retries, timeouts and the messages for
mistakes the user can fix are those of `org plan`, `apply` and `drift`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from netguard.errors import NetguardError
from netguard.org import aws
from netguard.org.rollout import Organization

SCP = "SERVICE_CONTROL_POLICY"
FORMAT, VERSION = "netguard-org-snapshot", 1
SCHEMA = "org-snapshot.schema.json"
READ_ONLY_PREFIXES = ("list_", "describe_")  # boto3 method names of the only calls an export may make
PAGE_SIZE: int | None = None  # MaxResults of List calls; None lets AWS choose (20 for Organizations)


class ReadOnlyOrganization(Organization):
    """Organizations List/Describe calls, each retried within its budget, every page read; any write
    is refused before it is made."""

    def __init__(self, client: Any, budget: aws.Budget) -> None:
        super().__init__(client, budget=budget)

    def call(self, operation: str, **kwargs: Any) -> Any:
        """One read call; any other operation is refused before it is made (an export never writes)."""
        if not operation.startswith(READ_ONLY_PREFIXES):
            raise NetguardError("org export", f"internal error: refusing {aws.api_name(operation)}, not a read call")
        detail = " ".join(str(kwargs[k]) for k in ("ParentId", "PolicyId", "ResourceId") if k in kwargs)
        label = f"{aws.api_name(operation)} {detail}".strip()
        method = getattr(self.client, operation)
        return aws.call(lambda: method(**kwargs), label, self.budget, where="organization")

    def _inputs(self, operation: str) -> set[str]:
        model = self.client.meta.service_model.operation_model(aws.api_name(operation))
        return set(model.input_shape.members) if model.input_shape else set()

    def pages(self, operation: str, key: str, **kwargs: Any) -> list[Any]:
        """Every item of a List call (Organization.pages), at PAGE_SIZE where the call takes one."""
        if PAGE_SIZE is not None and "MaxResults" in self._inputs(operation):  # ListTagsForResource has none
            kwargs["MaxResults"] = PAGE_SIZE
        return super().pages(operation, key, **kwargs)


def _changed(what: str) -> NetguardError:
    return NetguardError(
        "organization", f"{what}: the organization changed while it was being read; run the export again"
    )


def read_snapshot(reader: ReadOnlyOrganization, now: Callable[[], datetime] | None = None) -> dict[str, Any]:
    """The organization as a snapshot dict: lists sorted and keys in a fixed order, so that two exports
    of an unchanged organization differ only in exported_at."""
    organization = reader.call("describe_organization")["Organization"]
    roots = reader.pages("list_roots", "Roots")
    if len(roots) != 1:
        raise NetguardError("organization", f"expected one root, ListRoots returned {len(roots)}")
    root = roots[0]
    exported_at = (now or (lambda: datetime.now(UTC)))().astimezone(UTC)

    # The tree, walked from the root: OUs and accounts are listed per parent, so each comes with its parent
    # at (OUs + 1) * 2 calls, where ListAccounts would need a ListParents per account.
    units: list[dict[str, Any]] = []
    accounts: list[dict[str, Any]] = []
    attached: dict[str, set[str]] = {root["Id"]: set()}
    parents = [(root["Id"], "")]
    while parents:
        parent_id, parent_path = parents.pop(0)
        for account in reader.pages("list_accounts_for_parent", "Accounts", ParentId=parent_id):
            if account["Id"] in attached:
                raise _changed(f"account {account['Id']} was listed twice")
            attached[account["Id"]] = set()
            entry = {
                "id": account["Id"],
                "name": account.get("Name"),
                "status": account.get("Status"),
                "parent_id": parent_id,
            }
            accounts.append({key: value for key, value in entry.items() if value is not None})
        for unit in reader.pages("list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent_id):
            if unit["Id"] in attached:
                raise _changed(f"OU {unit['Id']} was listed twice")
            attached[unit["Id"]] = set()
            path = f"{parent_path}/{unit['Name']}"
            units.append({"id": unit["Id"], "name": unit["Name"], "parent_id": parent_id, "path": path})
            parents.append((unit["Id"], path))

    # Attachments per policy (ListTargetsForPolicy), not per target (ListPoliciesForTarget): an
    # organization has far fewer SCPs (1,000 at most) than targets, so this is one call per SCP plus a
    # page per 20 targets of FullAWSAccess, against one call per OU and per account.
    policies = []
    for summary in reader.pages("list_policies", "Policies", Filter=SCP):
        policy_id = summary["Id"]
        content = reader.call("describe_policy", PolicyId=policy_id)["Policy"]["Content"]
        # AWS managed policies cannot be tagged; asking is a call per policy for nothing.
        tags = (
            {}
            if summary.get("AwsManaged")
            else {t["Key"]: t["Value"] for t in reader.pages("list_tags_for_resource", "Tags", ResourceId=policy_id)}
        )
        for target in reader.pages("list_targets_for_policy", "Targets", PolicyId=policy_id):
            if target["TargetId"] not in attached:
                raise _changed(f"{summary['Name']} is attached to {target['TargetId']}, which the walk did not find")
            attached[target["TargetId"]].add(policy_id)
        policies.append(
            {
                "id": policy_id,
                "name": summary["Name"],
                "arn": summary.get("Arn", ""),
                "description": summary.get("Description", ""),
                "aws_managed": bool(summary.get("AwsManaged")),
                "content": content,
                "tags": dict(sorted(tags.items())),
            }
        )

    for item in units + accounts:
        item["policies"] = sorted(attached[item["id"]])
    root_entry = {
        "id": root["Id"],
        "name": root.get("Name", "Root"),
        "scp_enabled": any(t.get("Type") == SCP and t.get("Status") == "ENABLED" for t in root.get("PolicyTypes", [])),
        "policies": sorted(attached[root["Id"]]),
    }
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": exported_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "organization": {
            "id": organization["Id"],
            "arn": organization.get("Arn", ""),
            "management_account_id": organization["MasterAccountId"],
        },
        "root": root_entry,
        "organizational_units": sorted(units, key=lambda u: (u["path"], u["id"])),
        "accounts": sorted(accounts, key=lambda a: a["id"]),
        "policies": sorted(policies, key=lambda p: p["id"]),
    }


def check_snapshot(snapshot: dict[str, Any]) -> None:
    """The snapshot against its schema; a mismatch is netguard's bug, reported before anything is written."""
    import jsonschema

    from netguard.resources import load_schema

    validator = jsonschema.Draft202012Validator(load_schema(SCHEMA), format_checker=jsonschema.FormatChecker())
    error = jsonschema.exceptions.best_match(validator.iter_errors(snapshot))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(top)"
        raise NetguardError(
            "org export",
            f"internal error: the snapshot does not match schemas/{SCHEMA} at {where}: {error.message};"
            " nothing was written (this is a bug in netguard, please report it)",
        )


def write_snapshot(snapshot: dict[str, Any], output: str) -> None:
    """Validated, then written whole or not at all: a temporary file beside the target, renamed over it,
    so a reader never sees half a snapshot and a failed export leaves the previous one in place."""
    check_snapshot(snapshot)
    text = json.dumps(snapshot, indent=2, ensure_ascii=False) + "\n"
    if output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(output)
    temporary = None
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as open() would create it; mkstemp makes it 0600
        os.replace(temporary, target)
        temporary = None
    except OSError as exc:
        raise NetguardError(output, f"cannot write the snapshot: {exc.strerror or exc}") from None
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def run_export(args: argparse.Namespace) -> int:
    """`netguard org export`: read, validate, write, then a one-line summary (on stderr with --output -)."""
    output = args.output
    if output != "-" and not Path(output).parent.is_dir():  # before minutes of calls, not after
        raise NetguardError(output, "cannot write the snapshot: its folder does not exist")
    connection = {"endpoint_url": args.endpoint_url, "profile": args.profile, "region": args.region}
    budget = aws.Budget(call_seconds=args.aws_retry_seconds)
    reader = ReadOnlyOrganization(aws.make_client("organizations", **connection), budget)
    snapshot = read_snapshot(reader)
    write_snapshot(snapshot, output)
    counts = ", ".join(
        _count(len(snapshot[key]), noun)
        for key, noun in (("organizational_units", "OU"), ("accounts", "account"), ("policies", "SCP"))
    )
    where = "stdout" if output == "-" else output
    print(f"netguard: exported 1 root, {counts} to {where}", file=sys.stderr if output == "-" else sys.stdout)
    return 0
