"""`netguard policy replay`: whom would the guardrails have blocked? CloudTrail history, replayed.

Streams log files (local folders or S3), one file at a time per worker, so memory stays flat in the
number of files. Records whose action no Deny statement can match are counted without building a
request context (the verdict per eventSource/eventName pair is computed once and cached); the rest go
through the same pure evaluator as `policy simulate`. `evaluate_record` is that pure function of
(policies, record), so the same code maps over record partitions in Spark or rows from Athena. Files
become records through the reader simulate uses too, `cloudtrail.decode_records`, and records of any
shape (CloudTrail files, Athena, Glue, CloudTrail Lake) through `record_shapes.normalise`.

Calls CloudTrail recorded as failed (errorCode) that the guardrails would deny are counted apart, as
already failing, and never as impact. A record that cannot be evaluated, for whatever reason, is an
error naming the file, the record and the reason, and the replay goes on.
"""

from __future__ import annotations

import csv
import gc
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from netguard.errors import InputError, printable
from netguard.iam.actions import wildcard_regex
from netguard.iam.evaluator import ALLOW, DENY, INDETERMINATE, ActionPlan, Policy, evaluate_plan
from netguard.org import aws
from netguard.policy import cloudtrail
from netguard.policy.bounded import size_text
from netguard.policy.cloudtrail import (
    LIMITS,
    LOG_SUFFIXES,
    FileErrors,
    Limits,
    MalformedRecord,
    RecordError,
    _s,
    _service,
    check_record,
    not_an_object,
    read_head,
    record_label,
    settled_by_caller,
    settled_by_head,
)
from netguard.policy.facts import OrgFacts, supply_hints
from netguard.policy.record_shapes import ALREADY_FAILING, canonical_action, error_code, label, normalise, outcome
from netguard.policy.request_context import action_resource_types

SAMPLES = 5
_LOG_PATH = re.compile(r"AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/CloudTrail/([a-z0-9-]+)/(\d{4})/(\d{2})/(\d{2})/")


@dataclass
class Compiled:
    """Policies by level, plus what the pre-filter needs: can any Deny match this action at all?"""

    levels: list[list[Policy]]
    deny_patterns: list[re.Pattern[str]]
    deny_everything: bool
    allow_everything: bool
    verdicts: dict[tuple[str, str], bool] = field(default_factory=dict)
    decisions: dict[tuple, Any] = field(default_factory=dict)  # request -> Decision; requests repeat a lot
    # What a decision can depend on, so that requests differing elsewhere (the time, above all) share
    # one memo entry: the context keys the policies read (None: cannot tell, use the whole context),
    # and whether any Resource or NotResource is more than "*".
    context_keys: tuple[str, ...] | None = None
    reads_resources: bool = True
    # Per level, the actions an unconditional Allow on every resource grants (FullAWSAccess: all of
    # them; an allow-list SCP: its Action patterns). A call no Deny names and every level grants
    # this way is allowed whatever else the record says.
    allow_patterns: list[list[re.Pattern[str]]] = field(default_factory=list)
    by_action: dict[str, tuple[tuple[str, ...] | None, bool]] = field(default_factory=dict)  # reads(), remembered
    by_action_settled: dict[str, tuple[tuple[str, ...] | None, bool]] = field(default_factory=dict)  # settled()
    # (caller, action) -> Decision, for actions whose statements read only the caller's keys; valid for
    # the facts object in by_caller_facts (another one, and it starts again).
    by_caller: dict[tuple[Any, str], Any] = field(default_factory=dict)
    by_caller_facts: Any = None
    plans: dict[str, ActionPlan] = field(default_factory=dict)  # action -> the statements that decide it

    def needs_evaluation(self, event_source: str, event_name: str) -> bool:
        key = (event_source, event_name)
        cached = self.verdicts.get(key)
        if cached is None:  # the patterns ignore case, and the service prefix is the host's, in lower case
            action = f"{_service(event_source.lower())}:{event_name}"
            cached = (
                self.deny_everything
                or any(p.fullmatch(action) for p in self.deny_patterns)
                or not (
                    self.allow_everything
                    or all(any(p.fullmatch(action) for p in level) for level in self.allow_patterns)
                )
            )
            self.verdicts[key] = cached
        return cached

    def reads(self, action: str) -> tuple[tuple[str, ...] | None, bool]:
        """(context_keys, reads_resources) for the statements whose Action covers action: a decision
        on a call reads nothing else, so a DescribeInstances is not told apart by the keys only a
        statement on DeleteVpc reads. Remembered per action."""
        found = self.by_action.get(action)
        if found is None:
            found = (None, True) if self.context_keys is None else _what_decisions_read(self.levels, action)
            if len(self.by_action) < 10_000:
                self.by_action[action] = found
        return found

    def settled(self, action: str) -> tuple[tuple[str, ...] | None, bool]:
        """(keys, by caller): the keys a decision on action reads, when a record's head settles them all
        and no resource matters (replay.decide_record then looks the memo up from the head), else None;
        and whether those keys are all the caller's (then one decision holds for every record of a
        caller). Remembered per action."""
        found = self.by_action_settled.get(action)
        if found is None:
            keys, reads_resources = self.reads(action)
            if keys is not None and not reads_resources and settled_by_head(keys):
                found = (keys, settled_by_caller(keys))
            else:
                found = (None, False)
            if len(self.by_action_settled) < 10_000:
                self.by_action_settled[action] = found
        return found

    def remembered(self, head: Any) -> Any:
        """The decision remembered for a record head (cloudtrail.RecordHead) whose action's statements
        read only keys the head settles and no resource; None when there is none (build the request).
        Where those keys are all the caller's, it is remembered per caller and action too, so the
        head's keys are not even built."""
        action = head.action
        keys, by_caller = self.settled(action)
        if keys is None:
            return None
        if by_caller:
            if head.facts is not self.by_caller_facts:
                self.by_caller.clear()
                self.by_caller_facts = head.facts
            decision = self.by_caller.get((head.caller, action))
            if decision is not None:
                return decision
        decision = self.decisions.get((action, None, tuple(map(head.answer, keys))))
        if decision is not None and by_caller:
            if len(self.by_caller) >= 100_000:  # bounded; callers the identity memo could not keep repeat least
                self.by_caller.clear()
            self.by_caller[(head.caller, action)] = decision
        return decision

    def result_from_head(self, head: Any, record: Mapping[str, Any], code: str | None, action: str) -> dict | None:
        """result, from a remembered decision (remembered); None when the whole request must be built."""
        decision = self.remembered(head)
        return None if decision is None else result_fields(decision, code, head.principal, action)

    def reads_resources_for(self, action: str) -> bool:
        """Whether a statement covering action tells resources apart: if not, records of it are parsed
        without their ARNs (decide_record)."""
        return self.reads(action)[1]

    def decide(self, request: Any) -> Any:
        """The evaluator's Decision, remembered per request as far as the policies can tell requests apart."""
        context = request.context
        keys, reads_resources = self.reads(request.action)
        if keys is None:
            key: tuple = (request.action, request.resources, tuple(sorted(context.values.items())), context.absent)
            key += (context.absent_prefixes,)
        else:  # only what the policies read: the same decision for requests that differ elsewhere
            lookup = context.lookup_lowered  # the keys are in lower case already
            key = (request.action, request.resources if reads_resources else None, tuple(map(lookup, keys)))
        decision = self.decisions.get(key)
        if decision is None:
            plan = self.plans.get(request.action)
            if plan is None:
                plan = ActionPlan.of(self.levels, request.action)
                if len(self.plans) < 10_000:
                    self.plans[request.action] = plan
            decision = evaluate_plan(plan, request)
            if len(self.decisions) < 100_000:
                self.decisions[key] = decision
        return decision

    def result(self, parsed: Any, record: Mapping[str, Any], code: str | None, action: str) -> dict[str, Any]:
        """evaluate_record's answer for a parsed record the SCPs apply to (orgchain.ChainedPolicies
        answers the same call per account)."""
        return result_fields(self.decide(parsed.request), code, parsed.principal, action)


