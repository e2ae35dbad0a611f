"""`netguard policy simulate`: the evaluator applied to every record of CloudTrail files.

Records of any shape `record_shapes.normalise` reads (CloudTrail log files, Athena, Glue, CloudTrail
Lake) are evaluated alike. A call CloudTrail recorded as failed (errorCode) that the guardrails would
deny or cannot decide is reported as AlreadyFailing, with its errorCode, and not as a Deny. A record
that cannot be evaluated, for whatever reason, is an error naming it, and the rest goes on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netguard.errors import InputError, printable
from netguard.iam.evaluator import ALLOW, DENY, FULL_AWS_ACCESS, INDETERMINATE, Policy, evaluate_scps
from netguard.policy import cloudtrail
from netguard.policy.bounded import Refused, loads_document, read_file
from netguard.policy.cloudtrail import (
    LIMITS,
    LOG_SUFFIXES,
    FileErrors,
    Limits,
    MalformedRecord,
    RecordError,
    not_an_object,
    parse_record,
)
from netguard.policy.facts import OrgFacts, supply_hints
from netguard.policy.record_shapes import ALREADY_FAILING, canonical_action, error_code, label, normalise, outcome
from netguard.policy.validate import grammar_problems

IMPACT_TEXT = {
    "new": "new: allowed today",
    "existing": "denied today already",
    "undetermined": "today undecided",
}

# A policy file is a few kilobytes (an SCP holds at most 5,120 characters, 10,240 with a raised quota).
MAX_POLICY_BYTES = 1024 * 1024
MAX_POLICY_DEPTH = 32  # a policy nests six levels: document, Statement, statement, Condition, operator, key


@dataclass
class SimulationResult:
    results: list[dict[str, Any]] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    organization: dict[str, Any] | None = None  # --org: the snapshot and rollout (ChainedPolicies.describe)


def load_policy_levels(folder: Path, full_aws_access: bool = True) -> tuple[list[list[Policy]], list[InputError]]:
    """SCPs by level: files directly in folder form one level, each subfolder (sorted) one more.

    Organizations attach FullAWSAccess everywhere by default; unless told otherwise, each level gets it,
    so deny-only guardrails are simulated as they would run.

    A level folder `policy render` wrote (it holds render's manifest) is read only as render left it:
    a listed file that is missing, or a *.json file the manifest does not list (stale from an older
    render, or put there by hand), is an error, so that nothing is evaluated that was not rendered.
    """
    from netguard.errors import NetguardError
    from netguard.policy.render import MANIFEST, rendered_folder_problems

    errors: list[InputError] = []
    if not folder.is_dir():
        return [], [InputError(str(folder), "not a folder of policies")]
    groups = [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]
    refused: set[Path] = set()  # stale or foreign files of a rendered level: reported once, not loaded
    for group in groups:
        try:
            problems = rendered_folder_problems(group)
        except NetguardError as exc:  # a manifest render could not have written
            problems = [(Path(exc.file), exc.message)]
        errors.extend(InputError(str(path), why) for path, why in problems)
        refused.update(path for path, _ in problems)
    for group in groups[1:]:  # a level is one folder deep: deeper policies would be silently left out
        errors.extend(
            InputError(str(deeper), "policies in a folder below a level are not read (levels are one folder deep)")
            for deeper in sorted(p for p in group.iterdir() if p.is_dir() and any(p.rglob("*.json")))
        )
    levels: list[list[Policy]] = []
    files = 0
    for group in groups:
        level = [Policy("FullAWSAccess", FULL_AWS_ACCESS)] if full_aws_access else []
        paths = sorted(p for p in group.glob("*.json") if p.name != MANIFEST and p not in refused)
        files += len(paths)
        if group is folder and not paths and not full_aws_access and len(groups) > 1:
            errors.append(
                InputError(
                    str(folder),
                    "no policy files directly in this folder, its root level: with --no-full-aws-access every "
                    "level needs its own SCPs (Organizations attaches at least one to the root, every OU and "
                    "every account), or everything would be implicitly denied",
                )
            )
        for path in paths:
            try:
                document = load_policy(path)
            except Refused as exc:
                where = f" ({exc.position})" if exc.position else ""
                errors.append(InputError(str(path), f"cannot load policy: {exc.message}{where}"))
                continue
            if not isinstance(document, dict):
                errors.append(InputError(str(path), "a policy must be a JSON object"))
                continue
            broken = grammar_problems(document)
            if broken:  # the evaluator reads only what the grammar allows: anything else is not evaluated
                hint = " (an unrendered template: run netguard policy render)" if "{{" in json.dumps(document) else ""
                errors.append(InputError(str(path), f"not a valid SCP, not evaluated: {'; '.join(broken[:3])}{hint}"))
                continue
            level.append(Policy(path.name, document))
        if group is folder or len(level) > int(full_aws_access):
            levels.append(level)
    if not files:
        errors.append(InputError(str(folder), "no policy files (*.json) in this folder or its subfolders"))
    return levels, errors


def load_policy(path: Path) -> Any:
    """One policy file's JSON, bounded in size, nesting and number length; Refused otherwise."""
    return loads_document(read_file(path, MAX_POLICY_BYTES, "policy files are at most 1 MiB"), MAX_POLICY_DEPTH)


def event_files(paths: list[Path]) -> Iterator[Path | InputError]:
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(LOG_SUFFIXES))
        else:
            yield InputError(str(path), "no such file or directory")


