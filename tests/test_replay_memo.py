"""The replay's decision memo: requests that differ only where no policy looks share one decision, and
requests that differ where a policy looks never do. A memo keyed too loosely is a wrong answer."""

from __future__ import annotations

import copy
import json

import pytest

from netguard.iam.evaluator import FULL_AWS_ACCESS, Policy, evaluate_scps
from netguard.policy import replay as rp
from netguard.policy.cloudtrail import parse_record
from tests.conftest import FIXTURES

SEED = json.loads((FIXTURES / "cloudtrail" / "seed-events.json").read_text())["Records"]
GUARDED = [r for r in SEED if r["eventName"] == "DeleteDhcpOptions"]


def deny(
    condition: dict | None = None, resource: str | list[str] = "*", action: str = "ec2:DeleteDhcpOptions"
) -> list[list[Policy]]:
    statement = {"Effect": "Deny", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return [[Policy("FullAWSAccess", FULL_AWS_ACCESS), Policy("guard", {"Statement": [statement]})]]


def at(record: dict, when: str, **changes) -> dict:
    copied = copy.deepcopy(record)
    copied["eventTime"] = when
    copied.update(changes)
    return copied


def fresh(levels, record) -> str:
    return evaluate_scps(levels, parse_record(record).request).decision


def test_requests_at_different_times_share_a_decision_when_no_policy_reads_the_time():
    compiled = rp.compile_policies(deny({"StringNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/network/*"}}))
    record = GUARDED[0]
    for hour in range(10):
        rp.evaluate_record(compiled, at(record, f"2026-11-02T{hour:02d}:00:00Z"))
    assert len(compiled.decisions) == 1