def result_fields(decision: Any, code: str | None, principal: str, action: str) -> dict[str, Any]:
    """The fields of one decided record, as Totals.add and the reports read them."""
    return {
        "decision": outcome(decision.decision, code),
        "guardrail_decision": decision.decision,
        "policy": decision.policy,
        "sid": decision.sid,
        "error_code": code,
        "principal": principal,
        "action": action,
        "denied_by": decision.denied_by,
        "missing_keys": decision.missing,
        "reason": decision.reason,
    }


def compile_policies(levels: list[list[Policy]]) -> Compiled:
    patterns: list[re.Pattern[str]] = []
    deny_everything = False
    for level in levels:
        for policy in level:
            for statement in policy.statements():
                if statement.get("Effect") != "Deny":
                    continue
                if "NotAction" in statement:
                    deny_everything = True  # a NotAction deny can match almost anything: evaluate all
                    continue
                actions = statement.get("Action")
                for action in actions if isinstance(actions, list) else [actions]:
                    if isinstance(action, str):
                        patterns.append(wildcard_regex(action, True))
    allow_patterns = [_unconditional_allows(level) for level in levels]
    allow_everything = all(any(p.pattern == ".*" for p in level) for level in allow_patterns)
    context_keys, reads_resources = _what_decisions_read(levels)
    return Compiled(
        levels,
        patterns,
        deny_everything,
        allow_everything,
        context_keys=context_keys,
        reads_resources=reads_resources,
        allow_patterns=allow_patterns,
    )


def _unconditional_allows(level: list[Policy]) -> list[re.Pattern[str]]:
    """The Action patterns of a level's Allow statements that hold on every resource with no Condition
    (".*" for an Action of "*"); a NotAction or NotResource Allow is left out, which only means more
    calls get evaluated."""
    found: list[re.Pattern[str]] = []
    for policy in level:
        for statement in policy.statements():
            resources = statement.get("Resource")
            if (
                statement.get("Effect") != "Allow"
                or statement.get("Condition")
                or "*" not in (resources if isinstance(resources, list) else [resources])
            ):
                continue
            actions = statement.get("Action")
            for action in actions if isinstance(actions, list) else [actions]:
                if action == "*":
                    found.append(re.compile(".*"))
                elif isinstance(action, str):
                    found.append(wildcard_regex(action, True))
    return found


