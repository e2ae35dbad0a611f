"""`netguard policy validate` as strict as IAM Access Analyzer's policy validation for SCPs.

Access Analyzer's checks are named as in the IAM User Guide, "IAM policy validation check reference".
"""

from __future__ import annotations

import json

import pytest

from netguard.policy import validate
from netguard.policy.orgconfig import OrgConfig
from netguard.policy.validate import REFUSED, document_problems

ORG = OrgConfig(deploy_role="arn:aws:iam::*:role/netguard-deploy", break_glass="arn:aws:iam::*:role/break-glass/*")
EXEMPT = {"ArnNotLike": {"aws:PrincipalArn": [ORG.deploy_role, ORG.break_glass]}}


def _problems(*statements: dict, org: OrgConfig | None = None) -> list[validate.Problem]:
    return document_problems(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}), org=org)


def _deny(**fields) -> dict:
    return {"Effect": "Deny", "Action": "ec2:DeleteVpc", "Resource": "*", **fields}


def _refused(*statements: dict) -> list[tuple[int | None, str | None, str]]:
    return [(p.statement, p.sid, p.message) for p in _problems(*statements) if p.control == REFUSED]


def _one_refusal(statement: dict, *words: str) -> None:
    """The statement (placed second, after a sound one) is refused once, on itself, for the reason named."""
    found = _refused(_deny(Sid="Sound"), statement)
    assert len(found) == 1, found
    index, sid, message = found[0]
    assert (index, sid) == (1, statement.get("Sid"))
    assert all(word in message for word in words), message


# --- Resource and NotResource: `*` or an ARN (Invalid ARN prefix, Missing ARN field, Invalid partition) ---


def test_a_resource_that_is_no_arn_is_refused():
    _one_refusal(_deny(Sid="Bare", Resource="vpc/*"), "statement Bare", "'vpc/*'", "neither * nor an ARN")


def test_an_arn_with_fewer_than_six_fields_is_refused():
    _one_refusal(_deny(Sid="Short", Resource=["*", "arn:aws:s3:my-bucket"]), "'arn:aws:s3:my-bucket'", "4 of the 6")


def test_an_arn_in_an_unknown_partition_is_refused():
    _one_refusal(_deny(Sid="Partition", Resource="arn:amazon:s3:::my-bucket"), "unknown partition 'amazon'")


def test_a_not_resource_that_is_no_arn_is_refused():
    statement = {"Sid": "Not", "Effect": "Deny", "Action": "ec2:DeleteVpc", "NotResource": "my-bucket"}
    _one_refusal(statement, "NotResource 'my-bucket'")


@pytest.mark.parametrize("account", ["12345", "1234567890123", "my-account", "<ACCOUNT_ID>"])
def test_an_arn_account_that_is_not_twelve_digits_is_refused(account):
    # Access Analyzer, "Invalid ARN account": provide a 12-digit account ID.
    resource = f"arn:aws:iam::{account}:role/admin"
    _one_refusal(_deny(Sid="Account", Resource=resource), f"account {account!r}", "12-digit")


@pytest.mark.parametrize(
    "resource",
    [
        "*",
        "arn:aws:s3:::my-bucket/*",  # S3: no region, no account
        "arn:aws:iam::123456789012:role/admin",
        "arn:aws:iam::*:role/admin",
        "arn:aws:iam::1234567890??:role/admin",
        "arn:aws:iam::${aws:PrincipalAccount}:role/admin",  # a policy variable (its colon is not a field)
        "arn:aws:iam::aws:policy/AdministratorAccess",  # AWS managed policies live in account `aws`
        "arn:aws-cn:ec2:cn-north-1:123456789012:vpc/*",
        "arn:aws-us-gov:ec2:*:*:vpc/*",
        "arn:aws-iso-b:ec2:*:*:vpc/*",
        "arn:*:ec2:*:*:vpc/*",
        "arn:aws:logs:*:*:log-group:/aws/vpc/flow-logs*:log-stream:*",  # colons in the resource part
        "arn:aws:s3:::bucket/${aws:username}/*",
    ],
)
def test_what_access_analyzer_accepts_as_a_resource_stays_accepted(resource):
    assert _refused(_deny(Resource=resource), {"Effect": "Deny", "Action": "s3:*", "NotResource": resource}) == []


# --- condition keys (Invalid condition key format, Invalid global condition key, Invalid service) --------


def test_a_condition_key_without_a_service_prefix_is_refused():
    statement = _deny(Sid="NoPrefix", Condition={"NotIpAddress": {"SourceIp": "203.0.113.0/24"}})
    _one_refusal(statement, "'SourceIp'", "service:key")


def test_an_unknown_global_condition_key_is_refused():
    _one_refusal(_deny(Sid="Global", Condition={"StringEquals": {"aws:Foo": "bar"}}), "global", "'aws:Foo'")


def test_a_condition_key_of_an_unknown_service_is_refused():
    statement = _deny(Sid="Service", Condition={"StringEquals": {"ec3:Vpc": "vpc-1"}})
    _one_refusal(statement, "'ec3:Vpc'", "unknown service prefix 'ec3'")


