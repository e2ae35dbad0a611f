"""The request context from every CloudTrail field that carries a key (issue 16: 4,576 Indeterminates
where the record held the key). Each case evaluates a one-statement SCP the way AWS would and
expects a definite answer; the IAM User Guide page is named where the rule is subtle."""

from __future__ import annotations

import copy

import pytest

from netguard.errors import NetguardError
from netguard.iam.evaluator import DENY, FULL_AWS_ACCESS, INDETERMINATE, Policy, evaluate_scps
from netguard.policy.cloudtrail import parse_record
from netguard.policy.facts import OrgFacts, PrincipalTags, load_principal_tags

ACCOUNT = "123456789012"
ALLOW_ALL = Policy("FullAWSAccess", FULL_AWS_ACCESS)


def record(event_name: str = "DeleteDhcpOptions", params: dict | None = None, **fields) -> dict:
    base = {
        "eventVersion": "1.09",
        "eventID": "e1",
        "eventTime": "2026-03-01T10:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": event_name,
        "awsRegion": "eu-west-1",
        "recipientAccountId": ACCOUNT,
        "sourceIPAddress": "203.0.113.9",
        "requestParameters": params if params is not None else {"dhcpOptionsId": "dopt-0a1b2c3d"},
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:alice",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/Dev/alice",
            "accountId": ACCOUNT,
            "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{ACCOUNT}:role/Dev"},
                "attributes": {"creationDate": "2026-03-01T09:00:00Z", "mfaAuthenticated": "false"},
            },
        },
    }
    base.update(fields)
    return base


def decide(event: dict, condition: dict | None = None, resource: str = "*", facts: OrgFacts | None = None) -> str:
    statement = {"Effect": "Deny", "Action": "*", "Resource": resource}
    if condition:
        statement["Condition"] = condition
    deny = Policy("guardrail", {"Version": "2012-10-17", "Statement": [statement]})
    parsed = parse_record(event, facts=facts)
    return evaluate_scps([[ALLOW_ALL, deny]], parsed.request).decision


# --- eventTime: aws:CurrentTime and aws:EpochTime --------------------------------------------------


def test_date_conditions_are_evaluated_against_the_event_time():
    before = {"DateLessThan": {"aws:CurrentTime": "2026-06-01T00:00:00Z"}}
    after = {"DateGreaterThan": {"aws:CurrentTime": "2026-06-01T00:00:00Z"}}
    assert decide(record(), before) == DENY
    assert decide(record(), after) == "Allow"
    assert decide(record(), {"NumericLessThan": {"aws:EpochTime": "1772359201"}}) == DENY
    assert decide(record(), {"DateLessThan": {"aws:EpochTime": "1772359199"}}) == "Allow"


def test_a_record_without_event_time_leaves_the_time_unknown():
    event = record()
    del event["eventTime"]
    assert decide(event, {"DateLessThan": {"aws:CurrentTime": "2026-06-01T00:00:00Z"}}) == INDETERMINATE


# --- resource ARNs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_name", "params", "resource"),
    [
        # Service Authorization Reference, "Actions, resources, and condition keys for Amazon EC2":
        # CreateVpc is authorized on vpc/*, AllocateAddress on elastic-ip/*.
        ("CreateVpc", {"cidrBlock": "10.0.0.0/16"}, f"arn:aws:ec2:eu-west-1:{ACCOUNT}:vpc/*"),
        ("AllocateAddress", {"domain": "vpc"}, "arn:aws:ec2:*:*:elastic-ip/*"),
        (
            "CreateTags",
            {"resourcesSet": {"items": [{"resourceId": "vpc-0a1b2c3d"}]}, "tagSet": {"items": []}},
            "arn:aws:ec2:*:*:vpc/vpc-0a1b2c3d",
        ),
        ("AssociateDhcpOptions", {"dhcpOptionsId": "dopt-0a1b2c3d", "vpcId": "vpc-1234abcd"}, "arn:*:ec2:*:*:vpc/*"),
        (
            "DeleteFlowLogs",
            {"DeleteFlowLogsRequest": {"FlowLogId": {"content": "fl-0a1b2c3d", "tag": 1}}},
            "arn:aws:ec2:*:*:vpc-flow-log/*",
        ),
    ],
)
def test_the_resource_an_action_is_authorized_on_comes_from_the_record(event_name, params, resource):
    assert decide(record(event_name, params), resource=resource) == DENY
    assert decide(record(event_name, params), resource="arn:aws:ec2:*:*:transit-gateway/*") == "Allow"