_VARIABLE_NAME = re.compile(r"\$\{([^}]*)\}")


def _what_decisions_read(levels: list[list[Policy]], action: str | None = None) -> tuple[tuple[str, ...] | None, bool]:
    """The context keys the evaluator can look up for these policies (condition keys and policy
    variables, lower case), or None when a key name is itself built from a variable; and whether any
    statement's Resource or NotResource can tell resources apart. With an action, only the statements
    whose Action (or NotAction) covers it count."""
    keys: set[str] = set()
    reads_resources = False

    def variables(value: Any) -> None:
        for text in value if isinstance(value, list) else [value]:
            for name in _VARIABLE_NAME.findall(str(text)):
                keys.add(name.partition(", ")[0].strip().lower())

    for level in levels:
        for policy in level:
            for statement, compiled in zip(policy.statements(), policy.compiled, strict=True):
                if action is not None and not compiled.matches_action(action):
                    continue
                for element in ("Resource", "NotResource"):
                    if element in statement:
                        patterns = statement[element]
                        if any(str(p) != "*" for p in (patterns if isinstance(patterns, list) else [patterns])):
                            reads_resources = True
                        variables(patterns)
                condition = statement.get("Condition")
                if not isinstance(condition, Mapping):
                    continue
                for block in condition.values():
                    if not isinstance(block, Mapping):
                        return None, True
                    for key, value in block.items():
                        if "${" in str(key):
                            return None, True
                        keys.add(str(key).lower())
                        variables(value)
    return tuple(sorted(keys)), reads_resources


def evaluate_record(
    compiled: Compiled | Any,
    record: Mapping[str, Any],
    management_account: str | None = None,
    max_depth: int = 32,
    *,
    facts: OrgFacts | None = None,
) -> dict:
    """The decision for one record: a pure function of (policies, record), for Spark, Athena or here.

    The record may have any shape `record_shapes.normalise` reads (a CloudTrail log record, an Athena,
    Glue or CloudTrail Lake row). `decision` is ALREADY_FAILING for a call CloudTrail recorded as failed
    that the guardrails would deny or cannot decide; `guardrail_decision` is then the guardrails' own,
    and `error_code` the record's errorCode. `action` is the canonical `service:Action` name.

    facts carries what records lack (organization id, principal tags); see policy/facts.py. compiled
    may also be an orgchain.ChainedPolicies: each record is then decided against its caller's account's
    chain, and the result carries `account` and `impact`.

    Raises MalformedRecord, naming the field, for a record the request context cannot be built from."""
    return decide_record(compiled, normalise(record), management_account, max_depth, facts=facts)


def decide_record(
    compiled: Compiled | Any,
    record: Mapping[str, Any],
    management_account: str | None = None,
    max_depth: int = 32,
    *,
    facts: OrgFacts | None = None,
) -> dict:
    """evaluate_record for a record `normalise` has already made CloudTrail-shaped (the replay loop
    normalises before its filters, and normalising twice cost a tenth of a guarded record).

    A call whose covering statements read only keys the record's head settles (the principal's, the
    request's tags, the organization's facts) and no resource is answered from the decision memo
    without building its context: the memo key is the one Compiled.decide makes, so a hit is the
    decision the whole request would get."""
    head = read_head(record, management_account, max_depth, facts=facts)
    code = error_code(record)
    requested = head.action
    action = canonical_action(requested)
    if head.exempt:
        return {
            "decision": ALLOW,
            "guardrail_decision": ALLOW,
            "error_code": code,
            "principal": head.principal,
            "action": action,
            "denied_by": [],
            "missing_keys": [],
            "reason": head.exempt,
        }
    quick = getattr(compiled, "result_from_head", None)
    found = quick(head, record, code, action) if quick is not None else None
    if found is not None:
        return found
    reads = getattr(compiled, "reads_resources_for", None)
    parsed = head.parsed(with_resources=True if reads is None else reads(requested))
    return compiled.result(parsed, record, code, action)


