"""Decisions against the organization as it is and as the rollout would leave it (`--org FILE`).

Each record is decided against the SCP chain of its caller's account (the root, each OU from the top
down, the account), as Organizations applies SCPs to a member account's principals. Two chains per
account: today's, from the snapshot, and after the rollout, which is the snapshot with the changes
`org apply --stage STAGE` would make, computed by the rollout's own planner and applier running over
the snapshot (org/snapshot.py). A call the rollout leaves allowed is not counted; otherwise its impact
is `new` (allowed today), `existing` (today's SCPs already deny it) or `undetermined` (today's
decision depends on keys the record cannot supply).

Chains are compiled once per distinct content, so a thousand accounts under a few OUs cost a few
compilations, and each compiled chain keeps its own decision memo.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from netguard.errors import NetguardError
from netguard.iam.evaluator import ALLOW, DENY, Policy
from netguard.org.snapshot import Level, Snapshot, SnapshotOrganization
from netguard.policy.cloudtrail import MalformedRecord
from netguard.policy.orgconfig import OrgConfig
from netguard.policy.replay import Compiled, compile_policies, result_fields
from netguard.policy.request_context import is_mapping

NEW, EXISTING, UNDETERMINED = "new", "existing", "undetermined"
_LEVEL = re.compile(r"at level (\d+)")


class UnknownAccount(MalformedRecord):
    """A record whose caller's account the snapshot does not hold: an error for the record, never a
    guess at its chain."""


@dataclass
class AccountChains:
    """One account's compiled chains, today and after the rollout, and its levels' labels."""

    before: Compiled
    after: Compiled
    labels: tuple[str, ...]
    # policy name -> the level it is attached at, today and after the rollout (the first, top down)
    where_before: dict[str, str] = field(default_factory=dict)
    where_after: dict[str, str] = field(default_factory=dict)


@dataclass
class ChainedPolicies:
    """Every account's chains; decides parsed records as `replay.Compiled` does, with an impact.

    Duck-types the parts of Compiled the replay loop uses (verdicts, needs_evaluation, result), so
    local workers and Spark executors run it unchanged."""

    accounts: dict[str, AccountChains]
    source: str
    exported_at: str
    stage: str
    management_account_id: str
    organization_id: str
    changes: list[str] = field(default_factory=list)  # what the rollout changes, as `org plan` says it
    notes: list[str] = field(default_factory=list)
    verdicts: dict[tuple[str, str], bool] = field(default_factory=dict)
    resource_reads: dict[str, bool] = field(default_factory=dict)  # reads_resources_for, remembered

    def describe(self) -> dict[str, Any]:
        """What the reports say about the organization mode: the snapshot, the stage, the rollout."""
        return {
            "snapshot": self.source,
            "exported_at": self.exported_at,
            "stage": self.stage,
            "accounts": len(self.accounts),
            "rollout": self.changes,
            "notes": self.notes,
        }

    def warnings(self) -> list[str]:
        """A rollout that changes nothing reads as "nothing newly denied"; say why it is nothing."""
        if self.changes:
            return []
        return [
            f"the rollout (--stage {self.stage}) changes nothing in {self.source}: its guardrails are already "
            "attached as org.yaml's targets say (or it has none), so nothing is newly denied; decisions show "
            "what today's SCPs deny"
        ]

    @property
    def distinct_after(self) -> list[Compiled]:
        return list({id(c.after): c.after for c in self.accounts.values()}.values())

    def reads_resources_for(self, action: str) -> bool:
        """Whether any chain, today's or after the rollout, tells resources apart for action: if none
        does, its records are parsed without their resource ARNs (replay.decide_record)."""
        found = self.resource_reads.get(action)
        if found is None:
            chains = {id(c): c for a in self.accounts.values() for c in (a.before, a.after)}.values()
            found = self.resource_reads[action] = any(c.reads_resources_for(action) for c in chains)
        return found

    def needs_evaluation(self, event_source: str, event_name: str) -> bool:
        """Whether any account's chain after the rollout could deny this call: if none can, the
        rollout denies nothing new or old for it, and it is counted without a request context."""
        key = (event_source, event_name)
        cached = self.verdicts.get(key)
        if cached is None:
            cached = any(c.needs_evaluation(event_source, event_name) for c in self.distinct_after)
            self.verdicts[key] = cached
        return cached

    def needs_record(self, record: Mapping[str, Any], key: tuple[str, str]) -> bool:
        """Whether this record's own account's chain could deny it: accounts under allow-list SCPs make
        every call worth evaluating there, not in every other account. An account the snapshot lacks
        is evaluated, so that its record becomes the error it is."""
        chains = self.accounts.get(caller_account(record) or "")
        if chains is None:
            return True
        after = chains.after
        found = after.verdicts.get(key)  # Compiled.needs_evaluation's own memo, looked up first
        return after.needs_evaluation(*key) if found is None else found

    def result(self, parsed: Any, record: Mapping[str, Any], code: str | None, action: str) -> dict[str, Any]:
        account = caller_account(record)
        chains = self.accounts.get(account or "")
        if chains is None:
            raise UnknownAccount(
                f"account {account or '(none)'} is not in the organization snapshot {self.source} "
                f"(exported {self.exported_at}): export it again, or leave its records out with --accounts"
            )
        after = chains.after.decide(parsed.request)
        before = chains.before.decide(parsed.request) if after.decision != ALLOW else None
        return _fields(account, chains, after, before, code, parsed.principal, action)

    def result_from_head(self, head: Any, record: Mapping[str, Any], code: str | None, action: str) -> dict | None:
        """result, when the account's chains have both decisions remembered for what the record's head
        settles (replay.decide_record); None when the whole request must be built."""
        account = caller_account(record)
        chains = self.accounts.get(account or "")
        if chains is None:
            return None  # result raises UnknownAccount
        after = chains.after.remembered(head)
        if after is None:
            return None
        before = None
        if after.decision != ALLOW:
            before = chains.before.remembered(head)
            if before is None:
                return None
        return _fields(account, chains, after, before, code, head.principal, action)


def _fields(
    account: str | None,
    chains: AccountChains,
    after: Any,
    before: Any,
    code: str | None,
    principal: str,
    action: str,
) -> dict[str, Any]:
    """A decided record's fields with its account and impact: the decision after the rollout, named by
    what denies it today when today's SCPs already do (before is None when after allows it)."""
    fields = result_fields(after, code, principal, action)
    fields["account"] = account
    if before is None:
        fields["impact"] = None
        return fields
    impact = {DENY: EXISTING, ALLOW: NEW}.get(before.decision, UNDETERMINED)
    where = chains.where_after
    if impact == EXISTING and before.denied_by:  # named by what denies it today
        fields.update(denied_by=before.denied_by, policy=before.policy, sid=before.sid)
        where = chains.where_before
    fields["impact"] = impact
    fields["attached_at"] = where.get(fields["denied_by"][0][0]) if fields["denied_by"] else None
    fields["reason"] = _named_levels(fields["reason"], chains.labels)
    return fields