def test_a_peering_request_names_the_accepter_vpc_in_its_own_account_and_region():
    params = {"vpcId": "vpc-1234abcd", "peerVpcId": "vpc-9999abcd", "peerOwnerId": "444455556666"}
    params["peerRegion"] = "us-east-1"
    event = record("CreateVpcPeeringConnection", params)
    assert decide(event, resource="arn:aws:ec2:us-east-1:444455556666:vpc/vpc-9999abcd") == DENY
    assert decide(event, resource="arn:aws:ec2:eu-west-1:444455556666:vpc/*") == "Allow"


def test_a_tag_value_that_looks_like_an_id_is_not_a_resource():
    params = {"resourcesSet": {"items": [{"resourceId": "subnet-1234abcd"}]}}
    params["tagSet"] = {"items": [{"key": "Name", "value": "vpc-main"}]}
    assert decide(record("CreateTags", params), resource="arn:aws:ec2:*:*:vpc/*") == "Allow"


def test_an_action_whose_resource_the_record_cannot_name_stays_indeterminate():
    # DisassociateAddress is authorized on elastic-ip/ALLOCATION-ID; the record holds only the association.
    event = record("DisassociateAddress", {"associationId": "eipassoc-0a1b2c3d"})
    assert decide(event, resource="arn:aws:ec2:*:*:elastic-ip/*") == INDETERMINATE
    assert decide(event) == DENY


# --- invokedBy: aws:ViaAWSService and aws:CalledVia -------------------------------------------------


def test_a_call_made_by_cloudformation_for_the_caller_has_called_via():
    event = record(sourceIPAddress="cloudformation.amazonaws.com")
    event["userIdentity"]["invokedBy"] = "cloudformation.amazonaws.com"
    via_cfn = {"ForAnyValue:StringEquals": {"aws:CalledVia": "cloudformation.amazonaws.com"}}
    assert decide(event, via_cfn) == DENY
    assert decide(event, {"StringEquals": {"aws:CalledViaFirst": "athena.amazonaws.com"}}) == "Allow"
    assert decide(event, {"Bool": {"aws:ViaAWSService": "false"}}) == "Allow"
    # A direct call has no CalledVia keys at all (IAM User Guide, aws:CalledVia availability).
    assert decide(record(), via_cfn) == "Allow"
    assert decide(record(), {"Null": {"aws:CalledVia": "true"}}) == DENY


# --- tlsDetails: aws:SecureTransport -----------------------------------------------------------------


def test_secure_transport_from_tls_details():
    tls = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256"}
    condition = {"Bool": {"aws:SecureTransport": "false"}}
    assert decide(record(tlsDetails=tls), condition) == "Allow"
    assert decide(record(), condition) == INDETERMINATE  # older records have no tlsDetails


# --- sessionContext.attributes: token issue time and MFA ---------------------------------------------


def test_token_issue_time_and_mfa_come_from_the_session_attributes():
    assert decide(record(), {"DateLessThan": {"aws:TokenIssueTime": "2026-02-01T00:00:00Z"}}) == "Allow"
    assert decide(record(), {"Bool": {"aws:MultiFactorAuthPresent": "false"}}) == DENY
    event = record()
    event["userIdentity"]["sessionContext"]["attributes"].update(
        {"mfaAuthenticated": "true", "creationDate": "20260301T093000Z"}
    )
    assert decide(event, {"NumericGreaterThan": {"aws:MultiFactorAuthAge": "3600"}}) == "Allow"
    assert decide(event, {"NumericLessThan": {"aws:MultiFactorAuthAge": "1801"}}) == DENY


def test_long_term_access_keys_carry_no_mfa_or_token_keys():
    # IAM User Guide, aws:MultiFactorAuthPresent: not present for requests signed with long-term keys,
    # so BoolIfExists false is true for them and Null is true.
    event = record()
    event["userIdentity"] = {
        "type": "IAMUser",
        "principalId": "AIDAEXAMPLE",
        "arn": f"arn:aws:iam::{ACCOUNT}:user/ci",
        "accountId": ACCOUNT,
        "accessKeyId": "AKIAEXAMPLE",
        "userName": "ci",
    }
    assert decide(event, {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}) == DENY
    assert decide(event, {"Null": {"aws:TokenIssueTime": "true"}}) == DENY