@pytest.mark.parametrize(
    ("condition", "resource", "changes"),
    [
        ({"DateGreaterThan": {"aws:CurrentTime": "2026-11-02T05:00:00Z"}}, "*", {}),
        ({"NumericLessThan": {"aws:EpochTime": "1793595600"}}, "*", {}),
        ({"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}, "*", {"awsRegion": "us-east-1"}),
        (None, "arn:aws:ec2:*:*:dhcp-options/dopt-0a1b*", {}),
        ({"StringNotEquals": {"aws:username": "${aws:PrincipalTag/owner, 'nobody'}"}}, "*", {}),
    ],
)
def test_requests_that_differ_where_a_policy_looks_are_decided_apart(condition, resource, changes):
    levels = deny(condition, resource)
    compiled = rp.compile_policies(levels)
    base = GUARDED[0]
    variants = [at(base, "2026-11-02T01:00:00Z"), at(base, "2026-11-02T09:00:00Z", **changes)]
    other = copy.deepcopy(base)
    other["requestParameters"] = {"dhcpOptionsId": "dopt-0bbb1111"}
    variants.append(other)
    for record in variants * 2:  # the second round answers from the memo
        assert rp.evaluate_record(compiled, record)["guardrail_decision"] == fresh(levels, record), record
    answers = {fresh(levels, record) for record in variants}
    if "aws:username" not in json.dumps(condition or {}):
        assert len(answers) > 1  # the case really has requests the memo must keep apart


def test_a_condition_key_named_by_a_variable_falls_back_to_the_whole_context():
    compiled = rp.compile_policies(deny({"StringEquals": {"aws:ResourceTag/${aws:username}": "x"}}))
    assert compiled.context_keys is None
    assert rp.evaluate_record(compiled, GUARDED[0])["guardrail_decision"] in ("Allow", "Deny", "Indeterminate")


def create_vpc(record: dict) -> dict:
    """record's caller creating a VPC with no tags."""
    return at(record, "2026-11-02T01:00:00Z", eventName="CreateVpc", requestParameters={"cidrBlock": "10.0.0.0/16"})


def decide(compiled, record, facts=None) -> str:
    return rp.decide_record(compiled, record, facts=facts)["guardrail_decision"]


def test_a_caller_s_decision_is_remembered_per_caller_and_action_when_the_policies_read_only_its_keys():
    """Statements that read only the principal's keys: the second record of a caller is answered
    per (caller, action) without the head's keys, and a caller the guardrail exempts is never given
    another caller's decision."""
    levels = deny({"StringNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/network/*"}})
    compiled = rp.compile_policies(levels)
    exempt = copy.deepcopy(GUARDED[0])
    exempt["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = "arn:aws:iam::111122223333:role/network/Admin"
    for record in [GUARDED[0], exempt] * 3:
        assert decide(compiled, record) == fresh(levels, record)
    assert {fresh(levels, GUARDED[0]), fresh(levels, exempt)} == {"Deny", "Allow"}
    assert len(compiled.by_caller) == 2


def test_request_tags_keep_one_caller_s_records_apart():
    """A statement reading the request's tags: records of one caller differ where it looks, so no
    per-caller decision is kept and each record is decided on its own tags."""
    levels = deny({"Null": {"aws:RequestTag/team": "true"}}, action="ec2:CreateVpc")
    compiled = rp.compile_policies(levels)
    untagged = create_vpc(GUARDED[0])
    tagged = copy.deepcopy(untagged)
    tagged["requestParameters"]["tagSpecificationSet"] = {
        "items": [{"resourceType": "vpc", "tags": [{"key": "team", "value": "net"}]}]
    }
    for record in [untagged, tagged] * 3:
        assert decide(compiled, record) == fresh(levels, record)
    assert [decide(compiled, r) for r in (untagged, tagged)] == ["Deny", "Allow"]
    assert compiled.by_caller == {}


def test_the_per_caller_memo_starts_again_for_other_facts():
    """The principal's tags come from the facts: one Compiled asked with two facts objects that tag the
    same caller differently gives each its own answer."""
    from netguard.policy.facts import OrgFacts, PrincipalTags

    levels = deny({"StringNotEquals": {"aws:PrincipalTag/team": "network"}})
    compiled = rp.compile_policies(levels)
    network = OrgFacts(principal_tags=PrincipalTags((("arn:aws:iam::*:role/*", {"team": "network"}),)))
    app = OrgFacts(principal_tags=PrincipalTags((("arn:aws:iam::*:role/*", {"team": "app"}),)))
    answers = [decide(compiled, GUARDED[0], facts) for facts in (network, network, network, app, app, network)]
    assert answers == ["Allow", "Allow", "Allow", "Deny", "Deny", "Allow"]


def _with_bad_tag(record: dict) -> dict:
    bad = at(record, "2026-11-02T03:00:00Z", eventName="CreateVpc")
    bad["requestParameters"] = {"tagSpecificationSet": {"items": [{"resourceType": "vpc", "tags": [{"key": 7}]}]}}
    return bad


@pytest.mark.parametrize("path", ["exempt caller", "statements read no key", "caller remembered"])
def test_a_record_with_a_malformed_tag_is_malformed_whatever_answers_its_decision(path):
    """A tag whose key is no string makes the record malformed even where its decision needs no key:
    an exempt caller, an action whose statements read nothing, a caller whose decision is remembered.
    A record's error never depends on what came before it."""
    from netguard.policy.cloudtrail import MalformedRecord
    from netguard.policy.facts import OrgFacts

    condition = None if path == "statements read no key" else {"StringNotLike": {"aws:PrincipalArn": "*/network/*"}}
    compiled = rp.compile_policies(deny(condition, action="ec2:CreateVpc"))
    good = create_vpc(GUARDED[0])
    facts = None
    if path == "exempt caller":
        facts = OrgFacts(management_account=good["userIdentity"]["accountId"])
    for _ in range(3):  # the memo learns the decision from good records first
        decide(compiled, good, facts)
    with pytest.raises(MalformedRecord, match="requestParameters tag"):
        rp.decide_record(compiled, _with_bad_tag(good), facts=facts)
    totals = rp.Replayer(compiled, facts=facts).records([good, _with_bad_tag(good)], "trail.json")
    assert [e.message for e in totals.errors if "record 1" in e.message], totals.errors
