"""Evaluation benchmark: full evaluations per second per core (issue 18, goal >= 50k/s).

A full evaluation is `replay.evaluate_record` with no memo hit: normalise, parse_record (the request
context) and evaluate_scps. The records are varied (assumed roles, exempt and service-linked roles,
IAM users with long-term keys, root, federated users, AWS services, VPC endpoint calls, request tags,
failed calls) and are decided against two policy sets: the repository's own guardrails rendered with
fixtures/org/org.yaml, and a third-party-style set whose statements read many condition keys and
policy variables. parse_record and evaluate_scps are timed apart too. The 50%-guarded trail ratio
against decode-only on 2 workers is bench/replay.py's measurement with --guarded 0.5.

It measures; it asserts nothing. The same records and policies give tests/test_evaluate_golden.py its
golden decisions, so the optimised evaluator is checked against the decisions recorded before it.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from netguard.iam.evaluator import FULL_AWS_ACCESS, Policy, evaluate_scps
from netguard.policy import replay as rp
from netguard.policy.cloudtrail import MalformedRecord, parse_record
from netguard.policy.facts import OrgFacts, PrincipalTags
from netguard.policy.orgconfig import load_org_config
from netguard.policy.record_shapes import normalise
from netguard.policy.render import render_to_dir
from netguard.policy.simulate import load_policy_levels

ROOT = Path(__file__).resolve().parent.parent
ACCOUNTS = ["111122223333", "444455556666", "777788889999"]
MANAGEMENT = "999999999999"
ROLES = [
    "role/Developer",
    "role/app/Service",
    "role/network/NetworkAdmin",
    "role/break-glass/Emergency",
    "role/netguard-deploy",
    "role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_NetworkAdmin_0123abcd",
    "role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_ReadOnly_4567ef01",
    "role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing",
]
# (eventSource, eventName, requestParameters): guarded network calls, their neighbours, and plain reads.
CALLS: list[tuple[str, str, Any]] = [
    ("ec2.amazonaws.com", "DeleteVpc", {"vpcId": "vpc-0a1b2c3d"}),
    ("ec2.amazonaws.com", "DeleteSubnet", {"subnetId": "subnet-0a1b2c3d"}),
    ("ec2.amazonaws.com", "DeleteDhcpOptions", {"dhcpOptionsId": "dopt-0a1b2c3d"}),
    ("ec2.amazonaws.com", "DisassociateAddress", {"associationId": "eipassoc-0a1b2c3d"}),
    ("ec2.amazonaws.com", "ReleaseAddress", {"allocationId": "eipalloc-0a1b2c3d"}),
    ("ec2.amazonaws.com", "DeleteFlowLogs", {"DeleteFlowLogsRequest": {"FlowLogId": {"content": "fl-1", "tag": 1}}}),
    ("ec2.amazonaws.com", "DeleteRoute", {"routeTableId": "rtb-0a1b2c3d", "destinationCidrBlock": "0.0.0.0/0"}),
    ("ec2.amazonaws.com", "DeleteInternetGateway", {"internetGatewayId": "igw-0a1b2c3d"}),
    ("ec2.amazonaws.com", "CreateVpc", {"cidrBlock": "10.0.0.0/16"}),
    (
        "ec2.amazonaws.com",
        "CreateVpc",
        {
            "cidrBlock": "10.1.0.0/16",
            "tagSpecificationSet": {
                "items": [{"resourceType": "vpc", "tags": [{"key": "team", "value": "net"}, {"key": "env"}]}]
            },
        },
    ),
    (
        "ec2.amazonaws.com",
        "CreateTags",
        {
            "resourcesSet": {"items": [{"resourceId": "vpc-0a1b2c3d"}]},
            "tagSet": {"items": [{"key": "owner", "value": "ann"}]},
        },
    ),
    ("ec2.amazonaws.com", "CreateVpcPeeringConnection", {"vpcId": "vpc-0a1b2c3d", "peerVpcId": "vpc-9f8e7d6c"}),
    (
        "ec2.amazonaws.com",
        "CreateVpcPeeringConnection",
        {"vpcId": "vpc-0a1b2c3d", "peerVpcId": "vpc-9f8e7d6c", "peerOwnerId": "444455556666"},
    ),
    ("ec2.amazonaws.com", "AttachInternetGateway", {"vpcId": "vpc-0a1b2c3d", "internetGatewayId": "igw-0a1b2c3d"}),
    ("ec2.amazonaws.com", "DescribeInstances", {"filterSet": {}, "maxResults": 1000}),
    ("ec2.amazonaws.com", "RunInstances", {"instanceType": "t3.micro"}),
    ("logs.amazonaws.com", "DeleteLogGroup", {"logGroupName": "/aws/vpc/flow-logs-prod"}),
    ("logs.amazonaws.com", "DeleteLogStream", {"logGroupName": "/app/web", "logStreamName": "i-1"}),
    ("logs.amazonaws.com", "PutLogEvents", {"logGroupName": "/app/web", "logStreamName": "i-1"}),
    ("s3.amazonaws.com", "GetObject", {"bucketName": "data", "key": "a/b"}),
    ("iam.amazonaws.com", "CreateUser", {"userName": "ann"}),
    ("sts.amazonaws.com", "AssumeRole", {"roleArn": "arn:aws:iam::111122223333:role/Developer"}),
    ("kms.amazonaws.com", "Decrypt", None),
]
REGIONS = ["eu-west-1", "eu-west-1", "us-east-1", "ap-southeast-2"]


def _identity(rng: random.Random, account: str) -> dict[str, Any]:
    kind = rng.choices(["AssumedRole", "IAMUser", "Root", "FederatedUser", "AWSService"], [70, 14, 4, 4, 8])[0]
    if kind == "AssumedRole":
        role = rng.choice(ROLES)
        name = role.rsplit("/", 1)[1]
        attributes: dict[str, Any] = {"creationDate": "2026-11-01T10:00:00Z"}
        attributes["mfaAuthenticated"] = rng.choice(["false", "true", "false"])
        context: dict[str, Any] = {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLE",
                "arn": f"arn:aws:iam::{account}:{role}",
                "accountId": account,
                "userName": name,
            },
            "attributes": attributes,
        }
        if rng.random() < 0.1:
            context["sourceIdentity"] = "ann"
        identity = {
            "type": "AssumedRole",
            "principalId": f"AROAEXAMPLE:{name}-session",
            "arn": f"arn:aws:sts::{account}:assumed-role/{name}/session",
            "accountId": account,
            "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": context,
        }
    elif kind == "IAMUser":
        user = rng.choice(["ann", "bob", "ci/deployer"])
        identity = {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE",
            "arn": f"arn:aws:iam::{account}:user/{user}",
            "accountId": account,
            "accessKeyId": rng.choice(["AKIAEXAMPLE", "ASIAEXAMPLE"]),
            "userName": user.rsplit("/", 1)[-1],
        }
    elif kind == "Root":
        identity = {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root", "accountId": account}
    elif kind == "FederatedUser":
        identity = {
            "type": "FederatedUser",
            "principalId": f"{account}:ann",
            "arn": f"arn:aws:sts::{account}:federated-user/ann",
            "accountId": account,
            "sessionContext": {
                "sessionIssuer": {"type": "IAMUser", "arn": f"arn:aws:iam::{account}:user/ann", "accountId": account},
                "attributes": {"creationDate": "2026-11-01T09:00:00Z", "mfaAuthenticated": "false"},
            },
        }
    else:
        identity = {"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"}
    if kind != "AWSService" and rng.random() < 0.08:
        identity["invokedBy"] = "cloudformation.amazonaws.com"
    return identity


def make_record(rng: random.Random) -> dict[str, Any]:
    """One CloudTrail record of realistic shape; every random choice comes from rng."""
    account = rng.choice([*ACCOUNTS, MANAGEMENT] if rng.random() < 0.05 else ACCOUNTS)
    source, name, params = rng.choice(CALLS)
    region = rng.choice(REGIONS)
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": _identity(rng, account),
        "eventTime": f"2026-11-0{rng.randint(1, 9)}T{rng.randint(10, 23)}:{rng.randint(10, 59)}:00Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": rng.choice(["203.0.113.10", "10.20.30.40", "198.51.100.7", "cloudformation.amazonaws.com"]),
        "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.amzn.2023 prompt/off command/ec2",
        "requestParameters": params,
        "responseElements": None,
        "requestID": str(uuid.UUID(int=rng.getrandbits(128))),
        "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
        "readOnly": name.startswith(("Describe", "Get")),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }
    if rng.random() < 0.85:
        record["tlsDetails"] = {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": f"ec2.{region}.amazonaws.com",
        }
    if rng.random() < 0.2:
        record["vpcEndpointId"] = rng.choice(["vpce-0a1b2c3d", "vpce-11112222"])
        record["sourceIPAddress"] = "10.20.30.40"
    if rng.random() < 0.1:
        record["errorCode"] = rng.choice(
            ["Client.UnauthorizedOperation", "AccessDenied", "Client.InvalidVpcID.NotFound"]
        )
        record["errorMessage"] = "denied"
    return record


def records(count: int, seed: int = 18) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [make_record(rng) for _ in range(count)]


# A third-party-style SCP set: the condition keys and operators real organizations' SCPs use.
THIRD_PARTY: list[list[dict[str, Any]]] = [
    [
        FULL_AWS_ACCESS,
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyOutsideApprovedRegions",
                    "Effect": "Deny",
                    "NotAction": ["iam:*", "sts:*", "organizations:*", "support:*", "cloudfront:*"],
                    "Resource": "*",
                    "Condition": {
                        "StringNotEquals": {"aws:RequestedRegion": ["eu-west-1", "eu-central-1", "us-east-1"]},
                        "ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::*:role/break-glass/*"]},
                    },
                },
                {
                    "Sid": "DenyNetworkChangesWithoutMfa",
                    "Effect": "Deny",
                    "Action": ["ec2:Delete*", "ec2:Disassociate*", "ec2:ReleaseAddress"],
                    "Resource": "*",
                    "Condition": {
                        "BoolIfExists": {"aws:MultiFactorAuthPresent": "false"},
                        "StringNotLike": {"aws:PrincipalArn": ["arn:aws:iam::*:role/network/*"]},
                    },
                },
                {
                    "Sid": "DenyUntaggedVpcs",
                    "Effect": "Deny",
                    "Action": "ec2:CreateVpc",
                    "Resource": "arn:aws:ec2:*:*:vpc/*",
                    "Condition": {"Null": {"aws:RequestTag/team": "true"}},
                },
                {
                    "Sid": "DenyForeignTagKeys",
                    "Effect": "Deny",
                    "Action": ["ec2:CreateTags", "ec2:CreateVpc"],
                    "Resource": "*",
                    "Condition": {"ForAnyValue:StringNotLike": {"aws:TagKeys": ["team", "env", "owner", "Name"]}},
                },
            ],
        },
    ],
    [
        FULL_AWS_ACCESS,
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyOutsideNetworkPerimeter",
                    "Effect": "Deny",
                    "Action": ["s3:*", "kms:Decrypt", "logs:Delete*"],
                    "Resource": "*",
                    "Condition": {
                        "NotIpAddressIfExists": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]},
                        "StringNotEqualsIfExists": {"aws:SourceVpce": ["vpce-0a1b2c3d"]},
                        "BoolIfExists": {"aws:ViaAWSService": "false"},
                        "StringNotEquals": {"aws:PrincipalTag/perimeter-exempt": "true"},
                    },
                },
                {
                    "Sid": "DenyOtherAccountsResources",
                    "Effect": "Deny",
                    "Action": "ec2:*",
                    "NotResource": [
                        "arn:aws:ec2:*:${aws:PrincipalAccount}:*",
                        "arn:aws:ec2:*:*:vpc-peering-connection/*",
                    ],
                    "Condition": {
                        "StringEquals": {"aws:PrincipalOrgID": "o-exampleorg"},
                        "ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/network/*"},
                    },
                },
                {
                    "Sid": "DenyRootUser",
                    "Effect": "Deny",
                    "Action": "*",
                    "Resource": "*",
                    "Condition": {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"}},
                },
                {
                    "Sid": "DenyLongTermKeysAfterCutoff",
                    "Effect": "Deny",
                    "Action": ["iam:CreateUser", "ec2:RunInstances"],
                    "Resource": "*",
                    "Condition": {
                        "DateGreaterThan": {"aws:CurrentTime": "2026-11-05T00:00:00Z"},
                        "Null": {"aws:TokenIssueTime": "true"},
                    },
                },
                {
                    "Sid": "DenyLogDeletesOutsideOwnTeam",
                    "Effect": "Deny",
                    "Action": "logs:DeleteLogStream",
                    "Resource": "arn:aws:logs:*:*:log-group:/${aws:PrincipalTag/team, 'app'}/*",
                    "Condition": {"ForAllValues:StringEquals": {"aws:CalledVia": ["cloudformation.amazonaws.com"]}},
                },
            ],
        },
    ],
    [
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowListed",
                    "Effect": "Allow",
                    "Action": ["ec2:*", "logs:*", "s3:Get*", "sts:*", "kms:*"],
                    "Resource": "*",
                },
                {
                    "Sid": "AllowIamForAdmins",
                    "Effect": "Allow",
                    "Action": "iam:*",
                    "Resource": "*",
                    "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:role/*Admin*"}},
                },
            ],
        }
    ],
]
FACTS = OrgFacts(
    management_account=MANAGEMENT,
    organization_id="o-exampleorg",
    principal_tags=PrincipalTags(
        (
            ("arn:aws:iam::*:role/network/*", {"team": "net", "perimeter-exempt": "true"}),
            ("arn:aws:iam::*:role/app/*", {"team": "app"}),
        ),
        unlisted_untagged=False,
    ),
)


def policy_sets(work: Path) -> dict[str, tuple[list[list[Policy]], OrgFacts]]:
    """name -> (SCP levels, facts): the repository's rendered guardrails, and the third-party-style set."""
    render_to_dir(load_org_config(ROOT / "fixtures" / "org" / "org.yaml"), work / "scp")
    levels, errors = load_policy_levels(work / "scp")
    if errors:
        raise SystemExit(f"cannot load the rendered guardrails: {errors}")
    third = [
        [
            Policy("FullAWSAccess" if doc is FULL_AWS_ACCESS else f"third-party-{i}-{j}", doc)
            for j, doc in enumerate(level)
        ]
        for i, level in enumerate(THIRD_PARTY)
    ]
    return {"repository": (levels, OrgFacts(management_account=MANAGEMENT)), "third-party": (third, FACTS)}