# --- AssumedRoot -------------------------------------------------------------------------------------


def test_assumed_root_is_true_only_for_a_privileged_root_session():
    event = record()
    event["userIdentity"] = {
        "type": "Root",
        "principalId": ACCOUNT,
        "arn": f"arn:aws:iam::{ACCOUNT}:root",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLE",
        "sessionContext": {"attributes": {"creationDate": "2026-03-01T09:55:00Z", "mfaAuthenticated": "false"}},
    }
    condition = {"Bool": {"aws:AssumedRoot": "true"}}
    assert decide(event, condition) == DENY
    assert decide(record(), condition) == "Allow"


# --- request tags ------------------------------------------------------------------------------------


def test_request_tags_from_tag_specifications_and_from_create_tags():
    spec = {"items": [{"resourceType": "vpc", "tags": [{"key": "team", "value": "net"}]}]}
    created = record("CreateVpc", {"cidrBlock": "10.0.0.0/16", "tagSpecificationSet": spec})
    assert decide(created, {"StringEquals": {"aws:RequestTag/team": "net"}}) == DENY
    assert decide(created, {"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "owner"]}}) == DENY
    tagged = record(
        "CreateTags",
        {
            "resourcesSet": {"items": [{"resourceId": "vpc-0a1b2c3d"}]},
            "tagSet": {"items": [{"key": "owner", "value": "platform"}]},
        },
    )
    assert decide(tagged, {"StringNotEquals": {"aws:RequestTag/owner": "platform"}}) == "Allow"
    assert decide(tagged, {"Null": {"aws:RequestTag/team": "true"}}) == DENY


# --- facts the user supplies: principal tags and the organization id -------------------------------

EXEMPT_BY_TAG = {"StringNotEquals": {"aws:PrincipalTag/netguard-exempt": "true"}}


def test_principal_tags_are_unknown_without_a_tags_file():
    assert decide(record(), EXEMPT_BY_TAG) == INDETERMINATE


def test_a_tags_file_makes_tag_exemptions_definite(tmp_path):
    path = tmp_path / "tags.yaml"
    path.write_text(
        "principals:\n"
        "  - arn: arn:aws:iam::*:role/network/*\n"
        "    tags: {netguard-exempt: 'true'}\n"
        "  - arn: arn:aws:iam::*:role/Dev\n"
        "    tags: {team: app}\n",
        encoding="utf-8",
    )
    facts = OrgFacts(principal_tags=load_principal_tags(path))
    assert decide(record(), EXEMPT_BY_TAG, facts=facts) == DENY  # Dev is listed without the tag
    admin = copy.deepcopy(record())
    admin["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = f"arn:aws:iam::{ACCOUNT}:role/network/Admin"
    assert decide(admin, EXEMPT_BY_TAG, facts=facts) == "Allow"
    stranger = copy.deepcopy(record())
    stranger["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = f"arn:aws:iam::{ACCOUNT}:role/Other"
    assert decide(stranger, EXEMPT_BY_TAG, facts=facts) == INDETERMINATE
    untagged = OrgFacts(principal_tags=PrincipalTags(facts.principal_tags.entries, unlisted_untagged=True))
    assert decide(stranger, EXEMPT_BY_TAG, facts=untagged) == DENY


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("principals: [{arn: 'role/x', tags: {}}]\n", "principals/0/arn"),
        ("principals: []\nunlisted: maybe\n", "unlisted"),
        ("principals: [\n", "invalid YAML"),
    ],
)
def test_a_bad_tags_file_is_an_error_naming_it(tmp_path, text, reason):
    path = tmp_path / "tags.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(NetguardError) as caught:
        load_principal_tags(path)
    assert str(path) in str(caught.value) and reason in str(caught.value)


def test_the_organization_id_decides_principal_org_conditions():
    condition = {"StringNotEquals": {"aws:PrincipalOrgID": "o-abc123"}}
    assert decide(record(), condition) == INDETERMINATE
    assert decide(record(), condition, facts=OrgFacts(organization_id="o-abc123")) == "Allow"
    assert decide(record(), condition, facts=OrgFacts(organization_id="o-other")) == DENY
