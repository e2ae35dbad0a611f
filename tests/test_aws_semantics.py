"""Where netguard's evaluation must answer as AWS answers (issue 16's measured disagreements)."""

from __future__ import annotations

import pytest

from netguard.iam.actions import resource_matches
from netguard.iam.conditions import RequestContext, evaluate_condition
from netguard.policy.cloudtrail import parse_record

MANAGEMENT = "111111111111"
MEMBER = "222222222222"


def _record(caller_account: str, target_account: str) -> dict:
    return {
        "eventVersion": "1.08",
        "eventID": "e1",
        "eventTime": "2026-11-02T12:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "DeleteDhcpOptions",
        "awsRegion": "eu-west-1",
        "recipientAccountId": target_account,
        "requestParameters": {"dhcpOptionsId": "dopt-1"},
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:alice",
            "arn": f"arn:aws:sts::{caller_account}:assumed-role/Admin/alice",
            "accountId": caller_account,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": f"arn:aws:iam::{caller_account}:role/Admin",
                    "accountId": caller_account,
                }
            },
        },
    }


def test_scps_bind_the_callers_account_not_the_account_acted_on():
    member_acting_on_management = parse_record(_record(MEMBER, MANAGEMENT), MANAGEMENT)
    management_acting_on_member = parse_record(_record(MANAGEMENT, MEMBER), MANAGEMENT)
    assert member_acting_on_management.scp_exempt_reason is None
    assert management_acting_on_member.scp_exempt_reason == "SCPs do not restrict the management account"


@pytest.mark.parametrize(
    "operator",
    [
        "ForAnyValue:StringNotLike",
        "ForAnyValue:StringLikeIfExists",
        "ForAnyValue:StringNotEquals",
        "ForAnyValue:StringEquals",
    ],
)
def test_for_any_value_over_no_values_is_false(operator):
    absent = RequestContext.build({}, absent=["aws:tagkeys"])
    empty = RequestContext.build({"aws:TagKeys": []})
    for context in (absent, empty):
        assert evaluate_condition({operator: {"aws:TagKeys": "team"}}, context).truth is False


def test_for_all_values_over_no_values_is_true():
    absent = RequestContext.build({}, absent=["aws:tagkeys"])
    assert evaluate_condition({"ForAllValues:StringEquals": {"aws:TagKeys": "team"}}, absent).truth is True


@pytest.mark.parametrize(
    ("pattern", "arn", "expected"),
    [
        ("arn:aws:ec2:*", "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-1", True),
        ("arn:aws:ec2:eu-west-1:*", "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-1", True),
        ("arn:aws:ec2:us-east-1:*", "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-1", False),
        ("arn:aws:s3:*", "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-1", False),
        ("arn:aws:ec2", "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-1", False),
        ("arn:aws:ec2:*:*:vpc/*", "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-1", True),
        ("arn:aws:ec2:*:*:subnet/*", "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-1", False),
    ],
)
def test_a_resource_pattern_with_a_trailing_wildcard_matches_across_colons(pattern, arn, expected):
    assert resource_matches(pattern, arn) is expected


def test_a_call_through_a_vpc_endpoint_has_no_source_ip_but_the_endpoint_and_private_address():
    through = {**_record(MEMBER, MEMBER), "sourceIPAddress": "10.0.1.25", "vpcEndpointId": "vpce-0abc"}
    context = parse_record(through).request.context
    assert context.lookup("aws:SourceIp") == ()
    assert context.lookup("aws:SourceVpce") == ("vpce-0abc",)
    assert context.lookup("aws:VpcSourceIp") == ("10.0.1.25",)
    direct = parse_record({**_record(MEMBER, MEMBER), "sourceIPAddress": "203.0.113.7"}).request.context
    assert direct.lookup("aws:SourceIp") == ("203.0.113.7",)
    assert direct.lookup("aws:SourceVpce") == () and direct.lookup("aws:VpcSourceIp") == ()


def test_a_federated_users_principal_arn_is_the_federated_user():
    record = _record(MEMBER, MEMBER)
    record["userIdentity"] = {
        "type": "FederatedUser",
        "principalId": f"{MEMBER}:bob",
        "arn": f"arn:aws:sts::{MEMBER}:federated-user/bob",
        "accountId": MEMBER,
        "sessionContext": {
            "sessionIssuer": {"type": "IAMUser", "arn": f"arn:aws:iam::{MEMBER}:user/broker", "accountId": MEMBER}
        },
    }
    parsed = parse_record(record)
    assert parsed.request.context.lookup("aws:PrincipalArn") == (f"arn:aws:sts::{MEMBER}:federated-user/bob",)