class _NoMemo(dict):
    """A memo that never remembers: every evaluate_record is a full evaluation."""

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


def decide_all(levels: list[list[Policy]], facts: OrgFacts, batch: list[dict[str, Any]]) -> list[Any]:
    """Each record's evaluate_record result (or its MalformedRecord message), memo disabled."""
    compiled = rp.compile_policies(levels)
    compiled.decisions = _NoMemo()
    out: list[Any] = []
    for record in batch:
        try:
            out.append(rp.evaluate_record(compiled, record, facts=facts))
        except MalformedRecord as exc:
            out.append({"malformed": str(exc)})
    return out


def golden_table(levels: list[list[Policy]], facts: OrgFacts, batch: list[dict[str, Any]]) -> dict[str, Any]:
    """decide_all's results, field by field: each field's distinct values once, each record a row of
    indices into them (the golden file stays small while pinning every field of every result)."""
    results = [json.loads(json.dumps(r, default=list)) for r in decide_all(levels, facts, batch)]
    fields = sorted({key for result in results for key in result})
    values: dict[str, list[str]] = {field: [] for field in fields}
    index: dict[str, dict[str, int]] = {field: {} for field in fields}
    rows = []
    for result in results:
        row = []
        for field in fields:
            text = json.dumps(result.get(field, "<none>"), sort_keys=True)
            if text not in index[field]:
                index[field][text] = len(values[field])
                values[field].append(text)
            row.append(index[field][text])
        rows.append(row)
    return {"fields": fields, "values": values, "rows": rows}


