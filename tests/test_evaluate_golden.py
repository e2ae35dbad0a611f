"""The evaluator and the request-context builder against decisions recorded before they were optimised
(issue 18): bench/evaluate.py's varied records, decided against the repository's guardrails and a
third-party-style SCP set, must give exactly the golden results and contexts, field by field."""

from __future__ import annotations

import json
import sys

import pytest

from netguard.iam.evaluator import evaluate_scps
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import evaluate as bench


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(bench.GOLDEN.read_text())


@pytest.fixture(scope="module")
def now() -> dict:
    return bench.golden()


def test_the_golden_file_covers_every_decision_and_principal_kind(recorded):
    for name, table in recorded["sets"].items():
        decisions = {json.loads(v) for v in table["values"]["guardrail_decision"]}
        assert {"Allow", "Deny"} <= decisions, name
    third = recorded["sets"]["third-party"]["values"]
    assert '"Indeterminate"' in third["guardrail_decision"]
    assert len(third["missing_keys"]) > 2  # several distinct sets of keys a record cannot supply


@pytest.mark.parametrize("name", ["repository", "third-party"])
def test_decisions_are_the_golden_ones(recorded, now, name):
    want, got = recorded["sets"][name], now["sets"][name]
    assert got["fields"] == want["fields"]
    fields = want["fields"]
    differences = [
        (i, field, json.loads(want["values"][field][w]), json.loads(got["values"][field][g]))
        for i, (w_row, g_row) in enumerate(zip(want["rows"], got["rows"], strict=True))
        for field, w, g in zip(fields, w_row, g_row, strict=True)
        if want["values"][field][w] != got["values"][field][g]
    ]
    assert differences == []


@pytest.mark.parametrize("name", ["repository", "third-party"])
def test_request_contexts_are_the_golden_ones(recorded, now, name):
    want, got = recorded["contexts"][name], now["contexts"][name]
    assert [i for i, (w, g) in enumerate(zip(want, got, strict=True)) if w != g] == []


def _every_key(context) -> set[str]:
    return set(context.values) | set(context.absent) | {"aws:resourceaccount", "aws:unknownkey", "aws:requesttag/x"}


def test_a_lazily_built_context_answers_every_key_as_the_whole_context_does():
    """parse_record builds its costlier key groups on first lookup: a fresh context asked for any one
    key answers what the fully built one does, whichever key is asked first."""
    from netguard.policy.cloudtrail import MalformedRecord, parse_record
    from netguard.policy.record_shapes import normalise

    checked = 0
    for record in bench.records(300, seed=7):
        try:
            whole = parse_record(normalise(record), facts=bench.FACTS).request.context
        except MalformedRecord:
            continue
        want = {key: whole.lookup(key) for key in _every_key(whole)}
        for key, answer in want.items():
            fresh = parse_record(normalise(record), facts=bench.FACTS).request.context
            assert fresh.lookup(key.upper()) == answer, (key, record["eventName"])
            checked += 1
    assert checked > 3000


def test_every_deferred_group_declares_the_keys_it_builds():
    """A key a group builds but does not declare would read as unknown until another of its keys was
    looked up: every group of every parsed record builds only keys it declares, and each declared key
    is built (given a value or marked absent) for some record."""
    from netguard.policy.cloudtrail import MalformedRecord, parse_record
    from netguard.policy.record_shapes import normalise

    declared: dict[frozenset[str], set[str]] = {}
    for record in bench.records(400, seed=9):
        try:
            context = parse_record(normalise(record), facts=bench.FACTS).request.context
        except MalformedRecord:
            continue
        for keys, build in list(context._deferred):
            values, absent = build(context)
            built = {key.lower() for key, value in values.items() if value is not None}
            built |= {key.lower() for key in absent}
            assert built <= keys, built - keys
            declared.setdefault(keys, set()).update(built)
    assert len(declared) >= 7
    for keys, built in declared.items():
        assert built == keys, keys - built


