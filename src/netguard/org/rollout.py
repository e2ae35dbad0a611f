"""Roll the SCP guardrails out through AWS Organizations: plan, staged apply, drift.

The desired state is the rendered guardrails plus the `targets` of the organization config. Every
plan is computed afresh from what the organization holds, so a rerun finds nothing to do and a run
that stopped halfway converges on the next apply.

netguard records on each policy it manages what it last applied, as tags written after every other
write to that policy succeeded: managed-by=netguard, netguard-hash (the hash of the content it wrote)
and netguard-targets (the targets it left the policy attached to). Drift compares the organization
with both the config and that record, so it can tell a hand edit (the live state differs from the
record) from config not yet applied (the live state is the record, the config asks for more).

A content update can be canaried: with --stage canary, a guardrail whose content changes while its
policy is attached outside the canary stage gets a second policy, <name>-canary, with the new
content, attached to the canary targets in place of the production one; --stage all then promotes
(updates the production policy, moves the canary targets back to it, deletes the canary version).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from netguard.errors import NetguardError
from netguard.org import aws
from netguard.org.aws import make_client  # noqa: F401 - the command line's client factory
from netguard.policy.orgconfig import OrgConfig
from netguard.policy.render import minify, render
from netguard.policy.validate import validate_document

SCP = "SERVICE_CONTROL_POLICY"
MANAGED_BY = ("managed-by", "netguard")
HASH_TAG = "netguard-hash"  # the hash of the content netguard last wrote
TARGETS_TAG = "netguard-targets"  # the targets netguard last left the policy attached to
TAG_VALUE_MAX = 256  # characters in an Organizations tag value
PREFIX = "netguard-"
CANARY_SUFFIX = "-canary"
WRITE_OPERATIONS = (
    "CreatePolicy",
    "UpdatePolicy",
    "TagResource",
    "AttachPolicy",
    "DetachPolicy",
    "DeletePolicy",
)

HAND_EDIT = "hand-edit"  # the organization differs from what netguard last applied
UNAPPLIED = "unapplied"  # the organization is what netguard last applied; the config asks for more
KIND_TEXT = {HAND_EDIT: "hand edit: changed outside netguard", UNAPPLIED: "config not applied yet"}


@dataclass
class Change:
    action: str  # create | update | attach | detach | delete | tag
    policy: str
    target: str | None = None
    target_label: str | None = None
    detail: str = ""
    kind: str = ""  # HAND_EDIT or UNAPPLIED: why the organization differs here
    tags: dict[str, str] | None = None  # a tag change: the record written

    def describe(self, with_kind: bool = False) -> str:
        where = (
            f" {'to' if self.action == 'attach' else 'from'} {self.target_label or self.target}" if self.target else ""
        )
        text = f"{self.action:<7} {self.policy}{where}" + (f"  ({self.detail})" if self.detail else "")
        return text + (f"  [{KIND_TEXT[self.kind]}]" if with_kind and self.kind in KIND_TEXT else "")


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    diffs: dict[str, str] = field(default_factory=dict)
    emptied: list[str] = field(default_factory=list)  # targets this plan would leave with no netguard guardrail

    @property
    def hand_edits(self) -> list[Change]:
        return [c for c in self.changes if c.kind == HAND_EDIT]

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [asdict(c) for c in self.changes],
            "notes": self.notes,
            "diffs": self.diffs,
            "summary": {
                "changes": len(self.changes),
                HAND_EDIT: len(self.hand_edits),
                UNAPPLIED: sum(1 for c in self.changes if c.kind == UNAPPLIED),
            },
            "targets_left_without_guardrails": self.emptied,
        }


@dataclass(frozen=True)
class Desired:
    name: str
    content: str
    digest: str
    guardrail: str


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def targets_record(target_ids: Iterable[str]) -> str:
    """The netguard-targets tag value: the target ids, sorted and space-separated (a tag value allows
    no commas), or, past the 256 characters of a tag value, a hash of them. The list lets drift tell
    which attachment was changed by hand; the hash only that some attachment of the policy was."""
    text = " ".join(sorted(set(target_ids)))
    return text if len(text) <= TAG_VALUE_MAX else "sha256:" + content_hash(text)


def canary_name(name: str) -> str:
    return name + CANARY_SUFFIX


def is_canary(name: str) -> bool:
    """A canary version: guardrail names may not end in -canary, so only canary versions do."""
    return name.endswith(CANARY_SUFFIX)


def _as_written(have: dict[str, Any]) -> bool:
    """Whether the live content is what netguard last wrote (its netguard-hash tag), whitespace aside."""
    tag = have["tags"].get(HASH_TAG)
    if not tag:
        return False
    if content_hash(have["content"]) == tag:
        return True
    try:
        return content_hash(minify(json.loads(have["content"]))) == tag
    except ValueError:
        return False


def desired_policies(org: OrgConfig) -> dict[str, Desired]:
    """Rendered guardrails, checked against the size limit and the lockout guard before any API call."""
    policies: dict[str, Desired] = {}
    problems: list[str] = []
    for guardrail, document in render(org).items():
        content = minify(document)
        if is_canary(guardrail):
            problems.append(f"{guardrail}: a guardrail name may not end in {CANARY_SUFFIX} (canary versions do)")
        for problem in validate_document(content, size_limit=org.scp_size_limit, org=org):
            problems.append(f"{guardrail}: {problem}")
        name = PREFIX + guardrail
        policies[name] = Desired(name, content, content_hash(content), guardrail)
    if problems:
        raise NetguardError(org.source or "org config", "refusing to plan: " + "; ".join(problems))
    return policies


class Organization:
    """Reads and writes against the Organizations API; each call's retries are bounded in time."""

    def __init__(
        self, client: Any, sleep: Callable[[float], None] = time.sleep, budget: aws.Budget | None = None
    ) -> None:
        self.client = client
        self.budget = budget or aws.Budget(sleep=sleep)

    def call(self, operation: str, **kwargs: Any) -> Any:
        """One API call, retried on throttling, server errors and dropped connections until its retry
        budget runs out; then an AwsCallFailed naming the call and what it was for."""
        detail = " ".join(str(kwargs[k]) for k in ("Name", "PolicyId", "ResourceId", "TargetId") if k in kwargs)
        label = f"{aws.api_name(operation)} {detail}".strip()
        method = getattr(self.client, operation)
        return aws.call(lambda: method(**kwargs), label, self.budget, where="organization")

    def pages(self, operation: str, key: str, **kwargs: Any) -> list[Any]:
        """Every item of a List call, following NextToken to the last page."""
        items: list[Any] = []
        token = None
        seen: set[str] = set()
        while True:
            response = self.call(operation, **kwargs, **({"NextToken": token} if token else {}))
            items.extend(response.get(key, []))
            token = response.get("NextToken")
            if not token:
                return items
            if token in seen:  # a service that hands back a token twice would keep the reader looping forever
                raise NetguardError("organization", f"{aws.api_name(operation)} returned the same NextToken twice")
            seen.add(token)

    def root(self) -> dict[str, Any]:
        roots = self.pages("list_roots", "Roots")
        if not roots:
            raise NetguardError("organization", "no root found: is AWS Organizations set up?")
        return roots[0]

    def resolve(self, spec: str, root_id: str) -> tuple[str, str]:
        """(target id, label) for root, an OU id, an OU path (/Workloads/Prod) or an account id."""
        if spec == "root":
            return root_id, "root"
        if spec.startswith("/"):
            parent = root_id
            for part in [p for p in spec.split("/") if p]:
                units = self.pages("list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent)
                match = [u for u in units if u["Name"] == part]
                if not match:
                    raise NetguardError("org config", f"target {spec}: no OU named {part!r}")
                parent = match[0]["Id"]
            return parent, spec
        return spec, spec

    def managed_policies(self) -> dict[str, dict[str, Any]]:
        """netguard's policies by name: id, content, tags, and the targets they are attached to."""
        found = {}
        for summary in self.pages("list_policies", "Policies", Filter=SCP):
            if summary.get("AwsManaged"):
                continue
            tags = {
                t["Key"]: t["Value"] for t in self.pages("list_tags_for_resource", "Tags", ResourceId=summary["Id"])
            }
            if tags.get(MANAGED_BY[0]) != MANAGED_BY[1] and not summary["Name"].startswith(PREFIX):
                continue
            content = self.call("describe_policy", PolicyId=summary["Id"])["Policy"]["Content"]
            targets = [t["TargetId"] for t in self.pages("list_targets_for_policy", "Targets", PolicyId=summary["Id"])]
            found[summary["Name"]] = {"id": summary["Id"], "content": content, "tags": tags, "targets": targets}
        return found

    def attached(self, target_id: str) -> list[dict[str, Any]]:
        return self.pages("list_policies_for_target", "Policies", TargetId=target_id, Filter=SCP)


def _same_content(a: str, b: str) -> bool:
    try:
        return json.loads(a) == json.loads(b)
    except ValueError:
        return a == b


def _diff(current: str, desired: str) -> str:
    def pretty(text: str) -> list[str]:
        try:
            return json.dumps(json.loads(text), indent=2, sort_keys=True).splitlines()
        except ValueError:
            return text.splitlines()

    return "\n".join(difflib.unified_diff(pretty(current), pretty(desired), "organization", "netguard", lineterm=""))


def _targets(org: OrgConfig, stage: str) -> list[dict[str, Any]]:
    return [t for t in org.targets if stage == "all" or t.get("stage", "all") == "canary"]


def plan(org: OrgConfig, organization: Organization, stage: str = "all") -> Plan:
    """The changes that make the organization match the config; guards raise before any write.

    Every change carries its kind (a hand edit, or config not applied yet), read from the record
    netguard keeps in its tags. The last changes re-record those tags for every policy touched.
    """
    desired = desired_policies(org)
    root = organization.root()
    if not any(p.get("Type") == SCP and p.get("Status") == "ENABLED" for p in root.get("PolicyTypes", [])):
        raise NetguardError(
            "organization",
            f"the SERVICE_CONTROL_POLICY type is not enabled on root {root['Id']}; enable it with "
            f"`aws organizations enable-policy-type --root-id {root['Id']} --policy-type {SCP}`",
        )
    result = Plan()
    current = organization.managed_policies()
    resolved: dict[str, tuple[str, str]] = {}
    live: dict[str, list[str]] = {}  # target id -> names of the SCPs attached to it now

    def resolve(spec: str) -> tuple[str, str]:
        if spec not in resolved:
            resolved[spec] = organization.resolve(spec, root["Id"])
        return resolved[spec]

    def attached(target_id: str) -> list[str]:
        if target_id not in live:
            live[target_id] = [p["Name"] for p in organization.attached(target_id)]
        return live[target_id]

    wanted_by_target: dict[str, tuple[str, set[str]]] = {}
    for target in org.targets:
        target_id, label = resolve(target["target"])
        unknown = [g for g in target["guardrails"] if PREFIX + g not in desired]
        if unknown:
            raise NetguardError(org.source or "org config", f"target {label}: unknown guardrails {', '.join(unknown)}")
        names = wanted_by_target.setdefault(target_id, (label, set()))[1]
        names.update(PREFIX + g for g in target["guardrails"])
    in_stage = {resolve(t["target"])[0] for t in _targets(org, stage)}
    label_of = {target_id: label for target_id, (label, _) in wanted_by_target.items()}

    # Which guardrails change content under a canary: a canary version carries the new content to the
    # canary targets while the production policy keeps the old content where it is attached.
    canaried: set[str] = set()
    if stage != "all":
        for name, want in desired.items():
            have = current.get(name)
            if have is None or _same_content(have["content"], want.content):
                continue
            outside = [t for t in have["targets"] if t not in in_stage]
            wanted_in_stage = any(name in wanted_by_target[t][1] for t in in_stage if t in wanted_by_target)
            if outside and wanted_in_stage:
                canaried.add(name)
                result.notes.append(
                    f"{name}: its new content goes to the canary targets as {canary_name(name)}; the targets outside"
                    f" the canary stage ({', '.join(label_of.get(t, t) for t in outside)}) keep {name} with its"
                    " current content until --stage all promotes it"
                )
            elif outside:
                result.notes.append(
                    f"update of {name} deferred to --stage all: it is attached to targets outside the canary stage"
                    f" ({', '.join(label_of.get(t, t) for t in outside)}) and no canary target carries it"
                )
    wanted: dict[str, Desired] = {}  # policy name -> the content it must hold after this plan
    for name, want in desired.items():
        if name in canaried:
            wanted[canary_name(name)] = replace(want, name=canary_name(name))
        elif not _deferred(name, want, current, in_stage, stage):
            wanted[name] = want

    for name, want in wanted.items():
        have = current.get(name)
        base = name[: -len(CANARY_SUFFIX)] if is_canary(name) else None
        if have is None:
            detail = f"{len(want.content)} characters"
            if base:
                detail = f"canary version of {base} with its new content, {detail}"
                result.diffs[name] = _diff(current[base]["content"], want.content)
            result.changes.append(Change("create", name, detail=detail))
        elif not _same_content(have["content"], want.content):
            detail = "content differs"
            if not base and canary_name(name) in current:
                detail += f"; promotes the content tried on the canary targets as {canary_name(name)}"
            result.changes.append(Change("update", name, detail=detail))
            result.diffs[name] = _diff(have["content"], want.content)

    detached: set[tuple[str, str]] = set()
    for target_id, (label, names) in wanted_by_target.items():
        if target_id not in in_stage:
            continue
        here = {canary_name(n) if n in canaried else n for n in names}
        now = attached(target_id)
        for name in sorted(here - set(now)):
            detail = ""
            if is_canary(name):
                detail = f"canary: in place of {name[: -len(CANARY_SUFFIX)]}"
            elif canary_name(name) in now:
                detail = f"promote: in place of {canary_name(name)}"
            result.changes.append(Change("attach", name, target_id, label, detail))
        for name in sorted(n for n in now if n in current and n not in here):
            if canary_name(name) in here:
                detail = f"canary: replaced by {canary_name(name)}"
            elif is_canary(name) and name[: -len(CANARY_SUFFIX)] in here:
                detail = f"promote: replaced by {name[: -len(CANARY_SUFFIX)]}"
            else:
                detail = "no longer configured for this target"
            result.changes.append(Change("detach", name, target_id, label, detail))
            detached.add((name, target_id))
    if stage == "all":
        for name, have in current.items():
            for target_id in have["targets"]:
                if target_id not in wanted_by_target and (name, target_id) not in detached:
                    result.changes.append(Change("detach", name, target_id, target_id, "target not in the config"))
                    detached.add((name, target_id))
    deleted = set()
    for name, have in sorted(current.items()):  # canary versions no longer wanted: retired
        if not is_canary(name) or name in wanted:
            continue
        if have["tags"].get(MANAGED_BY[0]) != MANAGED_BY[1]:  # netguard creates canaries tagged, always
            result.notes.append(
                f"{name} looks like a canary version but is not tagged managed-by=netguard: not deleted"
            )
            continue
        for target_id in have["targets"]:
            if (name, target_id) not in detached:
                label = label_of.get(target_id, target_id)
                result.changes.append(Change("detach", name, target_id, label, "canary version retired"))
                detached.add((name, target_id))
        promoted = stage == "all" and name[: -len(CANARY_SUFFIX)] in desired
        result.changes.append(
            Change("delete", name, detail="promoted: canary version retired" if promoted else "canary version retired")
        )
        deleted.add(name)

    result.changes.extend(_records(current, wanted, result.changes, deleted))
    result.notes.extend(_half_done(current, desired, result.changes))
    for change in result.changes:
        change.kind = _kind(change, current)

    managed = set(current) | set(wanted) | set(desired)
    touched = set(wanted_by_target) | {c.target for c in result.changes if c.target}
    for target_id in sorted(touched):
        _check_target(org, result, label_of.get(target_id, target_id), attached(target_id), target_id, managed)
    if not org.targets:
        result.notes.append(
            "the config has no targets: it asks for every netguard guardrail to be detached; apply refuses it"
            " without --allow-detach-all"
        )
    if result.emptied:
        result.notes.append(
            f"this plan detaches every netguard guardrail from {', '.join(result.emptied)}; apply refuses it without"
            " --allow-detach-all"
        )
    return result


def _check_target(org: OrgConfig, result: Plan, label: str, now: list[str], target_id: str, managed: set[str]) -> None:
    """Refuse a plan that passes the SCP quota on a target (after it, or for a moment while it
    swaps policies) or leaves it with no SCP; note a target it strips of every netguard guardrail."""
    adding = [c.policy for c in result.changes if c.action == "attach" and c.target == target_id]
    removing = {c.policy for c in result.changes if c.action == "detach" and c.target == target_id}
    after = [n for n in now if n not in removing] + adding
    peak = len(now) + len(adding)  # every attach is made before any detach
    if len(after) > org.max_scps_per_target:
        raise NetguardError(
            org.source or "org config",
            f"target {label} would have {len(after)} SCPs attached, over the quota of "
            f"{org.max_scps_per_target} (max_scps_per_target)",
        )
    if peak > org.max_scps_per_target:
        raise NetguardError(
            org.source or "org config",
            f"target {label} would have {peak} SCPs attached for a moment, over the quota of "
            f"{org.max_scps_per_target} (max_scps_per_target): netguard attaches before it detaches, so that a"
            " target is never without its guardrail; free a slot on the target first",
        )
    if not after:
        raise NetguardError(
            org.source or "org config",
            f"refusing to leave target {label} with no SCP attached (it would deny everything)",
        )
    if any(n in managed for n in now) and not any(n in managed for n in after):
        result.emptied.append(label)


def _deferred(name: str, want: Desired, current: dict[str, dict[str, Any]], in_stage: set[str], stage: str) -> bool:
    """A content update left for --stage all: the policy is attached outside the stage and no canary
    version carries the new content (no canary target has the guardrail)."""
    have = current.get(name)
    return (
        stage != "all"
        and have is not None
        and not _same_content(have["content"], want.content)
        and any(t not in in_stage for t in have["targets"])
    )


def _records(
    current: dict[str, dict[str, Any]], wanted: dict[str, Desired], changes: list[Change], deleted: set[str]
) -> list[Change]:
    """Tag changes that re-record what netguard leaves each policy as, made after every other write.

    A policy created by this plan starts with an empty target record (CreatePolicy's tags), so a run
    that stops after creating it leaves a record that is still true."""
    records = []
    for name in sorted((set(current) | set(wanted)) - deleted):
        have = current.get(name)
        targets = list(have["targets"]) if have else []
        for change in changes:
            if change.policy == name and change.action == "attach":
                targets.append(change.target)
            elif change.policy == name and change.action == "detach":
                targets.remove(change.target)
        tags = {MANAGED_BY[0]: MANAGED_BY[1], TARGETS_TAG: targets_record(targets)}
        if name in wanted:
            tags[HASH_TAG] = wanted[name].digest
        present = (
            have["tags"] if have else {MANAGED_BY[0]: MANAGED_BY[1], HASH_TAG: wanted[name].digest, TARGETS_TAG: ""}
        )
        if any(present.get(key) != value for key, value in tags.items()):
            count = len(set(targets))
            detail = f"record: attached to {count} target{'s' if count != 1 else ''}"
            detail += f", content {HASH_TAG}={tags[HASH_TAG]}" if HASH_TAG in tags else ""
            records.append(Change("tag", name, detail=detail, tags=tags))
    return records


def _kind(change: Change, current: dict[str, dict[str, Any]]) -> str:
    """HAND_EDIT when the part of the policy this change restores differs from netguard's record of
    what it applied, else UNAPPLIED (the organization is as netguard left it; the config moved on).

    A create is UNAPPLIED (a policy deleted by hand leaves no record to tell it from a new guardrail);
    a tag change is UNAPPLIED (what the organization holds is what the config asks for; only the
    record is behind, as after an apply that stopped before its last writes). A policy without a
    target record (tagged by a netguard before the record existed) counts as edited by hand."""
    have = current.get(change.policy)
    if have is None or change.action in ("create", "tag"):
        return UNAPPLIED
    if change.action == "update":
        return UNAPPLIED if _as_written(have) else HAND_EDIT
    record = have["tags"].get(TARGETS_TAG)
    if change.action == "delete":
        return UNAPPLIED if _as_written(have) and record == targets_record(have["targets"]) else HAND_EDIT
    if record is None:
        return HAND_EDIT
    if record.startswith("sha256:"):  # too many targets to list: only the whole set can be compared
        return UNAPPLIED if record == targets_record(have["targets"]) else HAND_EDIT
    recorded = set(record.split())
    if change.action == "attach":  # netguard left it attached there, and it is not: detached by hand
        return HAND_EDIT if change.target in recorded else UNAPPLIED
    return UNAPPLIED if change.target in recorded else HAND_EDIT  # a detach: attached by hand if not recorded


def _half_done(current: dict[str, dict[str, Any]], desired: dict[str, Desired], changes: list[Change]) -> list[str]:
    """What an apply that stopped part way leaves behind, named, so a rerun says what it finishes."""
    notes = []
    for name, have in sorted(current.items()):
        want = desired.get(name)
        planned = {c.action for c in changes if c.policy == name}
        if have["tags"].get(MANAGED_BY[0]) != MANAGED_BY[1]:
            notes.append(
                f"{name} is not tagged {MANAGED_BY[0]}={MANAGED_BY[1]}: taken as netguard's by its name (an"
                " apply that stopped before tagging it, or made by hand)"
                + ("; this plan tags it" if planned & {"tag", "update"} else "")
            )
        elif want and have["tags"].get(HASH_TAG) != want.digest and _same_content(have["content"], want.content):
            notes.append(
                f"{name} has the wanted content but a stale {HASH_TAG} tag (an apply that stopped between"
                " UpdatePolicy and TagResource, or a hand edit); this plan tags it"
            )
        if not have["targets"] and want:
            notes.append(
                f"{name} exists (netguard's) but is attached nowhere (an apply that stopped before attaching"
                " it, or detached by hand)" + ("; this plan attaches it" if "attach" in planned else "")
            )
        if TARGETS_TAG not in have["tags"] and have["tags"].get(MANAGED_BY[0]) == MANAGED_BY[1]:
            notes.append(
                f"{name} has no {TARGETS_TAG} record (tagged by an older netguard): drift cannot tell a hand edit"
                " of its attachments from config not applied, and counts them as hand edits; apply records it"
            )
    return notes


def _tags(digest: str) -> list[dict[str, str]]:
    return [{"Key": MANAGED_BY[0], "Value": MANAGED_BY[1]}, {"Key": HASH_TAG, "Value": digest}]


# Attach before detach, so a target never goes without its guardrail; tags last, so the record is
# written only when every other write to the policy succeeded.
ORDER = ("create", "update", "attach", "detach", "delete", "tag")

# The answer a write gets when it is sent again after AWS carried out the first attempt, whose answer
# the dropped connection lost (whether netguard or botocore sent it again), or when another run made
# it meanwhile. UpdatePolicy and TagResource can be sent twice without harm.
ALREADY_DONE = {
    "create_policy": "DuplicatePolicyException",
    "attach_policy": "DuplicatePolicyAttachmentException",
    "detach_policy": "PolicyNotAttachedException",
    "delete_policy": "PolicyNotFoundException",
}


_OPERATIONS = {
    "create": "create_policy",
    "update": "update_policy",
    "tag": "tag_resource",
    "attach": "attach_policy",
    "detach": "detach_policy",
    "delete": "delete_policy",
}


def _what(change: Change, operation: str) -> str:
    """A write as the error and notes name it: CreatePolicy netguard-x, AttachPolicy netguard-x to /Prod."""
    where = ""
    if change.target:
        where = f" {'to' if change.action == 'attach' else 'from'} {change.target_label or change.target}"
    return f"{aws.api_name(operation)} {change.policy}{where}"


class ApplyError(NetguardError):
    """An apply that stopped at a write: says which writes were made, which one may have been, and
    which were not; a rerun plans afresh from what the organization holds and finishes the rest."""


def _versions(desired: dict[str, Desired]) -> dict[str, Desired]:
    """Each policy netguard may write, by name: the guardrails and their canary versions."""
    versions = dict(desired)
    for name, want in desired.items():
        versions[canary_name(name)] = replace(want, name=canary_name(name))
    return versions


def apply(org: OrgConfig, organization: Organization, changes: Iterable[Change], notes: list[str] | None = None) -> int:
    """Make exactly the planned changes, in dependency order; returns the number of write calls.

    Creates and content updates come first, attaches before detaches (a target keeps a guardrail
    throughout a swap), then deletes of retired canary versions, and the tags that record what was
    applied last: a run stopped before them leaves a record that is behind, never one that claims
    more than was done. A write whose connection dropped is sent again; when AWS answers that it is
    already done (the policy exists, is attached, is detached, is gone), an earlier attempt was
    carried out: a created policy is checked to be the one netguard sends, and the recovery is added
    to notes. When a write fails for good, ApplyError lists the writes made.
    """
    notes = notes if notes is not None else []
    versions = _versions(desired_policies(org))
    ids = {name: info["id"] for name, info in organization.managed_policies().items()}
    ordered = sorted(changes, key=lambda c: ORDER.index(c.action))
    made: list[str] = []
    writes = 0

    def write(change: Change, operation: str, **kwargs: Any) -> Any:
        nonlocal writes
        try:
            response = organization.call(operation, **kwargs)
        except aws.AwsCallFailed as exc:
            if exc.code == ALREADY_DONE.get(operation):
                response = _recover(change, operation, organization, versions, notes, exc)
            else:
                raise _stopped(exc, made, ordered, change) from None
        writes += 1
        made.append(_what(change, operation))
        return response

    for change in ordered:
        want = versions.get(change.policy)
        if change.action == "create":
            canary = " (canary version)" if is_canary(change.policy) else ""
            response = write(
                change,
                "create_policy",
                Name=change.policy,
                Type=SCP,
                Content=want.content,
                Description=f"netguard guardrail {want.guardrail}{canary}",
                Tags=[*_tags(want.digest), {"Key": TARGETS_TAG, "Value": targets_record([])}],
            )
            ids[change.policy] = response["Policy"]["PolicySummary"]["Id"]
        elif change.action == "update":
            write(change, "update_policy", PolicyId=ids[change.policy], Content=want.content)
        elif change.action == "tag":
            tags = change.tags or {MANAGED_BY[0]: MANAGED_BY[1], HASH_TAG: want.digest}
            write(
                change,
                "tag_resource",
                ResourceId=ids[change.policy],
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
        elif change.action in ("attach", "detach", "delete"):
            target = {"TargetId": change.target} if change.action != "delete" else {}
            write(change, _OPERATIONS[change.action], PolicyId=ids[change.policy], **target)
    return writes


def _recover(
    change: Change,
    operation: str,
    organization: Organization,
    desired: dict[str, Desired],
    notes: list[str],
    exc: aws.AwsCallFailed,
) -> Any:
    """The answer of a write whose first attempt AWS carried out while its answer was lost."""
    what = _what(change, operation)
    if operation == "create_policy":
        want = desired[change.policy]
        have = organization.managed_policies().get(change.policy)
        if (
            have is None
            or not _same_content(have["content"], want.content)
            or have["tags"].get(MANAGED_BY[0]) != MANAGED_BY[1]
        ):
            raise NetguardError(
                "organization",
                f"{what}: AWS answers {exc.code}, but the policy named {change.policy} is not the one netguard"
                " sends (content or tags differ); nothing more written",
            )
    notes.append(
        f"{what}: AWS answers {exc.code}: already made, by an earlier attempt whose answer a dropped connection"
        " lost (or by another run); found it made as netguard sends it"
    )
    if operation == "create_policy":
        return {"Policy": {"PolicySummary": {"Id": have["id"]}}}
    return {}


def _stopped(exc: aws.AwsCallFailed, made: list[str], ordered: list[Change], failed: Change) -> ApplyError:
    rest = [_what(c, _OPERATIONS[c.action]) for c in ordered[ordered.index(failed) + 1 :]]
    parts = [exc.message]
    if exc.uncertain:
        parts.append("its connection dropped, so AWS may or may not have carried it out")
    parts.append(f"writes made before the failure ({len(made)}): {', '.join(made) or 'none'}")
    parts.append(f"not made ({len(rest)}): {', '.join(rest) or 'none'}")
    parts.append("run apply again: it plans from what the organization holds and finishes the half-done writes")
    return ApplyError("organization", "; ".join(parts))


def drift(org: OrgConfig, organization: Organization) -> Plan:
    """Every difference between the organization and the config, each with its kind: a hand edit
    (content or attachments of a managed policy changed outside netguard) or config not yet applied
    (including a canary not yet promoted)."""
    return plan(org, organization, stage="all")


def validate_online(client: Any, org: OrgConfig, budget: aws.Budget | None = None) -> list[dict[str, Any]]:
    """IAM Access Analyzer's ValidatePolicy findings for every rendered guardrail."""
    findings = []
    for name, want in desired_policies(org).items():
        response = aws.call(
            lambda want=want: client.validate_policy(policyDocument=want.content, policyType=SCP),
            f"ValidatePolicy {name}",
            budget or aws.Budget(),
            where="access-analyzer",
        )
        for finding in response.get("findings", []):
            findings.append(
                {
                    "policy": name,
                    "type": finding.get("findingType"),
                    "code": finding.get("issueCode"),
                    "detail": finding.get("findingDetails"),
                }
            )
    return findings