@pytest.mark.parametrize(
    "key",
    [
        "aws:PrincipalArn",
        "AWS:principalarn",  # condition key names are not case-sensitive (IAM User Guide, "Condition")
        "aws:PrincipalTag/team",
        "aws:ResourceTag/Name",
        "aws:RequestTag/cost-center",
        "aws:SourceVpce",
        "aws:VpceOrgID",
        "aws:CalledViaAWSMCP",
        "ec2:ResourceTag/Name",  # a service's own keys: a known service prefix is enough
        "ec2:Vpc",
        "s3:x-amz-server-side-encryption",
        "glue:RoleAssumedBy",
        "identitystore:UserId",
    ],
)
def test_documented_and_service_condition_keys_stay_accepted(key):
    assert _refused(_deny(Condition={"StringEquals": {key: "x"}})) == []


def test_a_global_tag_key_needs_a_tag_after_the_slash():
    _one_refusal(_deny(Sid="Tag", Condition={"StringEquals": {"aws:PrincipalTag/": "x"}}), "'aws:PrincipalTag/'")


# --- condition values against their operator (Invalid condition data type, Invalid variable for operator)


@pytest.mark.parametrize(
    ("operator", "key", "value", "words"),
    [
        ("DateGreaterThan", "aws:CurrentTime", "yesterday", "not a date"),
        ("DateLessThanIfExists", "aws:CurrentTime", "2026-13-01T00:00:00Z", "not a date"),
        ("DateLessThan", "aws:TokenIssueTime", True, "not a date"),
        # Policy variables are for String and Arn operators only ("Invalid variable for operator").
        ("DateGreaterThan", "aws:CurrentTime", "${aws:TokenIssueTime}", "not a date"),
        ("NumericLessThan", "aws:MultiFactorAuthAge", "ten", "not a number"),
        ("ForAnyValue:NumericEquals", "ec2:RoleDelivery", ["2", "two"], "not a number"),
        ("IpAddress", "aws:SourceIp", "10.0.0.0/33", "not an IP address"),
        ("NotIpAddressIfExists", "aws:SourceIp", "corporate-network", "not an IP address"),
        ("Bool", "aws:SecureTransport", "yes", "not true or false"),
        ("Null", "aws:RequestTag/team", "maybe", "not true or false"),
    ],
)
def test_a_value_its_operator_cannot_compare_is_refused(operator, key, value, words):
    _one_refusal(_deny(Sid="Value", Condition={operator: {key: value}}), operator, key, words)


@pytest.mark.parametrize(
    ("operator", "key", "value"),
    [
        ("DateGreaterThan", "aws:CurrentTime", "2026-01-31T00:00:00Z"),
        ("DateGreaterThan", "aws:CurrentTime", "2026-01-31T00:00:00.000+01:00"),
        ("DateLessThan", "aws:CurrentTime", "2026-01-31"),
        ("DateLessThan", "aws:EpochTime", "1767139200"),  # epoch seconds
        ("DateLessThan", "aws:EpochTime", 1767139200),
        ("NumericLessThan", "aws:MultiFactorAuthAge", "3600"),
        ("NumericLessThan", "aws:MultiFactorAuthAge", 3600),
        ("NumericGreaterThanEquals", "ec2:RoleDelivery", "2.0"),
        ("IpAddress", "aws:SourceIp", ["203.0.113.0/24", "203.0.113.7", "2001:db8::/32"]),
        ("Bool", "aws:SecureTransport", "false"),
        ("Bool", "aws:SecureTransport", False),
        ("BoolIfExists", "aws:MultiFactorAuthPresent", "True"),
        ("Null", "aws:AssumedRoot", "true"),
        ("StringEquals", "aws:RequestedRegion", "${aws:PrincipalTag/region}"),  # variables: string operators
    ],
)
def test_values_of_the_operators_type_stay_accepted(operator, key, value):
    assert _refused(_deny(Condition={operator: {key: value}})) == []


@pytest.mark.parametrize("operator", ["Bool", "BoolIfExists"])
def test_one_boolean_key_with_both_true_and_false_is_refused(operator):
    # Access Analyzer, "Invalid condition multiple Boolean": use a single Boolean value.
    statement = _deny(Sid="Both", Condition={operator: {"aws:SecureTransport": ["true", False]}})
    _one_refusal(statement, operator, "aws:SecureTransport", "both true and false")


def test_every_problem_in_a_file_is_reported_on_its_statement():
    found = _refused(
        _deny(Sid="Sound"),
        _deny(Sid="Two", Resource="vpc/*", Condition={"StringEquals": {"SourceVpc": "vpc-1"}}),
        _deny(Condition={"DateGreaterThan": {"aws:Foo": "soon"}}),
    )
    assert [(index, sid) for index, sid, _ in found] == [(1, "Two"), (1, "Two"), (2, None), (2, None)]
    assert [message.split(":")[0] for *_, message in found] == ["statement Two"] * 2 + ["statement 2"] * 2
