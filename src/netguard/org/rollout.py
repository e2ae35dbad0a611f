"""Roll the SCP guardrails out through AWS Organizations: plan, staged apply, drift.

The desired state is the rendered guardrails plus the `targets` of the organization config. Policies
netguard manages carry the tags managed-by=netguard and netguard-hash=<content hash>, so a rerun
finds nothing to do, a hand edit shows up as drift, and a run that stopped halfway converges on the
next apply: every plan is computed afresh from what the organization holds.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from netguard.errors import NetguardError
from netguard.org import aws
from netguard.org.aws import make_client  # noqa: F401 - the command line's client factory
from netguard.policy.orgconfig import OrgConfig
from netguard.policy.render import minify, render
from netguard.policy.validate import validate_document

SCP = "SERVICE_CONTROL_POLICY"
MANAGED_BY = ("managed-by", "netguard")
HASH_TAG = "netguard-hash"
PREFIX = "netguard-"
WRITE_OPERATIONS = ("CreatePolicy", "UpdatePolicy", "TagResource", "AttachPolicy", "DetachPolicy")


@dataclass
class Change:
    action: str  # create | update | tag | attach | detach
    policy: str
    target: str | None = None
    target_label: str | None = None
    detail: str = ""

    def describe(self) -> str:
        where = (
            f" {'to' if self.action == 'attach' else 'from'} {self.target_label or self.target}" if self.target else ""
        )
        return f"{self.action:<7} {self.policy}{where}" + (f"  ({self.detail})" if self.detail else "")


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    diffs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"changes": [asdict(c) for c in self.changes], "notes": self.notes, "diffs": self.diffs}


@dataclass(frozen=True)
class Desired:
    name: str
    content: str
    digest: str
    guardrail: str


def content_hash(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def desired_policies(org: OrgConfig) -> dict[str, Desired]:
    """Rendered guardrails, checked against the size limit and the lockout guard before any API call."""
    policies: dict[str, Desired] = {}
    problems: list[str] = []
    for guardrail, document in render(org).items():
        content = minify(document)
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
        items, token = [], None
        while True:
            response = self.call(operation, **kwargs, **({"NextToken": token} if token else {}))
            items.extend(response.get(key, []))
            token = response.get("NextToken")
            if not token:
                return items

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
    """The changes that make the organization match the config; guards raise before any write."""
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
    wanted_by_target: dict[str, tuple[str, set[str]]] = {}
    for target in org.targets:
        target_id, label = organization.resolve(target["target"], root["Id"])
        unknown = [g for g in target["guardrails"] if PREFIX + g not in desired]
        if unknown:
            raise NetguardError(org.source or "org config", f"target {label}: unknown guardrails {', '.join(unknown)}")
        names = wanted_by_target.setdefault(target_id, (label, set()))[1]
        names.update(PREFIX + g for g in target["guardrails"])
    in_stage = {organization.resolve(t["target"], root["Id"])[0] for t in _targets(org, stage)}

    for name, want in desired.items():
        have = current.get(name)
        if have is None:
            result.changes.append(Change("create", name, detail=f"{len(want.content)} characters"))
            continue
        stale_targets = [t for t in have["targets"] if t not in in_stage]
        if not _same_content(have["content"], want.content):
            if stage != "all" and stale_targets:
                result.notes.append(
                    f"update of {name} deferred to --stage all: it is attached to targets outside "
                    f"the canary stage ({', '.join(stale_targets)})"
                )
            else:
                result.changes.append(Change("update", name, detail="content differs"))
                result.diffs[name] = _diff(have["content"], want.content)
        elif have["tags"].get(HASH_TAG) != want.digest or have["tags"].get(MANAGED_BY[0]) != MANAGED_BY[1]:
            result.changes.append(Change("tag", name, detail=f"{HASH_TAG}={want.digest}"))

    after: dict[str, list[str]] = {}
    for target_id, (label, names) in wanted_by_target.items():
        attached = organization.attached(target_id)
        attached_names = [p["Name"] for p in attached]
        after[target_id] = list(attached_names)
        if target_id not in in_stage:
            continue
        for name in sorted(names - set(attached_names)):
            result.changes.append(Change("attach", name, target_id, label))
            after[target_id].append(name)
        for name in sorted(n for n in attached_names if n in current and n not in names):
            result.changes.append(Change("detach", name, target_id, label, "no longer configured for this target"))
            after[target_id].remove(name)
    if stage == "all":
        for name, have in current.items():
            for target_id in have["targets"]:
                if target_id not in wanted_by_target:
                    result.changes.append(Change("detach", name, target_id, target_id, "target not in the config"))
                    after.setdefault(target_id, [p["Name"] for p in organization.attached(target_id)]).remove(name)

    result.notes.extend(_half_done(current, desired, result.changes))
    for target_id, names in after.items():
        label = wanted_by_target.get(target_id, (target_id, set()))[0]
        if len(names) > org.max_scps_per_target:
            raise NetguardError(
                org.source or "org config",
                f"target {label} would have {len(names)} SCPs attached, over the quota of "
                f"{org.max_scps_per_target} (max_scps_per_target)",
            )
        if not names:
            raise NetguardError(
                org.source or "org config",
                f"refusing to leave target {label} with no SCP attached (it would deny everything)",
            )
    return result


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
    return notes


def _tags(digest: str) -> list[dict[str, str]]:
    return [{"Key": MANAGED_BY[0], "Value": MANAGED_BY[1]}, {"Key": HASH_TAG, "Value": digest}]


ORDER = ("create", "update", "tag", "attach", "detach")

# The answer a write gets when it is sent again after AWS carried out the first attempt, whose answer
# the dropped connection lost (whether netguard or botocore sent it again), or when another run made
# it meanwhile. UpdatePolicy and TagResource can be sent twice without harm.
ALREADY_DONE = {
    "create_policy": "DuplicatePolicyException",
    "attach_policy": "DuplicatePolicyAttachmentException",
    "detach_policy": "PolicyNotAttachedException",
}


_OPERATIONS = {
    "create": "create_policy",
    "update": "update_policy",
    "tag": "tag_resource",
    "attach": "attach_policy",
    "detach": "detach_policy",
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


def apply(org: OrgConfig, organization: Organization, changes: Iterable[Change], notes: list[str] | None = None) -> int:
    """Make exactly the planned changes, in dependency order; returns the number of write calls.

    An update writes the content first and the hash tag second: a run stopped in between leaves a
    stale tag, which the next plan turns into a tag change. A write whose connection dropped is sent
    again; when AWS answers that it is already done (the policy exists, is attached, is detached), an
    earlier attempt was carried out: a created policy is checked to be the one netguard sends, and the
    recovery is added to notes. When a write fails for good, ApplyError lists the writes made.
    """
    notes = notes if notes is not None else []
    desired = desired_policies(org)
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
                response = _recover(change, operation, organization, desired, notes, exc)
            else:
                raise _stopped(exc, made, ordered, change, operation) from None
        writes += 1
        made.append(_what(change, operation))
        return response

    for change in ordered:
        want = desired.get(change.policy)
        if change.action == "create":
            response = write(
                change,
                "create_policy",
                Name=change.policy,
                Type=SCP,
                Content=want.content,
                Description=f"netguard guardrail {want.guardrail}",
                Tags=_tags(want.digest),
            )
            ids[change.policy] = response["Policy"]["PolicySummary"]["Id"]
            continue
        if change.action == "update":
            write(change, "update_policy", PolicyId=ids[change.policy], Content=want.content)
        if change.action in ("update", "tag"):
            write(change, "tag_resource", ResourceId=ids[change.policy], Tags=_tags(want.digest))
        elif change.action == "attach":
            write(change, "attach_policy", PolicyId=ids[change.policy], TargetId=change.target)
        elif change.action == "detach":
            write(change, "detach_policy", PolicyId=ids[change.policy], TargetId=change.target)
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


def _stopped(
    exc: aws.AwsCallFailed, made: list[str], ordered: list[Change], failed: Change, operation: str
) -> ApplyError:
    rest = [_what(c, _OPERATIONS[c.action]) for c in ordered[ordered.index(failed) + 1 :]]
    if failed.action == "update" and operation == "update_policy":
        rest.insert(0, _what(failed, "tag_resource"))
    parts = [exc.message]
    if exc.uncertain:
        parts.append("its connection dropped, so AWS may or may not have carried it out")
    parts.append(f"writes made before the failure ({len(made)}): {', '.join(made) or 'none'}")
    parts.append(f"not made ({len(rest)}): {', '.join(rest) or 'none'}")
    parts.append("run apply again: it plans from what the organization holds and finishes the half-done writes")
    return ApplyError("organization", "; ".join(parts))


def drift(org: OrgConfig, organization: Organization) -> Plan:
    """Differences on what netguard already manages: hand-edited content or tags, changed attachments."""
    full = plan(org, organization, stage="all")
    kept = [c for c in full.changes if c.action != "create"]
    return Plan(kept, full.notes, {k: v for k, v in full.diffs.items() if any(c.policy == k for c in kept)})


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