@dataclass
class Filters:
    """Which records a replay takes in (--since, --until, --accounts, --regions), and what they matched.

    A filter that matches nothing reads as "nothing would be denied", so the filters keep count: which
    account and region values matched a log file path or a record, and whether records were read but
    none was in scope. `warnings` turns that into sentences for the report. The marks live in memory
    shared with the worker processes (they are forked after the filters are made), and are only ever
    set, never cleared, so no lock is needed; the files skipped by their path are counted in the main
    process, which lists the files.
    """

    since: datetime | None = None
    until: datetime | None = None
    accounts: frozenset[str] = frozenset()
    regions: frozenset[str] = frozenset()
    skipped_files: int = field(default=0, init=False, compare=False)
    _marks: Any = field(default=None, init=False, repr=False, compare=False)
    _account_slots: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    _region_slots: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    _OUT_OF_SCOPE, _IN_SCOPE = 0, 1  # marks: a record was read outside the filters / inside them

    def __post_init__(self) -> None:
        self.accounts = frozenset(self.accounts)
        self.regions = frozenset(self.regions)
        self._account_slots = {value: 2 + index for index, value in enumerate(sorted(self.accounts))}
        self._region_slots = {value: 2 + len(self.accounts) + index for index, value in enumerate(sorted(self.regions))}
        if self.active:
            from multiprocessing.sharedctypes import RawArray

            self._marks = RawArray("B", 2 + len(self.accounts) + len(self.regions))

    @property
    def active(self) -> bool:
        return bool(self.accounts or self.regions or self.since or self.until)

    def _mark(self, slot: int) -> None:
        if not self._marks[slot]:
            self._marks[slot] = 1

    def path_may_match(self, name: str) -> bool:
        """Skip whole files by the AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/ layout."""
        match = _LOG_PATH.search(name)
        if not match:
            return True
        account, region, year, month, day = match.groups()
        matches = self._values_match(account, region)
        day_start = datetime(int(year), int(month), int(day))
        if matches and self.since and day_start.date() < self.since.date():
            matches = False
        if matches and self.until and day_start.date() > self.until.date():
            matches = False
        if not matches:
            self.skipped_files += 1
        return matches

    def _values_match(self, account: str | None, region: str | None) -> bool:
        """Whether account and region pass --accounts and --regions, marking each value seen on its own:
        an account whose records are all in other regions still exists, and is no typo."""
        matches = True
        if self.accounts:
            slot = self._account_slots.get(account) if account else None
            if slot is None:
                matches = False
            else:
                self._mark(slot)
        if self.regions:
            slot = self._region_slots.get(region) if region else None
            if slot is None:
                matches = False
            else:
                self._mark(slot)
        return matches

    def record_matches(self, record: Mapping[str, Any]) -> bool:
        """Whether the record is in scope; a field of the wrong type matches no filter."""
        if not self.active:
            return True
        matches = self._values_match(_s(record.get("recipientAccountId")), _s(record.get("awsRegion")))
        if matches and (self.since or self.until):
            when = _time(record.get("eventTime"))
            if when is None or (self.since and when < self.since) or (self.until and when > self.until):
                matches = False
        self._mark(self._IN_SCOPE if matches else self._OUT_OF_SCOPE)
        return matches

    def describe(self) -> str:
        """The filters as the command line gives them, for messages."""
        parts = []
        if self.accounts:
            parts.append(f"--accounts {' '.join(sorted(self.accounts))}")
        if self.regions:
            parts.append(f"--regions {' '.join(sorted(self.regions))}")
        if self.since:
            parts.append(f"--since {self.since.isoformat()}")
        if self.until:
            parts.append(f"--until {self.until.isoformat()}")
        return ", ".join(parts)

    def warnings(self, totals: Totals) -> list[str]:
        """What the filters matched nothing of, over the whole run: each --accounts and --regions value
        no log file path and no record carried, and a run that read records or files but took none in."""
        if not self.active:
            return []
        marks = self._marks
        found = [
            f"--accounts {value} matched no record: no log file or record of this account was read"
            for value, slot in sorted(self._account_slots.items())
            if not marks[slot]
        ]
        found.extend(
            f"--regions {value} matched no record: no log file or record of this region was read"
            for value, slot in sorted(self._region_slots.items())
            if not marks[slot]
        )
        if not marks[self._IN_SCOPE]:
            seen = []
            if marks[self._OUT_OF_SCOPE]:
                seen.append(_plural(totals.files, "file") + " read")
            if self.skipped_files:
                seen.append(_plural(self.skipped_files, "file") + " skipped by its AWSLogs/ path")
            if seen:
                found.append(f"0 records in scope: every record is outside {self.describe()} ({', '.join(seen)})")
        return found


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        return None