def simulate(
    levels: list[list[Policy]],
    events: list[Path],
    management_account: str | None = None,
    limits: Limits = LIMITS,
    *,
    facts: OrgFacts | None = None,
    chains: Any = None,
) -> SimulationResult:
    """One result per record; unreadable files and malformed records are errors, and the rest goes on.

    chains (an orgchain.ChainedPolicies, for --org) decides each record against its caller's account's
    chain today and after the rollout instead of levels; each result then has `account` and `impact`."""
    outcome = SimulationResult()
    for path in event_files(events):
        if isinstance(path, InputError):
            outcome.errors.append(path)
            continue
        name = str(path)
        raw = cloudtrail.read_file_bytes(path, limits)
        records = raw if isinstance(raw, RecordError) else cloudtrail.decode_records(raw, name, limits)
        if isinstance(records, RecordError):
            outcome.errors.append(records.as_input_error())
            continue
        errors = FileErrors(name, limits.max_record_errors)
        for index, record in enumerate(records):
            if not isinstance(record, Mapping):
                errors.add(not_an_object(name, index).message)
                continue
            try:
                shaped = normalise(record)  # an Athena, Glue or Lake row becomes a CloudTrail record
                parsed = parse_record(shaped, management_account, limits.max_depth, facts=facts)
                result = _result(levels, parsed, error_code(shaped), chains, shaped)
            except Exception as exc:  # one record's failure, whatever it is, is that record's error
                errors.add(f"record {index} ({label(record)}): {_why_failed(exc)}")
                continue
            outcome.results.append(result)
        outcome.errors.extend(errors.close())
    return outcome


def _why_failed(exc: Exception) -> str:
    """A malformed record's message names the field; anything else is a fault in netguard, reported
    with its type and message rather than hidden or ending the run."""
    if isinstance(exc, MalformedRecord):
        return str(exc)
    message = str(exc)
    if len(message) > 300:
        message = message[:297] + "..."
    return f"not evaluated: internal error {type(exc).__name__}: {message}"