# Every key parse_record can set or mark absent, and some it never does: context_digest pins what
# lookup answers for each, so a change to how the context is built cannot go unnoticed.
CONTEXT_KEYS = [
    "aws:PrincipalArn",
    "aws:PrincipalAccount",
    "aws:PrincipalType",
    "aws:RequestedRegion",
    "aws:userid",
    "aws:username",
    "aws:PrincipalIsAWSService",
    "aws:PrincipalServiceName",
    "aws:PrincipalServiceNamesList",
    "aws:UserAgent",
    "ec2:Region",
    "aws:SourceIp",
    "aws:SourceVpce",
    "aws:VpcSourceIp",
    "aws:SourceVpc",
    "aws:SourceVpcArn",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:TokenIssueTime",
    "aws:MultiFactorAuthPresent",
    "aws:MultiFactorAuthAge",
    "aws:SourceIdentity",
    "aws:AssumedRoot",
    "aws:ViaAWSService",
    "aws:CalledVia",
    "aws:CalledViaFirst",
    "aws:CalledViaLast",
    "aws:SecureTransport",
    "aws:TagKeys",
    "aws:RequestTag/team",
    "aws:RequestTag/env",
    "aws:RequestTag/owner",
    "aws:RequestTag/other",
    "aws:PrincipalOrgID",
    "aws:PrincipalTag/team",
    "aws:PrincipalTag/perimeter-exempt",
    "aws:ResourceAccount",
    "aws:ResourceTag/team",
    "AWS:SOURCEIP",
    "ec2:Vpc",
    "aws:PrincipalOrgPaths",
]


