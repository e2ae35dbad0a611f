"""Property-based tests: generated policies, templates and records never crash the evaluator, the
CloudTrail parser or the rules, and give the same answer twice."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netguard.cfn import rules
from netguard.cfn.template import Template
from netguard.config import DEFAULT_CONFIG
from netguard.iam.conditions import RequestContext
from netguard.iam.evaluator import Policy, Request, evaluate_scps
from netguard.policy.cloudtrail import MalformedRecord, parse_record

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
actions = st.sampled_from(["ec2:DeleteVpc", "ec2:*", "*", "EC2:delete*", "s3:GetObject", "ec2:Create?pc", ""]) | text
values = st.recursive(
    st.none() | st.booleans() | st.integers() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=12,
)
operators = st.sampled_from(
    [
        "StringEquals",
        "StringNotLike",
        "ArnNotLike",
        "ArnLike",
        "IpAddress",
        "NotIpAddress",
        "Null",
        "Bool",
        "ForAnyValue:StringLike",
        "ForAllValues:StringEquals",
        "StringEqualsIfExists",
        "NumericLessThan",
        "DateGreaterThan",
        "Bogus",
    ]
)
condition_keys = st.sampled_from(["aws:PrincipalArn", "aws:SourceIp", "aws:PrincipalTag/team", "aws:TagKeys"]) | text
statements = st.fixed_dictionaries(
    {"Effect": st.sampled_from(["Allow", "Deny", "Maybe"]), "Action": actions | st.lists(actions, max_size=3)},
    optional={
        "NotAction": st.lists(actions, max_size=2),
        "Resource": st.sampled_from(["*", "arn:aws:ec2:*:*:vpc/*", "arn:aws:ec2:*:*:vpc/${aws:username}"]) | text,
        "Condition": st.dictionaries(operators, st.dictionaries(condition_keys, values, max_size=2), max_size=2),
        "Sid": text,
    },
)
contexts = st.dictionaries(condition_keys, st.lists(text, max_size=2) | text, max_size=3)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(statements, max_size=3), min_size=1, max_size=3),
    actions,
    contexts,
    st.none() | st.lists(text, max_size=2),
)
def test_evaluator_never_crashes_and_is_deterministic(levels, action, context, resources):
    policies = [[Policy(f"p{i}", {"Statement": level})] for i, level in enumerate(levels)]
    request = Request(action, RequestContext.build(context), tuple(resources) if resources is not None else None)
    first = evaluate_scps(policies, request)
    assert first.decision in ("Allow", "Deny", "Indeterminate")
    assert evaluate_scps(policies, request) == first


identities = st.fixed_dictionaries(
    {"type": st.sampled_from(["AssumedRole", "IAMUser", "Root", "AWSService", "FederatedUser", "Unknown"]) | values},
    optional={
        "arn": text | values,
        "accountId": text | values,
        "sessionContext": values,
        "invokedBy": text | values,
        "principalId": text | values,
    },
)
records = st.fixed_dictionaries(
    {
        "eventName": text | st.integers(),
        "eventSource": text | st.sampled_from(["ec2.amazonaws.com"]),
        "userIdentity": identities | values,
    },
    optional={
        "requestParameters": values,
        "awsRegion": text | values,  # any field may hold any JSON type: a list as recipientAccountId...
        "sourceIPAddress": text | values,
        "recipientAccountId": text | values,
        "eventID": text | values,
        "eventTime": text | values,
    },
)


@settings(max_examples=300)
@given(records)
def test_cloudtrail_parser_returns_a_request_or_a_clear_error(record):
    try:
        first = parse_record(record)
    except MalformedRecord as exc:
        assert str(exc)  # reported by simulate and replay as an error for that record
        return
    second = parse_record(json.loads(json.dumps(record)))
    assert first.request == second.request and first.scp_exempt_reason == second.scp_exempt_reason


resource_types = st.sampled_from(
    [
        "AWS::EC2::VPC",
        "AWS::EC2::FlowLog",
        "AWS::EC2::EIP",
        "AWS::IAM::Policy",
        "AWS::EC2::Route",
        "AWS::EC2::VPCPeeringConnection",
        "AWS::EC2::DHCPOptions",
        "AWS::EC2::VPCDHCPOptionsAssociation",
        "AWS::EC2::NatGateway",
    ]
)
intrinsics = st.recursive(
    values,
    lambda inner: st.one_of(
        st.builds(lambda t: {"Ref": t}, st.sampled_from(["A", "B", "P", "AWS::NoValue"]) | text),
        st.builds(lambda t, a: {"Fn::GetAtt": [t, a]}, st.sampled_from(["A", "B"]), text),
        st.builds(lambda c, a, b: {"Fn::If": [c, a, b]}, st.sampled_from(["C", "Missing"]), inner, inner),
        st.builds(lambda s: {"Fn::Sub": s}, text),
        st.dictionaries(
            st.sampled_from(
                [
                    "ResourceId",
                    "TrafficType",
                    "PolicyDocument",
                    "Statement",
                    "Action",
                    "Resource",
                    "DestinationCidrBlock",
                    "VpcPeeringConnectionId",
                    "DomainNameServers",
                    "AllocationId",
                    "PeerOwnerId",
                    "Condition",
                ]
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=20,
)
templates = st.fixed_dictionaries(
    {
        "Parameters": st.just({"P": {"Type": "String", "AllowedValues": ["a", "b"]}}),
        "Conditions": st.fixed_dictionaries({"C": st.just({"Fn::Equals": [{"Ref": "P"}, "a"]}) | intrinsics}),
        "Resources": st.dictionaries(
            st.sampled_from(["A", "B", "D", "E"]),
            st.fixed_dictionaries(
                {"Type": resource_types},
                optional={
                    "Properties": st.dictionaries(text, intrinsics, max_size=3) | intrinsics,
                    "Condition": st.sampled_from(["C", "Missing"]),
                },
            ),
            max_size=4,
        ),
    }
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(templates)
def test_rules_never_crash_on_generated_templates_and_are_deterministic(data):
    first = rules.evaluate(Template(data), DEFAULT_CONFIG)
    assert rules.evaluate(Template(json.loads(json.dumps(data))), DEFAULT_CONFIG) == first