@dataclass
class Totals:
    """Aggregates that merge across files and workers; bounded by distinct groups, not records."""

    files: int = 0
    records: int = 0
    evaluated: int = 0
    groups: dict[tuple, dict[str, Any]] = field(default_factory=dict)
    errors: list[InputError] = field(default_factory=list)
    # (decision, policy, sid, YYYY-MM-DD) -> records: the timeline; bounded by days x statements
    daily: dict[tuple[str, str | None, str | None, str, str | None], int] = field(default_factory=dict)
    organization: dict[str, Any] | None = None  # --org: the snapshot and rollout (ChainedPolicies.describe)

    def add(self, decision: str, result: dict, record: Mapping[str, Any]) -> None:
        """Count a Deny (explicit: by its first policy and Sid; implicit: by the level that has no
        Allow, in the reason) or an Indeterminate (by the keys the record could not supply); a call
        already failing is counted the same way, apart, by its errorCode too."""
        account = record.get("recipientAccountId")
        if account.__class__ is not str:
            account = _s(account)
        guardrail = result.get("guardrail_decision", decision)
        denied_by = result["denied_by"]
        code, attached, impact = result.get("error_code"), result.get("attached_at"), result.get("impact")
        principal, action = result["principal"], result["action"]
        if guardrail == DENY and denied_by:
            policy, sid = denied_by[0]
            key = (
                decision,
                principal,
                action,
                account,
                policy,
                sid,
                (),
                "explicit deny",
                guardrail,
                code,
                attached,
                impact,
            )
        else:
            policy = sid = None
            missing, reason = tuple(result["missing_keys"]), result["reason"]
            key = (decision, principal, action, account, None, None, missing, reason, guardrail, code, attached, impact)
        when = record.get("eventTime")
        if when.__class__ is not str:
            when = _s(when) or ""
        groups = self.groups
        group = groups.get(key)
        if group is None:
            group = groups[key] = {"count": 0, "first_seen": when, "last_seen": when, "samples": []}
        group["count"] += 1
        if when < group["first_seen"]:
            group["first_seen"] = when
        elif when > group["last_seen"]:
            group["last_seen"] = when
        samples = group["samples"]  # kept sorted: a later record's label is not worth making
        if len(samples) < SAMPLES or when <= samples[-1][0]:
            _keep_earliest(samples, [(when, record_label(record))])
        day = (decision, policy, sid, when[:10], impact)
        daily = self.daily
        daily[day] = daily.get(day, 0) + 1

    def merge(self, other: Totals) -> None:
        self.files += other.files
        self.records += other.records
        self.evaluated += other.evaluated
        self.errors.extend(other.errors)
        for key, theirs in other.groups.items():
            mine = self.groups.get(key)
            if mine is None:
                self.groups[key] = theirs
                continue
            mine["count"] += theirs["count"]
            mine["first_seen"] = min(mine["first_seen"], theirs["first_seen"])
            mine["last_seen"] = max(mine["last_seen"], theirs["last_seen"])
            _keep_earliest(mine["samples"], theirs["samples"])
        for day, count in other.daily.items():
            self.daily[day] = self.daily.get(day, 0) + count


def _keep_earliest(samples: list[tuple[str, str]], more: Iterable[tuple[str, str]]) -> None:
    """Keep a group's SAMPLES earliest (eventTime, label) pairs, in place and sorted: the same samples
    whatever order files, workers or Spark partitions deliver the records in."""
    samples.extend(more)
    samples.sort()
    del samples[SAMPLES:]


@dataclass
class Replayer:
    """What turns CloudTrail records into Totals: the compiled policies and the run's settings.

    The same object goes to forked worker processes here and, through cloudpickle (compiled policies
    hold closures), to Spark executors (netguard.spark); `records` is the one loop every engine runs,
    so their groups cannot differ."""

    compiled: Compiled
    filters: Filters = field(default_factory=Filters)
    management_account: str | None = None
    limits: Limits = LIMITS
    facts: OrgFacts | None = None

    def file(self, raw: bytes, name: str) -> Totals:
        """One log file's bytes (any format cloudtrail.decode_records reads), counted as one file.

        The cyclic garbage collector is off while the file is decoded and decided: a decoded file is
        a hundred thousand containers, none of them in a cycle, and each collection the decoding and
        the per-record objects set off walked them all again (a fifth of the replay's time). Whatever
        cycle a file's work makes is collected once the collector is back on."""
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return self._file(raw, name)
        finally:
            if was_enabled:
                gc.enable()

    def _file(self, raw: bytes, name: str) -> Totals:
        records = cloudtrail.decode_records(raw, name, self.limits)  # the reader simulate uses too
        if isinstance(records, RecordError):
            totals = Totals(files=1)
            totals.errors.append(records.as_input_error())
            return totals
        totals = self.records(records, name)
        totals.files = 1
        return totals

    def records(self, records: Iterable[Any], name: str, positions: Iterable[int] | None = None) -> Totals:
        """Decide and group records of any shape (record_shapes.normalise); name labels their errors,
        and positions, when given, are the records' indices in that file (netguard.spark passes on only
        some of a file's records, and its errors must name the same records as here).

        Records outside the filters are not counted; records no Deny can match are counted and not
        evaluated; a record that cannot be evaluated is an error naming it, and the rest go on."""
        totals = Totals()
        compiled, filters, limits = self.compiled, self.filters, self.limits
        filtering = bool(filters.accounts or filters.regions or filters.since or filters.until)
        verdicts = compiled.verdicts  # (eventSource, eventName) -> needs evaluation; the hot path is one lookup
        by_account = hasattr(compiled, "needs_record")  # --org: then also per account's chain
        errors = FileErrors(name, limits.max_record_errors)
        management_account, max_depth, facts = self.management_account, limits.max_depth, self.facts
        counted = 0
        for index, record in zip(positions, records, strict=True) if positions is not None else enumerate(records):
            try:
                key = (record["eventSource"], record["eventName"])
            except (TypeError, KeyError, IndexError):
                key = None
            if key is None or not isinstance(key[0], str) or not isinstance(key[1], str):
                if not isinstance(record, Mapping):
                    errors.add(not_an_object(name, index).message)
                    continue
                try:  # an Athena, Glue or Lake row names its fields otherwise: normalised, it may have both
                    record = normalise(record)
                    key = (record.get("eventSource"), record.get("eventName"))
                except Exception as exc:
                    counted += 1
                    errors.add(f"record {index} ({label(record)}): {_why_failed(exc)}")
                    continue
                if not isinstance(key[0], str) or not isinstance(key[1], str):
                    counted += 1
                    errors.add(f"record {index} ({record_label(record)}): {_why_malformed(record, limits)}")
                    continue
            try:
                if filtering and not filters.record_matches(record):
                    continue
                counted += 1
                need = verdicts.get(key)
                if need is None:
                    need = compiled.needs_evaluation(*key)
                if not need or (by_account and not compiled.needs_record(record, key)):
                    continue
                totals.evaluated += 1
                record = normalise(record)  # as evaluate_record sees it: Lake's times become CloudTrail's
                result = decide_record(compiled, record, management_account, max_depth, facts=facts)
                if result["decision"] != ALLOW:
                    totals.add(result["decision"], result, record)
            except Exception as exc:  # one record's failure, whatever it is, is that record's error
                errors.add(f"record {index} ({label(record)}): {_why_failed(exc)}")
        totals.records += counted
        totals.errors.extend(errors.close())
        return totals