def caller_account(record: Mapping[str, Any]) -> str | None:
    """The account of the calling principal: SCPs restrict a member account's principals wherever they
    call, so this, not recipientAccountId, picks the chain. CloudTrail records some identities with no
    account (SAMLUser, WebIdentityUser: a federated caller becoming a role in the account it calls);
    for those, the account called."""
    identity = record.get("userIdentity")
    account = identity.get("accountId") if identity.__class__ is dict or is_mapping(identity) else None
    if isinstance(account, str) and account:
        return account
    account = record.get("recipientAccountId")
    return account if isinstance(account, str) and account else None


@lru_cache(maxsize=4096)
def _named_levels(reason: str, labels: tuple[str, ...]) -> str:
    """ "no SCP at level 1 allows" becomes "no SCP at /Workloads (ou-...) allows"."""

    def name(match: re.Match[str]) -> str:
        index = int(match.group(1))
        return f"at {labels[index]}" if index < len(labels) else match.group(0)

    return _LEVEL.sub(name, reason)


def _attached_at(chain: list[Level]) -> dict[str, str]:
    found: dict[str, str] = {}
    for level in chain:
        for name, _ in level.policies:
            found.setdefault(name, level.label)
    return found


def _levels(chain: list[Level]) -> list[list[Policy]]:
    return [[Policy(name, json.loads(content)) for name, content in level.policies] for level in chain]


def org_chains(snapshot: Snapshot, org: OrgConfig, stage: str = "all") -> ChainedPolicies:
    """Today's chain and the chain after `org apply --stage STAGE` for every account of the snapshot.

    The rollout's planner and applier run over an in-memory copy of the snapshot, so their guards
    (size, quota, lockout, unknown targets) refuse here as they would in AWS."""
    from netguard.org import rollout

    planned = SnapshotOrganization(snapshot)
    try:
        plan = rollout.plan(org, planned, stage)
        rollout.apply(org, planned, plan.changes)
    except NetguardError as exc:
        raise NetguardError(exc.file, f"the rollout cannot be planned over {snapshot.source}: {exc.message}") from None
    after = planned.snapshot
    compiled: dict[str, Compiled] = {}

    def compile_chain(chain: list[Level]) -> Compiled:
        key = json.dumps([level.policies for level in chain])
        if key not in compiled:
            compiled[key] = compile_policies(_levels(chain))
        return compiled[key]

    accounts = {}
    for account in snapshot.accounts:
        today, tomorrow = snapshot.chain(account), after.chain(account)
        assert today is not None and tomorrow is not None  # every account of the snapshot has a chain
        accounts[account] = AccountChains(
            compile_chain(today),
            compile_chain(tomorrow),
            tuple(level.label for level in tomorrow),
            _attached_at(today),
            _attached_at(tomorrow),
        )
    return ChainedPolicies(
        accounts,
        snapshot.source,
        snapshot.exported_at,
        stage,
        snapshot.management_account_id,
        snapshot.organization_id,
        changes=[c.describe() for c in plan.changes if c.action != "tag"],
        notes=list(plan.notes),
    )
