"""An organization snapshot (`netguard org export`): read, checked, and replayed as Organizations would.

The snapshot is the organization as it was exported: the root, its OUs, its accounts, and the SCPs
attached at each. Two things are built from it:

- each account's chain of SCPs, root first, then each OU from the top down, then the account, which
  is how Organizations applies them (a call must be allowed at every level and denied at none);
- the organization after a rollout. `SnapshotOrganization` answers the Organizations API calls that
  `org plan` and `org apply` make, from memory, so the rollout's own planner and applier run
  unchanged over the snapshot, and what they leave behind is what `apply` would leave in AWS.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netguard.errors import NetguardError
from netguard.org.rollout import SCP, Organization
from netguard.policy.bounded import Refused, loads_document, read_file
from netguard.resources import load_schema

MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024  # an organization of thousands of accounts is tens of megabytes
MAX_SNAPSHOT_DEPTH = 16  # the format nests five levels; policy contents are strings
FORMAT = "netguard-org-snapshot"


@dataclass(frozen=True)
class Level:
    """One level of an account's chain: the root, an OU or the account, and the SCPs attached there."""

    target_id: str
    label: str  # root, an OU path (/Workloads/Prod) or the account id
    policies: tuple[tuple[str, str], ...]  # (name, content) of each SCP attached directly here


class Snapshot:
    """The organization a snapshot file describes; mutable only through SnapshotOrganization's writes."""

    def __init__(self, data: dict[str, Any], source: str) -> None:
        self.source = source
        self.exported_at: str = data["exported_at"]
        self.organization_id: str = data["organization"]["id"]
        self.management_account_id: str = data["organization"]["management_account_id"]
        root = data["root"]
        self.root_id: str = root["id"]
        self.scp_enabled: bool = root["scp_enabled"]
        self.names: dict[str, str] = {self.root_id: root.get("name") or "Root"}
        self.parents: dict[str, str] = {}
        self.kinds: dict[str, str] = {self.root_id: "root"}
        self.attached: dict[str, list[str]] = {self.root_id: list(root["policies"])}
        for unit in data["organizational_units"]:
            self._add(unit, "ou")
        for account in data["accounts"]:
            self._add(account, "account")
        self.policies: dict[str, dict[str, Any]] = {}
        for policy in data["policies"]:
            if policy["id"] in self.policies:
                raise NetguardError(source, f"policy {policy['id']} is listed twice")
            self.policies[policy["id"]] = {
                "Id": policy["id"],
                "Name": policy["name"],
                "AwsManaged": policy["aws_managed"],
                "Content": policy["content"],
                "Description": policy.get("description", ""),
                "Tags": dict(policy.get("tags", {})),
            }
        self._check()

    def _add(self, entry: dict[str, Any], kind: str) -> None:
        if entry["id"] in self.kinds:
            raise NetguardError(self.source, f"{entry['id']} is listed twice")
        self.kinds[entry["id"]] = kind
        self.parents[entry["id"]] = entry["parent_id"]
        self.names[entry["id"]] = entry.get("name") or entry["id"]
        self.attached[entry["id"]] = list(entry["policies"])

    def _check(self) -> None:
        """Every parent exists and is the root or an OU, every OU reaches the root, every attached policy
        is listed and holds a JSON document: a broken snapshot must not yield a half-built chain."""
        for child, parent in self.parents.items():
            if self.kinds.get(parent) not in ("root", "ou"):
                raise NetguardError(
                    self.source, f"{child}: its parent {parent} is not the root or an OU in the snapshot"
                )
        for target in self.parents:
            seen = {target}
            here = target
            while here != self.root_id:
                here = self.parents[here]
                if here in seen:
                    raise NetguardError(self.source, f"{target}: its parents form a cycle")
                seen.add(here)
        for target, ids in self.attached.items():
            for policy_id in ids:
                if policy_id not in self.policies:
                    raise NetguardError(self.source, f"{target}: attached policy {policy_id} is not listed in policies")
        for policy in self.policies.values():
            try:
                document = json.loads(policy["Content"])
            except ValueError as exc:
                name = f"policy {policy['Name']} ({policy['Id']})"
                raise NetguardError(self.source, f"{name}: content is not JSON: {exc}") from None
            if not isinstance(document, dict):
                raise NetguardError(self.source, f"policy {policy['Name']} ({policy['Id']}): content is not a policy")

    def path(self, target: str) -> str:
        """An OU's path from the root (/Workloads/Prod), as org.yaml targets name OUs."""
        parts = []
        while target != self.root_id:
            parts.append(self.names[target])
            target = self.parents[target]
        return "/" + "/".join(reversed(parts))

    def label(self, target: str) -> str:
        kind = self.kinds[target]
        if kind == "root":
            return "root"
        if kind == "account":
            return f"account {target}"
        return f"{self.path(target)} ({target})"

    @property
    def accounts(self) -> list[str]:
        return sorted(t for t, kind in self.kinds.items() if kind == "account")

    def chain(self, account: str) -> list[Level] | None:
        """The account's levels, root first; None for an account the snapshot does not hold. With the
        SCP policy type disabled on the root, no SCP applies anywhere: no levels."""
        if self.kinds.get(account) != "account":
            return None
        if not self.scp_enabled:
            return []
        targets = [account]
        while targets[-1] != self.root_id:
            targets.append(self.parents[targets[-1]])
        return [
            Level(
                target,
                self.label(target),
                tuple((self.policies[p]["Name"], self.policies[p]["Content"]) for p in self.attached[target]),
            )
            for target in reversed(targets)
        ]

    def children(self, parent: str, kind: str) -> Iterator[str]:
        return (t for t, p in sorted(self.parents.items()) if p == parent and self.kinds[t] == kind)