def replay_file(
    compiled: Compiled,
    raw: bytes,
    name: str,
    filters: Filters,
    management_account: str | None = None,
    limits: Limits = LIMITS,
    *,
    facts: OrgFacts | None = None,
) -> Totals:
    """One file's Totals; see Replayer."""
    return Replayer(compiled, filters, management_account, limits, facts).file(raw, name)


def _why_failed(exc: Exception) -> str:
    """A record error's reason: a malformed record's message names the field; anything else is a fault
    in netguard, reported with its type and message rather than hidden or crashing the replay."""
    if isinstance(exc, MalformedRecord):
        return str(exc)
    message = str(exc)
    if len(message) > 300:
        message = message[:297] + "..."
    return f"not evaluated: internal error {type(exc).__name__}: {message}"


def _why_malformed(record: Mapping[str, Any], limits: Limits) -> str:
    try:
        check_record(record, limits.max_depth)
    except MalformedRecord as exc:
        return str(exc)
    return "missing eventSource or eventName"  # pragma: no cover - check_record names the field


@dataclass
class Source:
    """Where the logs are: a local path or s3://bucket/prefix. Yields (name, reader) per file."""

    location: str
    client: Any = None
    limits: Limits = LIMITS
    budget: aws.Budget = field(default_factory=aws.Budget)  # retry time per S3 call and per worker

    def files(self, filters: Filters) -> Iterator[str]:
        if self.location.startswith("s3://"):
            bucket, _, prefix = self.location[5:].partition("/")
            token: dict[str, str] = {}
            while True:
                page = aws.call(
                    lambda token=token: self.client.list_objects_v2(Bucket=bucket, Prefix=prefix, **token),
                    f"ListObjectsV2 {self.location}",
                    self.budget,
                    where=self.location,
                )
                for item in page.get("Contents", []):
                    key = item["Key"]
                    # an object named in full is read whatever its name, as a local file is (Athena's .csv)
                    if (key.endswith(LOG_SUFFIXES) or key == prefix) and filters.path_may_match(key):
                        yield f"s3://{bucket}/{key}"
                if not page.get("IsTruncated") or not page.get("NextContinuationToken"):
                    return
                token = {"ContinuationToken": page["NextContinuationToken"]}
        path = Path(self.location)
        if path.is_file():
            yield str(path)
            return
        for file in sorted(path.rglob("*")):
            if file.is_file() and file.name.endswith(LOG_SUFFIXES) and filters.path_may_match(file.as_posix()):
                yield str(file)

    def read(self, name: str) -> bytes | RecordError:
        """A file's bytes, at most limits.max_file_bytes of them, or the error that names it."""
        cap = self.limits.max_file_bytes
        if not name.startswith("s3://"):
            return cloudtrail.read_file_bytes(name, self.limits)
        bucket, _, key = name[5:].partition("/")

        def get() -> bytes | RecordError:  # the request and the reading of its body, retried together
            response = self.client.get_object(Bucket=bucket, Key=key)
            size = response.get("ContentLength")
            if isinstance(size, int) and size > cap:
                response["Body"].close()
                return RecordError(name, f"object is {size_text(size)}, over the limit of {_cap_text(cap)}")
            raw = response["Body"].read(cap + 1)
            if len(raw) > cap:
                return RecordError(name, f"object is over the limit of {_cap_text(cap)}")
            return raw

        try:
            return aws.call(get, f"GetObject {name}", self.budget, where=name)
        except aws.AwsCallFailed as exc:
            return RecordError(name, f"cannot read: {exc.message}")


def _cap_text(cap: int) -> str:
    return f"{size_text(cap)} per file (--max-file-bytes)"


_state: dict[str, Any] = {}


def _replay_one(name: str) -> Totals:
    source: Source = _state["source"]
    try:
        raw = source.read(name)
    except Exception as exc:  # an unreadable object is an error for that file; the replay goes on
        raw = RecordError(name, f"cannot read: {exc}")
    if isinstance(raw, RecordError):
        totals = Totals(files=1)
        totals.errors.append(raw.as_input_error())
        return totals
    try:
        return _state["replayer"].file(raw, name)
    except Exception as exc:  # a fault outside any one record: an error for the file, and the replay goes on
        totals = Totals(files=1)
        totals.errors.append(InputError(name, f"not replayed: internal error {type(exc).__name__}: {exc}"))
        return totals


