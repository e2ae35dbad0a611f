"""Resource ARNs of fewer than six fields (`arn:aws:ec2:*`): what `netguard policy validate` says of them and
how the evaluator matches them must agree with AWS, and with each other (issue 16).

What AWS documents:
- IAM User Guide, "IAM JSON policy elements: Resource" (Using wildcards in resource ARNs): a `*` that is the
  last character of an ARN segment can expand to match beyond the colon boundaries. So when IAM evaluates a
  policy holding `arn:aws:ec2:*`, it covers every EC2 ARN.
- IAM User Guide, "IAM policy validation check reference" (formerly "Access Analyzer policy check
  reference"), "Error - Missing ARN field" (MISSING_ARN_FIELD, an ERROR): "Resource ARNs must include at
  least 6 fields ... arn:partition:service:region:account:resource". No exception for a trailing `*`.

So validate refuses a short form (NG-SCP-001), naming the statement and the value and the six-field form
to write instead, while the evaluator, the lockout guard and the unrestricted-resource test read a short
form that IAM already holds as IAM matches it. Each test below fails if one side drifts from the other.
"""

from __future__ import annotations

import json
import re

import pytest

from netguard.iam.actions import resource_is_unrestricted, resource_matches
from netguard.iam.conditions import RequestContext
from netguard.iam.evaluator import Request, statement_applies
from netguard.iam.statements import risky_statements
from netguard.policy.orgconfig import OrgConfig
from netguard.policy.validate import LOCKOUT, REFUSED, document_problems

ARNS = [
    "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-1",
    "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-1",
    "arn:aws:ec2:us-east-1:210987654321:vpc/vpc-2",
    "arn:aws:iam::123456789012:role/admin",
    "arn:aws:iam::123456789012:role/path/with:colon",
    "arn:aws:s3:::bucket/key",
    "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/vpc/flow-logs:log-stream:eni-1",
    "arn:aws-cn:ec2:cn-north-1:123456789012:vpc/vpc-3",
    "arn:aws:organizations::111111111111:policy/o-abc/service_control_policy/p-1",
]
# Short forms ending in `*`, each with the six-field form Access Analyzer accepts in its place.
SHORT_FORMS = {
    "arn:aws:ec2:*": "arn:aws:ec2:*:*:*",
    "arn:aws:ec2:us-east-1:*": "arn:aws:ec2:us-east-1:*:*",
    "arn:aws:ec2:us-*": "arn:aws:ec2:us-*:*:*",
    "arn:aws:iam::*": "arn:aws:iam::*:*",
    "arn:aws:s3:*": "arn:aws:s3:*:*:*",
    "arn:aws:logs:*": "arn:aws:logs:*:*:*",
    "arn:*": "arn:*:*:*:*:*",
}


def _refused(statement: dict) -> list[tuple[int | None, str | None, str]]:
    document = {"Version": "2012-10-17", "Statement": [statement]}
    return [(p.statement, p.sid, p.message) for p in document_problems(json.dumps(document)) if p.control == REFUSED]


def _deny(element: str, value: str, sid: str = "Short") -> dict:
    return {"Sid": sid, "Effect": "Deny", "Action": "ec2:DeleteVpc", element: value}


@pytest.mark.parametrize("element", ["Resource", "NotResource"])
@pytest.mark.parametrize(("short", "full"), SHORT_FORMS.items())
def test_validate_refuses_a_short_form_naming_the_statement_the_value_and_the_six_field_form(element, short, full):
    """IAM policy validation check reference, "Error - Missing ARN field": Access Analyzer refuses a Resource
    ARN of fewer than six fields, trailing `*` or not. The refusal names the statement (Sid), the value, the
    check, and the six-field form to write."""
    found = _refused(_deny(element, short))
    assert len(found) == 1, found
    index, sid, message = found[0]
    assert (index, sid) == (0, "Short")
    assert message.startswith(f"statement Short: {element} {short!r} has ")
    assert "of the 6 ARN fields" in message and "Missing ARN field" in message
    assert message.endswith(f"write {full!r}")
    assert _refused(_deny(element, full)) == []  # what it says to write is accepted


@pytest.mark.parametrize(("short", "full"), SHORT_FORMS.items())
def test_the_evaluator_matches_a_short_form_exactly_as_its_six_field_form(short, full):
    """IAM JSON policy elements: Resource, "Using wildcards in resource ARNs": a `*` that is the last
    character of a segment can expand beyond the colon boundaries. So a short form held in a policy matches
    what the six-field form validate asks for matches: nothing is lost or gained by the rewrite."""
    for arn in ARNS:
        assert resource_matches(short, arn) is resource_matches(full, arn), (short, full, arn)
    assert any(resource_matches(short, arn) for arn in ARNS)