def test_policies_that_never_tell_resources_apart_decide_the_same_without_them():
    """decide_record leaves out the resource ARNs for an action whose statements all say Resource "*";
    the decisions must be those made with them."""
    import tempfile
    from pathlib import Path

    from netguard.policy import replay as rp
    from netguard.policy.cloudtrail import MalformedRecord, parse_record
    from netguard.policy.record_shapes import normalise

    with tempfile.TemporaryDirectory() as work:
        levels, facts = bench.policy_sets(Path(work))["repository"]
    compiled = rp.compile_policies(levels)
    skipped = 0
    for record in bench.records(400, seed=11):
        shaped = normalise(record)
        try:
            parsed = parse_record(shaped, facts=facts)
        except MalformedRecord:
            continue
        if parsed.scp_exempt_reason:
            continue
        if not compiled.reads(parsed.request.action)[1]:
            skipped += 1
            without = parse_record(shaped, facts=facts, with_resources=False)
            assert without.request.resources is None
            assert evaluate_scps(levels, without.request) == evaluate_scps(levels, parsed.request)
    assert skipped > 50


def _nest(levels: int) -> dict:
    value: dict = {"leaf": "x"}
    for _ in range(levels - 1):
        value = {"next": value}
    return value


@pytest.mark.parametrize("where", ["userIdentity", "requestParameters"])
def test_the_depth_limit_holds_wherever_the_nesting_is_and_whatever_was_seen_before(where):
    """parse_record remembers a checked userIdentity and walks the rest of the record apart: a record
    is refused exactly when bounded.deeper_than says it nests too deep, for an identity seen before
    under another limit too."""
    from netguard.policy.bounded import deeper_than
    from netguard.policy.cloudtrail import MalformedRecord, parse_record

    base = bench.records(1, seed=3)[0]
    outcomes = set()
    for levels in range(1, 9):
        record = json.loads(json.dumps(base))
        if where == "userIdentity":
            record["userIdentity"]["sessionContext"]["webIdFederationData"] = _nest(levels)
        else:
            record["requestParameters"] = _nest(levels)
        for max_depth in (3, 5, 7, 200):
            want = deeper_than(record, max_depth)
            try:
                parse_record(record, max_depth=max_depth)
                got = False
            except MalformedRecord as exc:
                assert "levels deep" in str(exc)
                got = True
            assert got == want, (levels, max_depth)
            outcomes.add(got)
    assert outcomes == {True, False}


def test_a_remembered_identity_still_answers_for_its_own_record():
    """Two records with the same identity but other accounts and regions get their own context; an
    identity that fails its checks fails every time, not only the first."""
    from netguard.policy.cloudtrail import MalformedRecord, parse_record

    first, second = (json.loads(json.dumps(r)) for r in bench.records(2, seed=5))
    second["userIdentity"] = json.loads(json.dumps(first["userIdentity"]))
    second["awsRegion"], second["recipientAccountId"] = "ap-south-2", "123412341234"
    a, b = (parse_record(r).request.context for r in (first, second))
    assert a.lookup("aws:PrincipalArn") == b.lookup("aws:PrincipalArn")
    assert b.lookup("aws:RequestedRegion") == ("ap-south-2",)
    broken = json.loads(json.dumps(first))
    broken["userIdentity"]["arn"] = 7
    for _ in range(2):
        with pytest.raises(MalformedRecord, match=r"userIdentity\.arn"):
            parse_record(broken)


def test_an_identity_holding_nan_is_not_taken_for_one_holding_null():
    """The identity memo is keyed by the identity's JSON, where NaN and null read alike: an identity
    with a null field must not vouch for one with NaN in the same field."""
    from netguard.policy.cloudtrail import MalformedRecord, parse_record

    record = bench.records(1, seed=5)[0]
    record["userIdentity"] = {"type": "IAMUser", "arn": None, "accountId": "111122223333"}
    parse_record(json.loads(json.dumps(record)))
    record["userIdentity"]["arn"] = float("nan")
    with pytest.raises(MalformedRecord, match=r"userIdentity\.arn"):
        parse_record(record)