def context_digest(facts: OrgFacts, record: dict[str, Any]) -> str:
    """A short digest of what parse_record makes of a record: principal, exemption, action, resources,
    and lookup's answer for every key of CONTEXT_KEYS."""
    try:
        parsed = parse_record(normalise(record), facts=facts)
    except MalformedRecord as exc:
        return "malformed " + str(exc)
    request = parsed.request
    seen = [parsed.principal, parsed.event_id, parsed.scp_exempt_reason, request.action, request.resources]
    seen += [request.context.lookup(key) for key in CONTEXT_KEYS]
    context = request.context  # and the context whole, as the replay memo keys it when policies build key names
    seen += [sorted(context.values.items()), sorted(context.absent), list(context.absent_prefixes)]
    return hashlib.sha256(json.dumps(seen, default=list).encode()).hexdigest()[:16]


def _rate(function: Any, items: list[Any], repeats: int) -> float:
    """Items per second of this process's CPU time (per core, and less disturbed than wall time by other
    work on a shared machine): the median of `repeats` passes over items."""
    rates = []
    for _ in range(repeats):
        start = time.process_time()
        for item in items:
            function(item)
        rates.append(len(items) / (time.process_time() - start))
    return statistics.median(rates)


def goal(label: str, value: float, target: float, unit: str = "/s") -> None:
    met = value >= target
    verdict = "ok" if met else "MISS"
    print(f"  {label:<52} {value:10,.0f}{unit}   goal >= {target:,.0f}{unit}   ratio {value / target:.2f}   {verdict}")


