"""`netguard policy simulate`: the evaluator applied to every record of CloudTrail files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netguard.errors import InputError
from netguard.iam.evaluator import ALLOW, FULL_AWS_ACCESS, Policy, evaluate_scps
from netguard.policy.cloudtrail import LOG_SUFFIXES, RecordError, parse_record, read_records


@dataclass
class SimulationResult:
    results: list[dict[str, Any]] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)


def load_policy_levels(folder: Path, full_aws_access: bool = True) -> tuple[list[list[Policy]], list[InputError]]:
    """SCPs by level: files directly in folder form one level, each subfolder (sorted) one more.

    Organizations attach FullAWSAccess everywhere by default; unless told otherwise, each level gets it,
    so deny-only guardrails are simulated as they would run.
    """
    errors: list[InputError] = []
    if not folder.is_dir():
        return [], [InputError(str(folder), "not a folder of policies")]
    groups = [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]
    levels: list[list[Policy]] = []
    for group in groups:
        level = [Policy("FullAWSAccess", FULL_AWS_ACCESS)] if full_aws_access else []
        for path in sorted(group.glob("*.json")):
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                errors.append(InputError(str(path), f"cannot load policy: {exc}"))
                continue
            if not isinstance(document, dict):
                errors.append(InputError(str(path), "a policy must be a JSON object"))
                continue
            level.append(Policy(path.name, document))
        if group is folder or len(level) > int(full_aws_access):
            levels.append(level)
    return levels, errors


def event_files(paths: list[Path]) -> Iterator[Path | InputError]:
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(LOG_SUFFIXES))
        else:
            yield InputError(str(path), "no such file or directory")


def simulate(levels: list[list[Policy]], events: list[Path], management_account: str | None = None) -> SimulationResult:
    """One result per record; unreadable files and malformed records are errors, and the rest goes on."""
    outcome = SimulationResult()
    for path in event_files(events):
        if isinstance(path, InputError):
            outcome.errors.append(path)
            continue
        for index, record in enumerate(read_records(path)):
            if isinstance(record, RecordError):
                outcome.errors.append(record.as_input_error())
                continue
            try:
                parsed = parse_record(record, management_account)
            except (KeyError, TypeError) as exc:
                outcome.errors.append(
                    InputError(
                        str(path), f"record {index} ({record.get('eventID', '?')}): missing or malformed field {exc}"
                    )
                )
                continue
            entry = {"eventID": parsed.event_id, "eventName": parsed.event_name, "principal": parsed.principal}
            if parsed.scp_exempt_reason:
                entry.update(
                    decision=ALLOW,
                    policy=None,
                    sid=None,
                    reason=parsed.scp_exempt_reason,
                    missing_keys=[],
                    denied_by=[],
                )
            else:
                decision = evaluate_scps(levels, parsed.request)
                entry.update(
                    decision=decision.decision,
                    policy=decision.policy,
                    sid=decision.sid,
                    reason=decision.reason,
                    missing_keys=decision.missing,
                    denied_by=[{"policy": name, "sid": sid} for name, sid in decision.denied_by],
                )
            outcome.results.append(entry)
    return outcome


def to_text(outcome: SimulationResult) -> str:
    lines = []
    for r in outcome.results:
        by = f" by {r['policy']} / {r['sid']}" if r["policy"] and r["sid"] else ""
        missing = f" (missing: {', '.join(r['missing_keys'])})" if r["missing_keys"] else ""
        lines.append(f"{r['decision']:<13} {r['eventName']:<28} {r['principal']}  {r['eventID']}{by}{missing}")
    for e in outcome.errors:
        lines.append(f"error: {e.file}: {e.message}")
    counts = {d: sum(1 for r in outcome.results if r["decision"] == d) for d in ("Allow", "Deny", "Indeterminate")}
    lines.append(
        f"netguard: {len(outcome.results)} records: "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
        + f", {len(outcome.errors)} errors"
    )
    return "\n".join(lines) + "\n"


def to_json(outcome: SimulationResult) -> str:
    return json.dumps({"results": outcome.results, "errors": [e.to_dict() for e in outcome.errors]}, indent=2) + "\n"
