"""`netguard policy validate` as strict as IAM Access Analyzer's policy validation for SCPs, and the
lockout guard that flags only a Deny that can stop the deploy role or break-glass managing SCPs.

Access Analyzer's checks are named as in the IAM User Guide, "IAM policy validation check reference".
"""

from __future__ import annotations

import json

import pytest

from netguard.iam.actions import action_matches
from netguard.policy import validate
from netguard.policy.orgconfig import OrgConfig
from netguard.policy.validate import LOCKOUT, REFUSED, document_problems

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


# --- the lockout guard -------------------------------------------------------------------------------------


def _lockouts(*statements: dict, org: OrgConfig | None = None) -> list[tuple[int | None, str]]:
    return [(p.statement, p.message) for p in _problems(*statements, org=org) if p.control == LOCKOUT]


@pytest.mark.parametrize("org", [None, ORG])
def test_a_deny_on_leaving_the_organization_passes(org):
    # AWS publishes this Deny as an example SCP; the former guard flagged it for want of an exemption.
    assert _lockouts(_deny(Action="organizations:LeaveOrganization"), org=org) == []


@pytest.mark.parametrize("org", [None, ORG])
def test_a_deny_on_network_deletes_passes_without_an_exemption(org):
    assert _lockouts(_deny(Action=["ec2:DeleteVpc", "ec2:DeleteSubnet"]), org=org) == []


def test_a_deny_of_organizations_without_an_exemption_is_flagged():
    found = _lockouts(_deny(Action="organizations:*"))
    assert len(found) == 1 and found[0][0] == 0
    assert "organizations:CreatePolicy" in found[0][1] and "lockout guard" in found[0][1]
    flagged = _lockouts(_deny(Sid="Orgs", Action="organizations:*"), org=ORG)
    assert [message.split(" (")[0] for _, message in flagged] == [
        "Deny statement Orgs can deny the deploy role",
        "Deny statement Orgs can deny the break-glass",
    ]


@pytest.mark.parametrize("org", [None, ORG])
def test_a_deny_of_everything_but_some_actions_that_still_covers_detach_policy_is_flagged(org):
    # NotAction with Deny: every action except those listed (IAM User Guide, "NotAction").
    statement = _deny(NotAction=["organizations:Describe*", "organizations:List*", "ec2:*"])
    del statement["Action"]
    assert len(_lockouts(statement, org=org)) == (1 if org is None else 2)
    reached = validate.lockout_reach(statement, [ORG.deploy_role, ORG.break_glass])
    assert "organizations:DetachPolicy" in reached and "organizations:DescribePolicy" not in reached
    assert _lockouts({**statement, "NotAction": ["organizations:*", "iam:*", "sts:*", "ec2:*"]}, org=org) == []


def test_a_deny_of_everything_that_exempts_both_roles_passes():
    statement = _deny(Action="*", Condition=EXEMPT)
    assert _lockouts(statement, org=ORG) == []
    assert _lockouts(statement) == []


def test_an_exemption_of_the_deploy_role_only_still_flags_the_break_glass():
    only_deploy = {"ArnNotLike": {"aws:PrincipalArn": ORG.deploy_role}}
    found = _lockouts(_deny(Sid="Half", Action="*", Condition=only_deploy), org=ORG)
    assert [message.split(" (")[0] for _, message in found] == ["Deny statement Half can deny the break-glass"]


def test_iam_actions_on_other_roles_pass_and_on_the_deploy_role_are_flagged():
    other = _deny(Action="iam:*", Resource="arn:aws:iam::*:role/other-*")
    assert _lockouts(other, org=ORG) == []
    ours = _deny(Action="iam:*", Resource="arn:aws:iam::*:role/netguard-*")
    found = _lockouts(ours, org=ORG)
    assert len(found) == 2 and all("iam:DeleteRole" in message for _, message in found)
    # Reading or tagging a role takes nothing away from it.
    assert _lockouts(_deny(Action=["iam:GetRole", "iam:TagRole"], Resource="arn:aws:iam::*:role/*"), org=ORG) == []


def test_assuming_the_break_glass_role_is_flagged():
    found = _lockouts(_deny(Action="sts:AssumeRole", Resource="arn:aws:iam::*:role/break-glass/admin"), org=ORG)
    assert found and all("sts:AssumeRole" in message for _, message in found)
    assert _lockouts(_deny(Action="sts:AssumeRole", Resource="arn:aws:iam::*:role/app-*"), org=ORG) == []


def test_a_deny_on_policies_it_cannot_reach_passes():
    # Organizations resource ARNs (Service Authorization Reference, "AWS Organizations"): a tag policy is
    # policy/o-.../tag_policy/p-...; an SCP is .../service_control_policy/....
    tag_policies = _deny(Action="organizations:*Policy", Resource="arn:aws:organizations::*:policy/*/tag_policy/*")
    assert _lockouts(tag_policies) == []
    scps = {**tag_policies, "Resource": "arn:aws:organizations::*:policy/*/service_control_policy/*"}
    assert _lockouts(scps)
    # ListPolicies takes no resource: only `*` reaches it.
    assert _lockouts(_deny(Action="organizations:ListPolicies", Resource="arn:aws:organizations::*:*")) == []


def test_a_condition_that_may_hold_for_the_role_is_a_lockout():
    # Unknown for the deploy role (the request's Region is not known in advance): flagged.
    regions = _deny(Action="*", Condition={"StringNotEquals": {"aws:RequestedRegion": ["eu-west-1"]}})
    assert len(_lockouts(regions, org=ORG)) == 2
    assert len(_lockouts(regions)) == 1


def test_a_deny_limited_to_the_root_user_passes():
    # IAM User Guide, aws:PrincipalArn: the root user's ARN is arn:aws:iam::<account>:root, never a role.
    root_only = _deny(Action="*", Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"}})
    assert _lockouts(root_only) == []
    assert _lockouts(root_only, org=ORG) == []
    every_role = _deny(Action="*", Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}})
    assert _lockouts(every_role) and _lockouts(every_role, org=ORG)


def test_the_actions_the_guard_protects_are_actions_iam_knows():
    for action in (*validate.SCP_MANAGEMENT_ACTIONS, *validate.ROLE_ACTIONS):
        assert validate.unknown_action(action) is None, action
    for action in ("CreatePolicy", "UpdatePolicy", "DeletePolicy", "AttachPolicy", "DetachPolicy"):
        assert any(action_matches(a, f"organizations:{action}") for a in validate.SCP_MANAGEMENT_ACTIONS)