def test_a_short_form_matches_across_colons_in_statements():
    """IAM JSON policy elements: Resource: `arn:aws:ec2:*` covers an EC2 VPC's full ARN, region, account and
    resource part; the same pattern in NotResource leaves that VPC out."""
    context = RequestContext.build({})
    vpc = Request("ec2:DeleteVpc", context, ("arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-1",))
    role = Request("ec2:DeleteVpc", context, ("arn:aws:iam::123456789012:role/admin",))
    assert statement_applies(_deny("Resource", "arn:aws:ec2:*"), vpc)[0] is True
    assert statement_applies(_deny("Resource", "arn:aws:ec2:*"), role)[0] is False
    assert statement_applies(_deny("NotResource", "arn:aws:ec2:*"), vpc)[0] is False
    assert statement_applies(_deny("NotResource", "arn:aws:ec2:*"), role)[0] is True


@pytest.mark.parametrize("short", ["arn:aws:s3:my-bucket", "arn:aws:ec2:us-east-1", "arn:aws:iam::123456789012"])
def test_a_short_form_without_a_trailing_wildcard_is_refused_and_matches_nothing(short):
    """IAM policy validation check reference, "Error - Missing ARN field"; IAM JSON policy elements: Resource:
    with no trailing `*` nothing can cover the missing fields, so there is no six-field form to offer."""
    [(_index, _sid, message)] = _refused(_deny("Resource", short))
    assert f"Resource {short!r} has" in message and "write" not in message
    assert not any(resource_matches(short, arn) for arn in ARNS)


def test_a_variable_in_a_short_form_gets_no_rewrite_outside_the_resource_part():
    """IAM policy elements: Variables and tags: variables go in the resource part of an ARN; a short form
    holding one is still refused (Missing ARN field) but no six-field form is offered."""
    [(_index, _sid, message)] = _refused(_deny("Resource", "arn:aws:ec2:${aws:PrincipalTag/region}*"))
    assert "Missing ARN field" in message and "write" not in message


@pytest.mark.parametrize(("short", "full"), SHORT_FORMS.items())
def test_a_short_form_is_unrestricted_exactly_when_its_six_field_form_is(short, full):
    """IAM JSON policy elements: Resource: the trailing `*` of `arn:aws:ec2:*` covers the resource part, so an
    Allow on it with no Condition grants every resource of the service, as `arn:aws:ec2:*:*:*` does."""
    assert resource_is_unrestricted(short) is resource_is_unrestricted(full) is True


def test_an_allow_on_a_short_form_is_a_risky_statement():
    """An identity policy Allow on `arn:aws:ec2:*` with no Condition grants ec2:DeleteVpc on every VPC, as
    IAM evaluates it (IAM JSON policy elements: Resource); it must be flagged like Resource `*`."""
    statement = {"Effect": "Allow", "Action": "ec2:*", "Resource": "arn:aws:ec2:*"}
    [hit] = risky_statements({"Statement": [statement]}, ["ec2:DeleteVpc"])
    assert hit.actions == ("ec2:DeleteVpc",)
    pinned = {**statement, "Resource": "arn:aws:ec2:us-east-1:123456789012:vpc/vpc-1"}
    assert risky_statements({"Statement": [pinned]}, ["ec2:DeleteVpc"]) == []


def test_the_lockout_guard_reads_a_short_form_as_iam_would():
    """A Deny of organizations:* on `arn:aws:organizations:*` is refused (Missing ARN field, IAM policy
    validation check reference) and, should it reach AWS anyway, still denies every SCP (IAM JSON policy
    elements: Resource), so the lockout guard flags it too. Without the trailing `*` it reaches nothing."""
    org = OrgConfig(deploy_role="arn:aws:iam::*:role/netguard-deploy", break_glass="arn:aws:iam::*:role/break-glass")
    for value, locks_out in (("arn:aws:organizations:*", True), ("arn:aws:organizations", False)):
        statement = {"Sid": "Orgs", "Effect": "Deny", "Action": "organizations:*", "Resource": value}
        document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
        problems = document_problems(document, org=org)
        assert [p.sid for p in problems if p.control == REFUSED] == ["Orgs"]
        assert any(p.control == LOCKOUT for p in problems) is locks_out, [p.message for p in problems]


def test_the_docs_cite_the_pages_and_say_the_evaluator_is_lenient():
    """docs/policy-validate.md names both AWS pages and says that the evaluator still matches short forms."""
    from pathlib import Path

    text = Path(__file__).resolve().parents[1].joinpath("docs", "policy-validate.md").read_text("utf-8")
    assert '"IAM JSON policy elements: Resource"' in text
    assert "Missing ARN field" in text and "IAM policy validation check reference" in text
    assert re.search(r"evaluat\w+[^.]*across\s+colons", text), "the docs must say the evaluator matches leniently"