def _result(
    levels: list[list[Policy]],
    parsed: Any,
    code: str | None = None,
    chains: Any = None,
    record: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One record's result. `decision` is AlreadyFailing for a failed call (errorCode) the guardrails
    would deny or cannot decide; `guardrail_decision` is always the guardrails' own."""
    entry = {
        "eventID": parsed.event_id,
        "eventName": parsed.event_name,
        "action": canonical_action(parsed.request.action),
        "principal": parsed.principal,
        "errorCode": code,
    }
    if parsed.scp_exempt_reason:
        entry.update(
            decision=ALLOW,
            guardrail_decision=ALLOW,
            policy=None,
            sid=None,
            reason=parsed.scp_exempt_reason,
            missing_keys=[],
            denied_by=[],
        )
        if chains is not None:
            entry.update(account=None, impact=None)
        return entry
    if chains is not None:
        fields = chains.result(parsed, record or {}, code, entry["action"])
        entry.update(
            decision=fields["decision"],
            guardrail_decision=fields["guardrail_decision"],
            policy=fields["policy"],
            sid=fields["sid"],
            reason=fields["reason"],
            missing_keys=fields["missing_keys"],
            denied_by=[{"policy": name, "sid": sid} for name, sid in fields["denied_by"]],
            account=fields["account"],
            impact=fields["impact"],
            attached_at=fields.get("attached_at"),
        )
        return entry
    decision = evaluate_scps(levels, parsed.request)
    entry.update(
        decision=outcome(decision.decision, code),
        guardrail_decision=decision.decision,
        policy=decision.policy,
        sid=decision.sid,
        reason=decision.reason,
        missing_keys=decision.missing,
        denied_by=[{"policy": name, "sid": sid} for name, sid in decision.denied_by],
    )
    return entry


def to_text(outcome: SimulationResult, warnings: Iterable[str] = ()) -> str:
    """One line per record, the errors, the counts; then the warnings (an --events folder holding no
    log file), so that "0 records" says why."""
    lines = []
    for r in outcome.results:
        by = f" by {r['policy']}" + (f" / {r['sid']}" if r["sid"] else "") if r["policy"] else ""
        missing = f" (missing: {', '.join(r['missing_keys'])})" if r["missing_keys"] else ""
        implicit = f" ({r['reason']})" if r["guardrail_decision"] == DENY and not r["denied_by"] else ""
        failed = (
            f" (already failing: {r['errorCode']}; guardrails: {r['guardrail_decision']})"
            if r["decision"] == ALREADY_FAILING
            else ""
        )
        if r.get("impact"):
            failed += f" [{IMPACT_TEXT[r['impact']]}]"
        lines.append(
            printable(
                f"{r['decision']:<14} {r['eventName']:<28} {r['principal']}  {r['eventID']}"
                f"{failed}{by}{missing}{implicit}"
            )
        )
    for e in outcome.errors:
        lines.append(printable(f"error: {e.file}: {e.message}"))
    counts = {d: sum(1 for r in outcome.results if r["decision"] == d) for d in (ALLOW, DENY, INDETERMINATE)}
    failing = sum(1 for r in outcome.results if r["decision"] == ALREADY_FAILING)
    if outcome.organization is not None:
        org = outcome.organization
        lines.insert(
            0,
            printable(
                f"organization: {org['snapshot']} (exported {org['exported_at']}), rollout --stage {org['stage']}: "
                f"{len(org['rollout'])} changes; each record decided against its caller's account's SCPs"
            ),
        )
        new = sum(1 for r in outcome.results if r.get("impact") == "new" and r["decision"] == DENY)
        existing = sum(1 for r in outcome.results if r.get("impact") == "existing" and r["decision"] == DENY)
        counts[DENY] = f"{counts[DENY]} ({new} newly, {existing} already today)"  # type: ignore[assignment]
    lines.append(
        f"netguard: {len(outcome.results)} records: "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
        + f", {failing} already failing (not counted as impact), {len(outcome.errors)} errors"
    )
    lines.extend(supply_hints((r["missing_keys"], 1) for r in outcome.results if r["decision"] == INDETERMINATE))
    lines.extend(printable(f"warning: {warning}") for warning in warnings)
    return "\n".join(lines) + "\n"


def to_json(outcome: SimulationResult, warnings: Iterable[str] = ()) -> str:
    """The results, the errors and the warnings (an --events folder holding no log file)."""
    report: dict[str, Any] = {
        "results": outcome.results,
        "errors": [e.to_dict() for e in outcome.errors],
        "warnings": list(warnings),
    }
    if outcome.organization is not None:
        report["organization"] = outcome.organization
    return json.dumps(report, indent=2) + "\n"


def decision_summary(outcome: SimulationResult) -> dict[str, str]:
    """Deny and Indeterminate, each with how many records have it ("" for none), for --fail-on.
    AlreadyFailing is left out: a call that failed when it was made is no impact to fail a pipeline on."""
    found = {}
    for decision in (DENY, INDETERMINATE):  # with --org, what today's SCPs already deny is no change
        count = sum(1 for r in outcome.results if r["decision"] == decision and r.get("impact") != "existing")
        found[decision] = f"{count} record{'s' if count != 1 else ''}" if count else ""
    return found