def _replay_numbered(item: tuple[int, str]) -> tuple[int, Totals]:
    """_replay_one, with the file's place in the listing: workers finish in any order, and the errors
    are reported in the listing's order, as one worker reports them."""
    index, name = item
    return index, _replay_one(name)


def _load_reference_data() -> None:
    """Load the IAM reference data and EC2's operation names once, before workers fork, so that each
    worker shares them instead of spending a third of a second loading its own copy."""
    action_resource_types()
    canonical_action("ec2:DeleteVpc")


def replay(
    compiled: Compiled,
    source: Source,
    filters: Filters,
    *,
    management_account: str | None = None,
    facts: OrgFacts | None = None,
    jobs: int = 1,
    progress: Any = None,
) -> Totals:
    """Replay every log file of source; files are processed in parallel across `jobs` processes."""
    replayer = Replayer(compiled, filters, management_account, source.limits, facts)
    _state.update(replayer=replayer, source=source)
    _load_reference_data()
    totals = Totals()
    names: Iterable[str] = source.files(filters)
    try:
        if jobs <= 1:
            for name in names:
                part = _replay_one(name)
                totals.merge(part)
                if progress:
                    progress(totals)
            return totals
        import multiprocessing

        failed: list[tuple[int, list[InputError]]] = []  # only files with errors: memory stays flat
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            for index, part in pool.imap_unordered(_replay_numbered, enumerate(names), chunksize=4):
                if part.errors:
                    failed.append((index, part.errors))
                    part.errors = []
                totals.merge(part)
                if progress:
                    progress(totals)
        for _, errors in sorted(failed, key=lambda item: item[0]):
            totals.errors.extend(errors)
        return totals
    finally:
        _state.clear()


def rows(totals: Totals) -> list[dict[str, Any]]:
    """Every group, the impact first (most frequent first), the calls already failing after them."""
    out = []
    ordered = sorted(
        totals.groups.items(),
        key=lambda item: (item[0][0] == ALREADY_FAILING, -item[1]["count"], item[0][1] or "", repr(item[0])),
    )  # the whole key last: the same order whatever order the groups were merged in
    for (
        decision,
        principal,
        action,
        account,
        policy,
        sid,
        missing,
        reason,
        guardrail,
        code,
        where,
        impact,
    ), group in ordered:
        out.append(
            {
                "decision": decision,
                "principal": principal,
                "action": action,
                "account": account,
                "policy": policy,
                "sid": sid,
                "missing_keys": list(missing),
                "reason": reason,
                "guardrail_decision": guardrail,
                "error_code": code,
                "impact": impact,
                "attached_at": where,
                **group,
                "samples": [label for _, label in sorted(group["samples"])],
            }
        )
    return out


def timeline(totals: Totals) -> list[dict[str, Any]]:
    """Records per day per decision and statement (policy and Sid; None for an implicit deny or an
    Indeterminate) and, with --org, impact; oldest first: what a chart of would-be denials over time
    needs."""
    return [
        {"day": day, "decision": decision, "policy": policy, "sid": sid, "impact": impact, "count": count}
        for (decision, policy, sid, day, impact), count in sorted(
            totals.daily.items(),
            key=lambda item: (item[0][3], item[0][0], item[0][1] or "", item[0][2] or "", item[0][4] or ""),
        )
    ]


def _counts(all_rows: list[dict[str, Any]], organization: bool = False) -> dict[str, int]:
    def total(decision: str, impact: str | None = None) -> int:
        return sum(r["count"] for r in all_rows if r["decision"] == decision and impact in (None, r["impact"]))

    counts = {
        "would_be_denied": total(DENY),
        "indeterminate": total(INDETERMINATE),
        "already_failing": total(ALREADY_FAILING),
    }
    if organization:  # --org: what the rollout adds, apart from what today's SCPs already deny
        counts.update(
            newly_denied=total(DENY, "new"),
            already_denied=total(DENY, "existing"),
            newly_indeterminate=total(INDETERMINATE, "new"),
        )
    return counts


def decision_summary(totals: Totals) -> dict[str, str]:
    """Deny and Indeterminate, each with its groups and records ("" for none), for --fail-on. Groups
    already failing are left out: a call that failed when it was made is no impact to fail on; with
    --org, so are calls today's SCPs already deny: the rollout changes nothing for them."""
    found = {}
    for decision in (DENY, INDETERMINATE):
        groups = [group for key, group in totals.groups.items() if key[0] == decision and key[-1] != "existing"]
        records = sum(group["count"] for group in groups)
        plural = "s" if len(groups) != 1 else "", "s" if records != 1 else ""
        found[decision] = f"{len(groups)} group{plural[0]} of {records} record{plural[1]}" if groups else ""
    return found