def load_snapshot(path: str | Path) -> Snapshot:
    """Read and check a snapshot file; any problem is a NetguardError naming the file and the reason."""
    import jsonschema

    source = str(path)
    try:
        raw = read_file(Path(path), MAX_SNAPSHOT_BYTES, "the snapshot size limit")
        data = loads_document(raw, MAX_SNAPSHOT_DEPTH)
    except Refused as exc:
        raise NetguardError(source, str(exc)) from None
    except (OSError, ValueError) as exc:
        raise NetguardError(source, f"cannot read the organization snapshot: {exc}") from None
    if isinstance(data, dict) and data.get("format") != FORMAT:
        raise NetguardError(
            source, f"not an organization snapshot (format {FORMAT!r}): write one with `netguard org export`"
        )
    errors = sorted(
        jsonschema.Draft202012Validator(load_schema("org-snapshot.schema.json")).iter_errors(data),
        key=lambda e: list(e.path),
    )
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise NetguardError(source, f"invalid organization snapshot at {where}: {errors[0].message}")
    return Snapshot(data, source)


class SnapshotOrganization(Organization):
    """The Organizations API over a snapshot, in memory: `rollout.plan` and `rollout.apply` run on it as
    on AWS, and the writes change the snapshot. Nothing here reaches AWS."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__(client=None)
        self.snapshot = copy.deepcopy(snapshot)
        self._created = 0

    def call(self, operation: str, **kwargs: Any) -> Any:
        method = getattr(self, "_" + operation, None)
        if method is None:  # a call the planner gained since: say so rather than guess an answer
            raise NetguardError(self.snapshot.source, f"the snapshot cannot answer {operation}")
        return method(**kwargs)

    def _target(self, target: str) -> str:
        if target not in self.snapshot.kinds:
            raise NetguardError(self.snapshot.source, f"target {target} is not in the organization snapshot")
        return target

    def _policy(self, policy_id: str) -> dict[str, Any]:
        if policy_id not in self.snapshot.policies:
            raise NetguardError(self.snapshot.source, f"policy {policy_id} is not in the organization snapshot")
        return self.snapshot.policies[policy_id]

    # reads
    def _list_roots(self, **_: Any) -> dict[str, Any]:
        status = "ENABLED" if self.snapshot.scp_enabled else "DISABLED"
        root = {"Id": self.snapshot.root_id, "Name": self.snapshot.names[self.snapshot.root_id]}
        return {"Roots": [{**root, "PolicyTypes": [{"Type": SCP, "Status": status}]}]}

    def _list_organizational_units_for_parent(self, ParentId: str, **_: Any) -> dict[str, Any]:
        units = self.snapshot.children(self._target(ParentId), "ou")
        return {"OrganizationalUnits": [{"Id": u, "Name": self.snapshot.names[u]} for u in units]}

    def _list_policies(self, **_: Any) -> dict[str, Any]:
        policies = self.snapshot.policies.values()
        return {"Policies": [{k: p[k] for k in ("Id", "Name", "AwsManaged")} for p in policies]}

    def _list_tags_for_resource(self, ResourceId: str, **_: Any) -> dict[str, Any]:
        return {"Tags": [{"Key": k, "Value": v} for k, v in self._policy(ResourceId)["Tags"].items()]}

    def _describe_policy(self, PolicyId: str, **_: Any) -> dict[str, Any]:
        policy = self._policy(PolicyId)
        return {"Policy": {"PolicySummary": {"Id": policy["Id"], "Name": policy["Name"]}, "Content": policy["Content"]}}

    def _list_targets_for_policy(self, PolicyId: str, **_: Any) -> dict[str, Any]:
        self._policy(PolicyId)
        targets = [t for t, ids in sorted(self.snapshot.attached.items()) if PolicyId in ids]
        return {"Targets": [{"TargetId": t} for t in targets]}

    def _list_policies_for_target(self, TargetId: str, **_: Any) -> dict[str, Any]:
        ids = self.snapshot.attached[self._target(TargetId)]
        return {"Policies": [{k: self.snapshot.policies[p][k] for k in ("Id", "Name", "AwsManaged")} for p in ids]}

    # writes, as apply makes them
    def _create_policy(self, Name: str, Content: str, Tags: list | None = None, **kwargs: Any) -> dict:
        self._created += 1
        policy_id = f"p-planned{self._created:05d}"
        self.snapshot.policies[policy_id] = {
            "Id": policy_id,
            "Name": Name,
            "AwsManaged": False,
            "Content": Content,
            "Description": kwargs.get("Description", ""),
            "Tags": {t["Key"]: t["Value"] for t in Tags or []},
        }
        return {"Policy": {"PolicySummary": {"Id": policy_id, "Name": Name}}}

    def _update_policy(self, PolicyId: str, Content: str, **_: Any) -> dict:
        self._policy(PolicyId)["Content"] = Content
        return {}

    def _attach_policy(self, PolicyId: str, TargetId: str, **_: Any) -> dict:
        self._policy(PolicyId)
        ids = self.snapshot.attached[self._target(TargetId)]
        if PolicyId not in ids:
            ids.append(PolicyId)
        return {}

    def _detach_policy(self, PolicyId: str, TargetId: str, **_: Any) -> dict:
        ids = self.snapshot.attached[self._target(TargetId)]
        if PolicyId in ids:
            ids.remove(PolicyId)
        return {}

    def _delete_policy(self, PolicyId: str, **_: Any) -> dict:
        self._policy(PolicyId)
        del self.snapshot.policies[PolicyId]
        return {}

    def _tag_resource(self, ResourceId: str, Tags: list, **_: Any) -> dict:
        self._policy(ResourceId)["Tags"].update({t["Key"]: t["Value"] for t in Tags})
        return {}