@pytest.mark.parametrize("name", ["repository", "third-party"])
def test_decisions_answered_from_the_record_head_are_the_whole_request_s(name, monkeypatch):
    """replay.decide_record answers a call whose statements read only keys the record's head settles
    from the decision memo, without the context: over two passes of varied records (the second finds
    its decisions remembered), every result equals the one made with no memo at all, and the head
    alone answered some."""
    import tempfile
    from pathlib import Path

    from netguard.policy import cloudtrail
    from netguard.policy import replay as rp
    from netguard.policy.cloudtrail import MalformedRecord
    from netguard.policy.record_shapes import normalise

    with tempfile.TemporaryDirectory() as work:
        levels, facts = bench.policy_sets(Path(work))[name]
    slow, remembered = rp.compile_policies(levels), rp.compile_policies(levels)
    slow.decisions = bench._NoMemo()
    built = []
    whole = cloudtrail.RecordHead.parsed
    monkeypatch.setattr(cloudtrail.RecordHead, "parsed", lambda head, *a, **k: built.append(1) or whole(head, *a, **k))

    def outcome(compiled, record):
        try:
            return rp.decide_record(compiled, normalise(record), facts=facts)
        except MalformedRecord as exc:
            return str(exc)

    batch = bench.records(1500, seed=21)
    for record in batch:
        outcome(remembered, record)
    built.clear()
    decided = 0
    for record in batch:
        want = outcome(slow, record)
        before = len(built)
        got = outcome(remembered, record)
        assert got == want, record["eventID"]
        decided += isinstance(got, dict) and "policy" in got and len(built) == before  # not exempt
    assert decided > 40, decided  # answered from the head alone


def test_org_chain_decisions_answered_from_the_record_head_are_the_whole_request_s(tmp_path, monkeypatch):
    """The same under --org: each account's chains, today's and after the rollout, answer from their
    memos when both decisions are remembered; every result equals the no-memo one."""
    import org_replay
    from netguard.org.snapshot import load_snapshot
    from netguard.policy import cloudtrail
    from netguard.policy import replay as rp
    from netguard.policy.cloudtrail import MalformedRecord
    from netguard.policy.orgchain import org_chains
    from netguard.policy.orgconfig import load_org_config
    from netguard.policy.record_shapes import normalise

    accounts = [*bench.ACCOUNTS, bench.MANAGEMENT, *(f"{100000000000 + i}" for i in range(16))]
    monkeypatch.setattr(org_replay, "ACCOUNTS", accounts)
    (tmp_path / "snapshot.json").write_text(json.dumps(org_replay.snapshot(allow_list=True)))
    org = load_org_config(ROOT / "fixtures" / "org" / "org-targets.yaml")
    slow, remembered = (org_chains(load_snapshot(tmp_path / "snapshot.json"), org) for _ in range(2))
    for chains in slow.accounts.values():
        chains.before.decisions = chains.after.decisions = bench._NoMemo()
    built = []
    whole = cloudtrail.RecordHead.parsed
    monkeypatch.setattr(cloudtrail.RecordHead, "parsed", lambda head, *a, **k: built.append(1) or whole(head, *a, **k))

    def outcome(chains, record):
        try:
            return rp.decide_record(chains, normalise(record))
        except MalformedRecord as exc:
            return str(exc)

    batch = bench.records(1500, seed=23)
    for record in batch:
        outcome(remembered, record)
    decided = impacts = 0
    for record in batch:
        want = outcome(slow, record)
        before = len(built)
        got = outcome(remembered, record)
        assert got == want, record["eventID"]
        head_only = isinstance(got, dict) and "impact" in got and len(built) == before
        decided += head_only
        impacts += head_only and got["impact"] is not None
    assert decided > 100 and impacts > 10, (decided, impacts)