def _line(row: dict[str, Any]) -> str:
    if row["policy"]:  # a statement without a Sid is named by its policy alone
        by = f" by {row['policy']}" + (f" / {row['sid']}" if row["sid"] else "")
        by += f" at {row['attached_at']}" if row.get("attached_at") else ""
    elif row["missing_keys"]:
        by = f" (missing: {', '.join(row['missing_keys'])})"
    else:
        by = f" ({row['reason']})"  # an implicit deny: the level with no Allow
    failed = f" error {row['error_code']}, guardrails: {row['guardrail_decision']}" if row["error_code"] else ""
    return printable(
        f"{row['decision']:<14} {row['count']:>8}  {row['action']:<32} {row['principal']}  "
        f"account {row['account']}{failed}{by}  {row['first_seen']} .. {row['last_seen']}  "
        f"e.g. {', '.join(row['samples'][:2])}"
    )


def to_text(totals: Totals, warnings: Iterable[str] = ()) -> str:
    """The groups, the calls already failing, the errors, the summary; then the warnings (Filters.warnings
    and the like), so that a filter that matched nothing is said where the "0 would be denied" is."""
    all_rows = rows(totals)
    failing = [r for r in all_rows if r["decision"] == ALREADY_FAILING]
    impact = [r for r in all_rows if r["decision"] != ALREADY_FAILING]
    org = totals.organization
    if org is None:
        lines = [_line(row) for row in impact]
    else:
        lines = [
            printable(
                f"organization: {org['snapshot']} (exported {org['exported_at']}, {org['accounts']} accounts), "
                f"rollout --stage {org['stage']}: {_plural(len(org['rollout']), 'change')}"
            )
        ]
        lines.extend(printable(f"  {change}") for change in org["rollout"])
        lines.extend(printable(f"  note: {note}") for note in org["notes"])
        for title, decision, impact_of in (
            ("newly denied: allowed today, denied after the rollout", DENY, "new"),
            ("newly undecided: allowed today, then up to keys the records lack", INDETERMINATE, "new"),
            ("undecided today already: today's SCPs depend on keys the records lack", None, "undetermined"),
            ("already denied today by the organization's SCPs: the rollout changes nothing for them", None, "existing"),
        ):
            chosen = [r for r in impact if r["impact"] == impact_of and decision in (None, r["decision"])]
            if chosen:
                lines.append(title)
                lines.extend(_line(row) for row in chosen)
    if failing:
        lines.append("already failing: calls CloudTrail recorded as failed (errorCode), not counted as impact")
        lines.extend(_line(row) for row in failing)
    for error in totals.errors:
        lines.append(printable(f"error: {error.file}: {error.message}"))
    counts = _counts(all_rows, org is not None)
    denied = f"{counts['would_be_denied']} would be denied"
    if org is not None:
        denied += f" ({counts['newly_denied']} newly, {counts['already_denied']} already today)"
    lines.append(
        f"netguard: {totals.files} files, {totals.records} records, {totals.evaluated} evaluated: "
        f"{denied}, {counts['indeterminate']} indeterminate, "
        f"{counts['already_failing']} already failing, {len(totals.errors)} errors"
    )
    lines.extend(supply_hints((r["missing_keys"], r["count"]) for r in all_rows if r["decision"] == INDETERMINATE))
    lines.extend(printable(f"warning: {warning}") for warning in warnings)
    return "\n".join(lines) + "\n"


def to_json(totals: Totals, warnings: Iterable[str] = ()) -> str:
    """The impact in `groups`, the calls already failing apart in `already_failing` (each with its
    error_code and the guardrails' decision), the errors, the `warnings` (a filter or an input that
    matched nothing), and the counts in `summary`. With --org, each group's `impact` is new, existing
    or undetermined, `organization` describes the snapshot and the rollout, and `summary` counts
    newly_denied, already_denied and newly_indeterminate."""
    import json

    all_rows = rows(totals)
    return (
        json.dumps(
            {
                "groups": [r for r in all_rows if r["decision"] != ALREADY_FAILING],
                "already_failing": [r for r in all_rows if r["decision"] == ALREADY_FAILING],
                "timeline": timeline(totals),
                "organization": totals.organization,
                "errors": [e.to_dict() for e in totals.errors],
                "warnings": list(warnings),
                "summary": {
                    "files": totals.files,
                    "records": totals.records,
                    "evaluated": totals.evaluated,
                    **_counts(all_rows, totals.organization is not None),
                    "errors": len(totals.errors),
                },
            },
            indent=2,
        )
        + "\n"
    )


def to_csv(totals: Totals) -> str:
    """One row per group; a call already failing has the decision AlreadyFailing, its error_code and
    the guardrails' decision in guardrail_decision."""
    buffer = io.StringIO()
    fields = [
        "decision",
        "count",
        "principal",
        "action",
        "account",
        "policy",
        "sid",
        "missing_keys",
        "first_seen",
        "last_seen",
        "samples",
        "error_code",
        "guardrail_decision",
        "reason",
    ]
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for row in rows(totals):
        values = {
            **{k: row[k] for k in fields},
            "missing_keys": " ".join(row["missing_keys"]),
            "samples": " ".join(row["samples"]),
        }
        writer.writerow({k: printable(v) if isinstance(v, str) else v for k, v in values.items()})
    return buffer.getvalue()