def measure(count: int, repeats: int) -> None:
    batch = records(count)
    with tempfile.TemporaryDirectory(prefix="netguard-evaluate-bench-") as work:
        for name, (levels, facts) in policy_sets(Path(work)).items():
            compiled = rp.compile_policies(levels)
            compiled.decisions = _NoMemo()
            decide_all(levels, facts, batch[:200])  # warm-up: reference data, regex caches

            def full(record: dict[str, Any], compiled: Any = compiled, facts: OrgFacts = facts) -> None:
                with contextlib.suppress(MalformedRecord):
                    rp.evaluate_record(compiled, record, facts=facts)

            def parse(record: dict[str, Any], facts: OrgFacts = facts) -> None:
                parse_record(normalise(record), facts=facts)

            requests = [parse_record(normalise(r), facts=facts) for r in batch]
            requests = [p.request for p in requests if not p.scp_exempt_reason]
            statements = sum(len(p.statements()) for level in levels for p in level)
            print(
                f"\n{name} guardrails ({len(levels)} levels, {statements} statements), {count} varied records, 1 core:"
            )
            goal("full evaluations (evaluate_record, no memo)", _rate(full, batch, repeats), 50_000)
            print(f"  {'parse_record (with normalise)':<52} {_rate(parse, batch, repeats):10,.0f}/s")
            rate = _rate(lambda request, levels=levels: evaluate_scps(levels, request), requests, repeats)
            print(f"  {'evaluate_scps (' + str(len(requests)) + ' non-exempt requests)':<52} {rate:10,.0f}/s")


GOLDEN = ROOT / "tests" / "golden" / "evaluate_decisions.json"
GOLDEN_SEED, GOLDEN_RECORDS = 1818, 1500


def golden() -> dict[str, Any]:
    """What tests/golden/evaluate_decisions.json holds: per policy set, every record's decision and
    its request context's digest."""
    batch = records(GOLDEN_RECORDS, seed=GOLDEN_SEED)
    sets, contexts = {}, {}
    with tempfile.TemporaryDirectory(prefix="netguard-evaluate-golden-") as work:
        for name, (levels, facts) in policy_sets(Path(work)).items():
            sets[name] = golden_table(levels, facts, batch)
            contexts[name] = [context_digest(facts, record) for record in batch]
    return {"seed": GOLDEN_SEED, "records": GOLDEN_RECORDS, "sets": sets, "contexts": contexts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5, help="passes per figure; the median is printed")
    parser.add_argument(
        "--write-golden",
        action="store_true",
        help=f"rewrite {GOLDEN.relative_to(ROOT)} (only when a decision is meant to change) and exit",
    )
    args = parser.parse_args()
    if args.write_golden:
        GOLDEN.write_text(json.dumps(golden(), separators=(",", ":")) + "\n")
        return
    measure(args.records, args.repeats)


if __name__ == "__main__":
    sys.exit(main())
