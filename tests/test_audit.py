"""`netguard audit` against a real moto_server on 127.0.0.1: an organization of several accounts, an
estate in two regions built with boto3, every audited control positive and negative, a throttled
call, an account whose role cannot be assumed, and the least-privilege policies checked against the
calls the audit made."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import jsonschema
import pytest
from botocore.awsrequest import AWSResponse

from netguard.audit import collect
from netguard.audit.checks import AUDITED
from netguard.catalog import load_catalog
from netguard.cli import main
from netguard.resources import pack_path
from tests.conftest import running_moto_server

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("fake_aws_credentials")

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
EVIL_NAME = "evil\u202ered\u2028fake: line\x9b31m"  # valid in XML, but a terminal or editor would act on them
ROLE = "NetguardAudit"
ALLOW = {"Version": "2012-10-17"}


@pytest.fixture(scope="module")
def moto_url():
    """A moto_server of its own for this module, stopped at the end."""
    with running_moto_server({"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}) as url:  # AWS managed policies to attach
        yield url


def _member_session(url: str, account: str) -> boto3.session.Session:
    sts = boto3.client("sts", endpoint_url=url, **CREDENTIALS)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}", RoleSessionName="builder")["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def _policy(*statements: dict) -> str:
    return json.dumps({**ALLOW, "Statement": list(statements)})


def build_estate(url: str) -> dict[str, Any]:
    """Management account 123456789012 with three members: A holds the estate, B is an approved peer,
    C an unapproved one whose audit role will refuse to be assumed."""
    org = boto3.client("organizations", endpoint_url=url, **CREDENTIALS)
    org.create_organization(FeatureSet="ALL")
    ids = {}
    for name in ("a", "b", "c"):
        status = org.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]
        ids[name] = status["AccountId"]
    a = _member_session(url, ids["a"])
    ec2 = a.client("ec2", endpoint_url=url, region_name="us-east-1")
    e: dict[str, Any] = {"accounts": ids}

    def vpc(client, cidr: str, name: str | None = None) -> str:
        tags = [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": name}]}] if name else []
        return client.create_vpc(CidrBlock=cidr, TagSpecifications=tags)["Vpc"]["VpcId"]

    # NG-VPC-001 / NG-VPC-003: logged with approved options (negative) and bare (positive)
    e["vpc_logged"] = vpc(ec2, "10.0.0.0/16")
    e["vpc_bare"] = vpc(ec2, "10.1.0.0/16", EVIL_NAME)
    flow = {
        "ResourceIds": [e["vpc_logged"]],
        "ResourceType": "VPC",
        "LogDestinationType": "cloud-watch-logs",
        "LogGroupName": "flow",
        "DeliverLogsPermissionArn": f"arn:aws:iam::{ids['a']}:role/flow-logs",
    }
    e["log_all"] = ec2.create_flow_logs(TrafficType="ALL", **flow)["FlowLogIds"][0]
    flow["LogGroupName"] = "flow-rejects"
    e["log_reject"] = ec2.create_flow_logs(TrafficType="REJECT", **flow)["FlowLogIds"][0]  # NG-VPC-002 positive
    # NG-DHCP-001: approved servers (negative), an unapproved one (positive)
    good = ec2.create_dhcp_options(
        DhcpConfigurations=[{"Key": "domain-name-servers", "Values": ["AmazonProvidedDNS"]}]
    )["DhcpOptions"]["DhcpOptionsId"]
    bad = ec2.create_dhcp_options(
        DhcpConfigurations=[{"Key": "domain-name-servers", "Values": ["8.8.8.8", "10.0.0.2"]}]
    )["DhcpOptions"]["DhcpOptionsId"]
    e.update(dopt_good=good, dopt_bad=bad)
    ec2.associate_dhcp_options(DhcpOptionsId=good, VpcId=e["vpc_logged"])
    e["vpc_bad_dns"] = vpc(ec2, "10.2.0.0/16")
    ec2.associate_dhcp_options(DhcpOptionsId=bad, VpcId=e["vpc_bad_dns"])
    # NG-EIP-001: addresses held by an instance and by an interface in use (negative), one idle and one
    # on a detached interface (positive)
    subnet = ec2.create_subnet(VpcId=e["vpc_logged"], CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]
    e["eip_held"] = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=e["eip_held"], InstanceId=instance["InstanceId"])
    e["eip_on_eni"] = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(
        AllocationId=e["eip_on_eni"], NetworkInterfaceId=instance["NetworkInterfaces"][0]["NetworkInterfaceId"]
    )
    e["eni_detached"] = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    e["eip_detached"] = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=e["eip_detached"], NetworkInterfaceId=e["eni_detached"])
    e["eip_idle"] = ec2.allocate_address(Domain="vpc")["AllocationId"]
    # the management account (the caller's own) has an address on an interface too, so the caller makes
    # every call the member role does
    home = boto3.client("ec2", endpoint_url=url, **CREDENTIALS)
    home_subnet = home.describe_subnets()["Subnets"][0]["SubnetId"]
    home_eni = home.create_network_interface(SubnetId=home_subnet)["NetworkInterface"]["NetworkInterfaceId"]
    home.associate_address(
        AllocationId=home.allocate_address(Domain="vpc")["AllocationId"], NetworkInterfaceId=home_eni
    )
    # NG-PCX-001: peering in this account and to approved B (negative), to unapproved C (positive)
    b_vpc = vpc(_member_session(url, ids["b"]).client("ec2", endpoint_url=url, region_name="us-east-1"), "10.8.0.0/16")
    c_vpc = vpc(_member_session(url, ids["c"]).client("ec2", endpoint_url=url, region_name="us-east-1"), "10.9.0.0/16")

    def peer(peer_vpc: str, owner: str) -> str:
        pcx = ec2.create_vpc_peering_connection(VpcId=e["vpc_logged"], PeerVpcId=peer_vpc, PeerOwnerId=owner)
        return pcx["VpcPeeringConnection"]["VpcPeeringConnectionId"]

    e["pcx_self"] = peer(e["vpc_bad_dns"], ids["a"])
    e["pcx_b"] = peer(b_vpc, ids["b"])
    e["pcx_c"] = peer(c_vpc, ids["c"])
    # NG-PCX-002: default routes (IPv4 and IPv6) through a peering (positive), a peer CIDR route (negative)
    rt_default = ec2.create_route_table(VpcId=e["vpc_logged"])["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rt_default, DestinationCidrBlock="0.0.0.0/0", VpcPeeringConnectionId=e["pcx_b"])
    ec2.create_route(RouteTableId=rt_default, DestinationIpv6CidrBlock="::/0", VpcPeeringConnectionId=e["pcx_b"])
    rt_peer = ec2.create_route_table(VpcId=e["vpc_logged"])["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rt_peer, DestinationCidrBlock="10.8.0.0/16", VpcPeeringConnectionId=e["pcx_b"])
    e.update(rt_default=rt_default, rt_peer=rt_peer)
    # a second region: one more bare VPC
    e["vpc_eu"] = vpc(a.client("ec2", endpoint_url=url, region_name="eu-west-1"), "10.3.0.0/16", "eu")
    # NG-IAM-*: customer managed (risky and conditioned), inline on a role and a user, AWS managed attached
    iam = a.client("iam", endpoint_url=url, region_name="us-east-1")
    e["policy_risky"] = iam.create_policy(
        PolicyName="net-cleanup",
        PolicyDocument=_policy({"Effect": "Allow", "Action": "ec2:DeleteVpc", "Resource": "*"}),
    )["Policy"]["Arn"]
    e["policy_scoped"] = iam.create_policy(
        PolicyName="net-cleanup-tagged",
        PolicyDocument=_policy(
            {
                "Effect": "Allow",
                "Action": ["ec2:Delete*", "ec2:AllocateAddress", "ec2:CreateVpc"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/owner": "network"}},
            }
        ),
    )["Policy"]["Arn"]
    trust = _policy({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})
    e["role_arn"] = iam.create_role(RoleName="addresses", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    iam.put_role_policy(
        RoleName="addresses",
        PolicyName="eip",
        PolicyDocument=_policy({"Effect": "Allow", "Action": "ec2:AllocateAddress", "Resource": "*"}),
    )
    iam.put_role_policy(
        RoleName="addresses",
        PolicyName="read",
        PolicyDocument=_policy({"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}),
    )
    e["user_arn"] = iam.create_user(UserName="builder")["User"]["Arn"]
    iam.put_user_policy(
        UserName="builder",
        PolicyName="topology",
        PolicyDocument=_policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
    )
    iam.create_role(RoleName="admin", AssumeRolePolicyDocument=trust)
    iam.attach_role_policy(RoleName="admin", PolicyArn="arn:aws:iam::aws:policy/AmazonEC2FullAccess")
    return e


class Recorder:
    """Wraps collect.new_session: records every call (caller or member session, IAM action) and
    answers chosen calls with an error before they are sent."""

    def __init__(
        self,
        faults: list[tuple[str, str, int, str, int]] | None = None,
        pages: list[tuple[str, str, int, dict]] | None = None,
    ) -> None:
        # fault: (operation, text in the request, how many times, error code, HTTP status)
        # page: (operation, text in the request, how many times, the parsed answer to give instead)
        self.calls: list[tuple[str, str, str]] = []  # (who, action, request body)
        self.faults = [list(f) for f in faults or ()]
        self.pages = [list(p) for p in pages or ()]
        self._real = collect.new_session

    def new_session(self, **kwargs: Any) -> Any:
        session = self._real(**kwargs)
        who = "member" if "aws_access_key_id" in kwargs else "caller"

        def before_call(model, params, **_: Any):
            action = f"{model.service_model.signing_name}:{model.name}"
            body = str(params.get("body", ""))
            region = (params.get("context") or {}).get("client_region", "")
            self.calls.append((who, action, body))
            body = f"region={region} {body}"
            for fault in self.faults:
                operation, text, left, code, status = fault
                if left and model.name == operation and text in body:
                    fault[2] -= 1
                    response = AWSResponse("http://moto", status, {}, None)
                    error = {"Error": {"Code": code, "Message": f"injected {code}"}}
                    return response, {**error, "ResponseMetadata": {"HTTPStatusCode": status}}
            for page in self.pages:
                operation, text, left, answer = page
                if left and model.name == operation and text in body:
                    page[2] -= 1
                    return AWSResponse("http://moto", 200, {}, None), {
                        **answer,
                        "ResponseMetadata": {"HTTPStatusCode": 200},
                    }
            return None

        session.events.register("before-call", before_call)
        return session

    def actions(self, who: str | None = None) -> set[str]:
        return {action for w, action, _ in self.calls if who in (None, w)}


def run_audit(monkeypatch, recorder: Recorder, *args: str) -> tuple[int, str, str]:
    import contextlib
    import io

    monkeypatch.setattr(collect, "new_session", recorder.new_session)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["audit", *args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def estate(moto_url):
    return build_estate(moto_url)


@pytest.fixture(scope="module")
def org_audit(moto_url, estate, tmp_path_factory):
    """One audit of the whole organization in two regions, every report format written: C's role
    refuses AssumeRole, A's first DescribeVpcs in us-east-1 is throttled."""
    a, b, c = (estate["accounts"][k] for k in "abc")
    folder = tmp_path_factory.mktemp("audit")
    config = folder / "netguard.yaml"
    config.write_text(
        f"approved_peer_accounts: ['{b}']\n"
        "audit:\n"
        "  suppressions:\n"
        f"    - {{arn: 'arn:aws:ec2:eu-west-1:{a}:vpc/*', control: NG-VPC-001,\n"
        "       reason: 'eu sandbox, logged centrally'}\n"
    )
    recorder = Recorder(
        [
            ("AssumeRole", f"arn:aws:iam::{c}:role", 1, "AccessDenied", 403),
            ("DescribeVpcs", "", 1, "Throttling", 400),  # the first one the audit makes, in whichever account
        ]
    )
    paths = {fmt: folder / f"report.{fmt}" for fmt in ("json", "sarif", "junit")}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            mp.setenv(key, value)
        mp.delenv("AWS_PROFILE", raising=False)
        code, out, err = run_audit(
            mp,
            recorder,
            "--endpoint-url",
            moto_url,
            "--organization",
            "--regions",
            "us-east-1,eu-west-1",
            "--config",
            str(config),
            *(f"--output={fmt}={path}" for fmt, path in paths.items()),
        )
    assert paths["json"].exists(), (code, out, err)
    report = json.loads(paths["json"].read_text())
    return {"code": code, "out": out, "err": err, "report": report, "paths": paths, "recorder": recorder}


def _found(report: dict, account: str, control: str) -> set[str]:
    return {f["resource"] for f in report["findings"] if f["account"] == account and f["control"] == control}


def test_every_control_positive_and_negative(org_audit, estate):
    a = estate["accounts"]["a"]
    report = org_audit["report"]
    expected = {  # control: (resources that fail it, resources that pass it)
        "NG-VPC-001": ({estate["vpc_bare"], estate["vpc_bad_dns"]}, {estate["vpc_logged"]}),
        "NG-VPC-002": ({estate["log_reject"]}, {estate["log_all"]}),
        "NG-VPC-003": ({estate["vpc_bare"]}, {estate["vpc_logged"], estate["vpc_bad_dns"]}),
        "NG-DHCP-001": ({estate["dopt_bad"]}, {estate["dopt_good"]}),
        "NG-EIP-001": ({estate["eip_idle"], estate["eip_detached"]}, {estate["eip_held"], estate["eip_on_eni"]}),
        "NG-PCX-001": ({estate["pcx_c"]}, {estate["pcx_self"], estate["pcx_b"]}),
        "NG-PCX-002": ({estate["rt_default"]}, {estate["rt_peer"]}),
        "NG-IAM-001": ({"net-cleanup", "builder/topology", "AmazonEC2FullAccess"}, {"net-cleanup-tagged"}),
        "NG-IAM-002": ({"addresses/eip", "builder/topology", "AmazonEC2FullAccess"}, {"addresses/read"}),
        "NG-IAM-003": ({"builder/topology", "AmazonEC2FullAccess"}, {"addresses/eip", "net-cleanup"}),
    }
    assert set(expected) == AUDITED
    for control, (failing, passing) in expected.items():
        found = _found(report, a, control)
        assert failing <= found, (control, failing - found)
        assert not passing & found, (control, passing & found)


def test_findings_carry_arn_account_region_and_fix(org_audit, estate):
    a = estate["accounts"]["a"]
    by_resource = {(f["control"], f["resource"]): f for f in org_audit["report"]["findings"] if f["account"] == a}
    route = by_resource[("NG-PCX-002", estate["rt_default"])]
    assert route["file"] == route["arn"] == f"arn:aws:ec2:us-east-1:{a}:route-table/{estate['rt_default']}"
    assert route["region"] == "us-east-1" and route["severity"] == "high"
    rt = estate["rt_default"]
    assert route["fix"] == [
        f"aws ec2 delete-route --region us-east-1 --route-table-id {rt} --destination-cidr-block 0.0.0.0/0",
        f"aws ec2 delete-route --region us-east-1 --route-table-id {rt} --destination-ipv6-cidr-block ::/0",
    ]
    eip = by_resource[("NG-EIP-001", estate["eip_idle"])]
    assert eip["file"] == f"arn:aws:ec2:us-east-1:{a}:elastic-ip/{estate['eip_idle']}"
    assert f"aws ec2 release-address --region us-east-1 --allocation-id {estate['eip_idle']}" in eip["fix"]
    dhcp = by_resource[("NG-DHCP-001", estate["dopt_bad"])]
    assert f"--dhcp-options-id '<NEW_DOPT_ID>' --vpc-id {estate['vpc_bad_dns']}" in " ".join(dhcp["fix"])
    assert (
        "aws ec2 create-dhcp-options --region us-east-1 --dhcp-configurations"
        " Key=domain-name-servers,Values=AmazonProvidedDNS" in dhcp["fix"]
    )
    detached = by_resource[("NG-EIP-001", estate["eip_detached"])]
    assert "attached to nothing" in detached["message"]
    assert any(
        c.startswith("aws ec2 disassociate-address --region us-east-1 --association-id ") for c in detached["fix"]
    )
    assert f"--network-interface-id {estate['eni_detached']} --instance-id '<INSTANCE_ID>'" in " ".join(detached["fix"])
    assert not any("associate-address" in c and "--instance-id" in c for c in detached["fix"])
    assert dhcp["fix"][-1] == f"aws ec2 delete-dhcp-options --region us-east-1 --dhcp-options-id {estate['dopt_bad']}"
    log = by_resource[("NG-VPC-002", estate["log_reject"])]
    assert log["file"] == f"arn:aws:ec2:us-east-1:{a}:vpc-flow-log/{estate['log_reject']}"
    assert any("--traffic-type ALL" in c and "--log-group-name flow-rejects" in c for c in log["fix"])
    inline = by_resource[("NG-IAM-002", "addresses/eip")]
    assert inline["file"] == estate["role_arn"] and inline["region"] == "global"
    assert "aws iam put-role-policy --role-name addresses --policy-name eip" in " ".join(inline["fix"])
    managed = by_resource[("NG-IAM-001", "AmazonEC2FullAccess")]
    assert managed["file"] == "arn:aws:iam::aws:policy/AmazonEC2FullAccess"
    assert (
        "aws iam detach-role-policy --role-name admin --policy-arn arn:aws:iam::aws:policy/AmazonEC2FullAccess"
        in managed["fix"]
    )
    customer = by_resource[("NG-IAM-001", "net-cleanup")]
    assert customer["file"] == estate["policy_risky"]
    assert any(
        c.startswith(f"aws iam create-policy-version --policy-arn {estate['policy_risky']} ") for c in customer["fix"]
    )


def test_an_account_whose_role_cannot_be_assumed_is_an_error_and_the_rest_is_reported(org_audit, estate):
    c = estate["accounts"]["c"]
    assert org_audit["code"] == 2
    errors = org_audit["report"]["errors"]
    assert [e["file"] for e in errors] == [c]
    assert f"account {c}: cannot assume arn:aws:iam::{c}:role/NetguardAudit" in errors[0]["message"]
    assert "AccessDenied" in errors[0]["message"]
    assert org_audit["report"]["summary"]["accounts_audited"] == 3  # C is an error, not an audited account
    assert org_audit["report"]["summary"]["scopes_audited"] == 3 * 3  # two regions and IAM each
    accounts = {f["account"] for f in org_audit["report"]["findings"]}
    assert c not in accounts and {estate["accounts"]["a"], estate["accounts"]["b"], "123456789012"} <= accounts
    assert f"error: {c}: " in org_audit["out"] and "Traceback" not in org_audit["out"] + org_audit["err"]


def test_a_throttled_call_is_retried(org_audit, estate):
    recorder = org_audit["recorder"]
    assert recorder.faults[1][2] == 0  # the Throttling answer was given
    calls = [action for _, action, _ in recorder.calls if action == "ec2:DescribeVpcs"]
    audited = ["123456789012", estate["accounts"]["a"], estate["accounts"]["b"]]
    assert len(calls) == 2 * len(audited) + 1  # one per account and region, and the retry
    report = org_audit["report"]
    for account in audited:  # every region's VPCs were read, the throttled one's included
        regions = {f["region"] for f in report["findings"] if f["account"] == account and f["control"] == "NG-VPC-003"}
        assert regions == {"us-east-1", "eu-west-1"}
    assert not any("Throttling" in e["message"] for e in report["errors"])


def test_flow_logs_whose_delivery_fails_are_named_in_notices(org_audit, estate):
    """moto, like AWS, creates a flow log to a log group that does not exist and reports its delivery
    FAILED: the VPC still passes NG-VPC-001 (test above), and a notice names the flow log."""
    a = estate["accounts"]["a"]
    notices = org_audit["report"]["notices"]
    assert (
        f"account {a}, region us-east-1: flow log {estate['log_all']} on {estate['vpc_logged']} is ACTIVE but its"
        " delivery is failing (DeliverLogsStatus FAILED: Access error); it still counts for NG-VPC-001: fix its"
        " destination or delivery role"
    ) in notices
    assert f"notice: account {a}, region us-east-1: flow log {estate['log_all']}" in org_audit["out"]


def test_suppressed_by_arn_pattern_with_reason(org_audit, estate):
    a = estate["accounts"]["a"]
    eu = [f for f in org_audit["report"]["findings"] if f["account"] == a and f["region"] == "eu-west-1"]
    flow = [f for f in eu if f["control"] == "NG-VPC-001"]
    assert flow and all(f.get("suppressed") and f["suppression_reason"] == "eu sandbox, logged centrally" for f in flow)
    assert all(not f.get("suppressed") for f in eu if f["control"] == "NG-VPC-003")  # another control: not covered
    assert org_audit["report"]["summary"]["suppressed"] == len(flow)


def test_control_characters_from_aws_are_not_echoed(org_audit, estate):
    text = org_audit["out"]
    assert estate["vpc_bare"] in text
    for raw in ("\u202e", "\u2028", "\x9b"):
        assert raw not in text
        assert raw not in org_audit["paths"]["junit"].read_text()
    assert "evil\\u202ered\\u2028fake: line\\x9b31m" in text


def test_sarif_validates_and_junit_has_a_case_per_scope_and_control(org_audit, estate):
    import xml.etree.ElementTree as ET

    sarif = json.loads(org_audit["paths"]["sarif"].read_text())
    schema = json.loads(pack_path("netguard.schemas", "sarif-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(sarif)
    a = estate["accounts"]["a"]
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in sarif["runs"][0]["results"]}
    assert f"arn:aws:ec2:us-east-1:{a}:route-table/{estate['rt_default']}" in uris
    suppressed = [r for r in sarif["runs"][0]["results"] if r.get("suppressions")]
    assert suppressed and suppressed[0]["suppressions"][0]["kind"] == "external"
    assert sarif["runs"][0]["invocations"][0]["executionSuccessful"] is False  # C was not audited
    suite = ET.parse(org_audit["paths"]["junit"]).getroot().find("testsuite")
    cases = {(case.get("classname"), case.get("name")): case for case in suite.iter("testcase")}
    assert cases[(f"{a}/us-east-1", "NG-PCX-002")].find("failure") is not None
    assert cases[(f"{a}/global", "NG-IAM-002")].find("failure") is not None
    assert cases[(f"{a}/eu-west-1", "NG-EIP-001")].find("failure") is None  # evaluated, passed
    assert cases[(estate["accounts"]["c"], "input")].find("error") is not None


def _policy_actions(name: str) -> set[str]:
    document = json.loads((ROOT / "policies" / "iam" / name).read_text())
    actions: set[str] = set()
    for statement in document["Statement"]:
        value = statement["Action"]
        actions |= {value} if isinstance(value, str) else set(value)
    return actions


def test_the_calls_are_exactly_what_the_least_privilege_policies_allow(org_audit):
    recorder = org_audit["recorder"]
    readonly, caller = _policy_actions("ng-audit-readonly.json"), _policy_actions("ng-audit-caller.json")
    # the audit role in each member account: exactly its policy, both ways
    assert recorder.actions("member") == readonly
    # the caller reads its own account with the same calls, plus finding and entering the others
    assert recorder.actions("caller") == readonly | caller
    # read-only: nothing but reads, and AssumeRole to reach the other accounts
    verbs = {action.split(":")[1] for action in recorder.actions()} - {"AssumeRole"}
    assert all(verb.startswith(("Describe", "Get", "List")) for verb in verbs), verbs


def test_both_audit_policies_pass_policy_validate(capsys):
    paths = [str(ROOT / "policies" / "iam" / n) for n in ("ng-audit-readonly.json", "ng-audit-caller.json")]
    assert main(["policy", "validate", *paths]) == 0
    assert "0 with problems" in capsys.readouterr().out


def test_account_and_region_filters_and_a_region_not_enabled(monkeypatch, moto_url, estate):
    a = estate["accounts"]["a"]
    recorder = Recorder()
    code, out, _ = run_audit(
        monkeypatch,
        recorder,
        "--endpoint-url",
        moto_url,
        "--accounts",
        a,
        "--regions",
        "eu-west-1,ap-east-1",
        "--check",
        "NG-VPC-*",
        "--format",
        "json",
    )
    report = json.loads(out)
    assert code == 2
    assert [(e["file"], "not enabled" in e["message"]) for e in report["errors"]] == [(f"{a}/ap-east-1", True)]
    assert {(f["account"], f["region"]) for f in report["findings"]} == {(a, "eu-west-1")}
    assert estate["vpc_eu"] in {f["resource"] for f in report["findings"] if f["control"] == "NG-VPC-001"}
    assert not recorder.actions() & {"iam:GetAccountAuthorizationDetails", "organizations:ListAccounts"}
    assert "ec2:DescribeAddresses" not in recorder.actions()  # a control left out costs no call


def test_default_is_the_callers_own_account_without_assuming_a_role(monkeypatch, moto_url, estate):
    recorder = Recorder()
    code, out, _ = run_audit(
        monkeypatch, recorder, "--endpoint-url", moto_url, "--regions", "us-east-1", "--check", "NG-VPC-001"
    )
    assert code == 1
    assert "arn:aws:ec2:us-east-1:123456789012:vpc/" in out and estate["accounts"]["a"] not in out
    assert "1 account audited" in out
    assert "sts:AssumeRole" not in recorder.actions()


def test_an_endpoint_that_is_down_is_an_error_not_a_traceback(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once this block ends: nothing listens there
    code, _, err = run_audit(monkeypatch, Recorder(), "--endpoint-url", f"http://127.0.0.1:{port}")
    assert code == 2
    assert "GetCallerIdentity failed: no connection could be made" in err and "Traceback" not in err


def test_fix_values_are_shell_quoted_and_unfillable_steps_left_out():
    from netguard.audit.fixes import fill

    templates = ["# heads the route", "aws ec2 delete-route --route-table-id {route_table_id} --x {ipv4_destination}"]
    assert fill(templates, [{"route_table_id": "rtb-1; rm -rf /", "ipv4_destination": "0.0.0.0/0"}], {}) == (
        "# heads the route",
        "aws ec2 delete-route --route-table-id 'rtb-1; rm -rf /' --x 0.0.0.0/0",
    )
    assert fill(templates, [{"route_table_id": "rtb-1"}], {}) == ()  # no destination: neither step nor note


def test_a_flow_log_whose_destination_is_unknown_still_gets_a_create_before_the_delete():
    from netguard.audit.checks import check_region
    from netguard.audit.collect import RegionSnapshot
    from netguard.audit.fixes import fill
    from netguard.config import ScanConfig

    log = {"FlowLogId": "fl-1", "ResourceId": "subnet-1", "TrafficType": "ACCEPT", "LogDestinationType": "s3"}
    [hit] = check_region(RegionSnapshot(flow_logs=[log]), "1", "eu-west-1", ScanConfig(), frozenset({"NG-VPC-002"}))
    commands = fill(load_catalog()["NG-VPC-002"].fix, hit.values, {"region": "eu-west-1"})
    assert [c.split()[2] for c in commands if not c.startswith("#")] == ["create-flow-logs", "delete-flow-logs"]
    assert "--resource-type Subnet --resource-ids subnet-1" in commands[1]
    assert "--log-group-name '<LOG_GROUP>' --deliver-logs-permission-arn '<ROLE_ARN>'" in commands[1]


def test_every_audited_control_has_a_fix_and_only_those():
    catalog = load_catalog()
    assert {cid for cid, c in catalog.items() if c.fix} == AUDITED


def test_audit_suppressions_need_a_reason_and_a_known_control(tmp_path):
    from netguard.config import load_config
    from netguard.errors import NetguardError

    config = tmp_path / "c.yaml"
    config.write_text("audit:\n  suppressions:\n    - {arn: 'arn:aws:ec2:*'}\n")
    with pytest.raises(NetguardError, match="reason"):
        load_config(config)
    config.write_text("audit:\n  suppressions:\n    - {arn: 'arn:aws:ec2:*', control: NG-VPC-009, reason: x}\n")
    with pytest.raises(NetguardError, match="unknown control NG-VPC-009"):
        load_config(config)
    config.write_text("audit:\n  suppressions:\n    - {arn: 'arn:aws:ec2:*:1:vpc/*', reason: ' lab '}\n")
    rule = load_config(config).audit_suppressions[0]
    assert rule.reason == "lab" and rule.covers("NG-VPC-003", "arn:aws:ec2:eu-west-1:1:vpc/vpc-1")
    assert not rule.covers("NG-VPC-003", "arn:aws:ec2:eu-west-1:2:vpc/vpc-1")


def test_a_region_that_refuses_a_call_is_an_error_and_the_other_region_is_audited(monkeypatch, moto_url, estate):
    a = estate["accounts"]["a"]
    recorder = Recorder([("DescribeFlowLogs", "region=eu-west-1 ", 1, "UnauthorizedOperation", 403)])
    code, out, _ = run_audit(
        monkeypatch,
        recorder,
        "--endpoint-url",
        moto_url,
        "--accounts",
        a,
        "--regions",
        "us-east-1,eu-west-1",
        "--check",
        "NG-VPC-001",
        "--format",
        "json",
    )
    report = json.loads(out)
    assert code == 2
    [error] = report["errors"]
    assert error["file"] == f"{a}/eu-west-1"
    assert error["message"].startswith(f"account {a}, region eu-west-1: DescribeFlowLogs failed: UnauthorizedOperation")
    assert {f["region"] for f in report["findings"]} == {"us-east-1"}
    assert [a for _, a, _ in recorder.calls].count("ec2:DescribeFlowLogs") == 2  # access denied: not retried


def test_docs_name_each_controls_enforcement_points():
    from netguard.docs import controls_markdown

    text = controls_markdown()
    for control in load_catalog().values():
        section = text.split(f"## {control.id}\n", 1)[1].split("\n## ", 1)[0]
        points = next(line for line in section.splitlines() if line.startswith("- Enforcement points:"))
        assert ("netguard audit" in points) == (control.id in AUDITED), control.id
        assert ("SCP (`" in points) == bool(control.scp), control.id
        for command in control.fix:
            assert command in section


def test_every_page_is_read_and_a_repeated_page_token_stops_the_read(monkeypatch, moto_url, estate):
    """moto answers in one page, so the first page of each read comes from the test; the audit must
    send its token and judge both pages, and a token handed back twice is an error, not a loop."""
    a = estate["accounts"]["a"]
    risky = _policy({"Effect": "Allow", "Action": "ec2:DeleteVpc", "Resource": "*"})
    recorder = Recorder(
        pages=[
            ("DescribeVpcs", "region=us-east-1 ", 1, {"Vpcs": [{"VpcId": "vpc-0first0page"}], "NextToken": "vpcs-2"}),
            (
                "GetAccountAuthorizationDetails",
                "",
                1,
                {
                    "RoleDetailList": [
                        {
                            "RoleName": "paged",
                            "Arn": f"arn:aws:iam::{a}:role/paged",
                            "RolePolicyList": [{"PolicyName": "p", "PolicyDocument": quote(risky)}],
                        }
                    ],
                    "IsTruncated": True,
                    "Marker": "iam-2",
                },
            ),
            ("DescribeRouteTables", "region=eu-west-1 ", 5, {"RouteTables": [], "NextToken": "same"}),
        ]
    )
    code, out, _ = run_audit(
        monkeypatch,
        recorder,
        "--endpoint-url",
        moto_url,
        "--accounts",
        a,
        "--regions",
        "us-east-1,eu-west-1",
        "--check",
        "NG-VPC-001,NG-IAM-001,NG-PCX-002",
        "--format",
        "json",
    )
    report = json.loads(out)
    resources = {f["resource"] for f in report["findings"]}
    assert {"vpc-0first0page", estate["vpc_bare"], "paged/p", "net-cleanup"} <= resources  # both pages judged
    bodies = [body for _, action, body in recorder.calls]
    assert any("'NextToken': 'vpcs-2'" in body for body in bodies)
    assert any("'Marker': 'iam-2'" in body for body in bodies)
    assert code == 2
    assert [e["message"] for e in report["errors"]] == [
        f"account {a}, region eu-west-1: DescribeRouteTables returned the same page token twice"
    ]


def test_the_configs_control_settings_apply(monkeypatch, moto_url, estate, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "controls:\n"
        "  NG-VPC-003: {enabled: false, reason: DHCP options come from the shared VPC}\n"
        "  NG-VPC-001: {severity: low, reason: sandbox estate}\n"
    )
    recorder = Recorder()
    code, out, _ = run_audit(
        monkeypatch,
        recorder,
        "--endpoint-url",
        moto_url,
        "--regions",
        "us-east-1",
        "--check",
        "NG-VPC-*",
        "--config",
        str(config),
        "--format",
        "json",
    )
    report = json.loads(out)
    assert code == 1
    assert {f["control"] for f in report["findings"]} == {"NG-VPC-001"}
    assert {f["severity"] for f in report["findings"]} == {"low"}
    assert "NG-VPC-003" not in report["controls"]["run"]


def test_organization_with_an_account_outside_it(monkeypatch, moto_url, estate):
    a = estate["accounts"]["a"]
    code, out, _ = run_audit(
        monkeypatch,
        Recorder(),
        "--endpoint-url",
        moto_url,
        "--organization",
        "--accounts",
        f"{a},999999999999",
        "--regions",
        "us-east-1",
        "--check",
        "NG-EIP-001",
        "--format",
        "json",
    )
    report = json.loads(out)
    assert code == 2
    assert [e["file"] for e in report["errors"]] == ["999999999999"]
    assert "is not an account of the organization" in report["errors"][0]["message"]
    assert {(f["account"], f["resource"]) for f in report["findings"]} == {
        (a, estate["eip_idle"]),
        (a, estate["eip_detached"]),
    }


def test_live_resource_shapes_the_moto_estate_lacks():
    """Shapes AWS returns that moto does not make: a deleted peering, a transit gateway flow log (no
    traffic type), an address held by a NAT gateway's interface, a default route spelled otherwise,
    and a policy document still URL-encoded."""
    from netguard.audit.checks import check_iam, check_region
    from netguard.audit.collect import IamSnapshot, RegionSnapshot
    from netguard.config import ScanConfig

    snapshot = RegionSnapshot(
        vpcs=[{"VpcId": "vpc-1", "DhcpOptionsId": "dopt-1"}],
        flow_logs=[
            {"FlowLogId": "fl-tgw", "ResourceId": "tgw-1", "FlowLogStatus": "ACTIVE"},
            {"FlowLogId": "fl-off", "ResourceId": "vpc-1", "FlowLogStatus": "INACTIVE", "TrafficType": "ALL"},
        ],
        addresses=[{"AllocationId": "eipalloc-nat", "AssociationId": "eipassoc-1", "NetworkInterfaceId": "eni-nat"}],
        peerings=[
            {
                "VpcPeeringConnectionId": "pcx-gone",
                "Status": {"Code": "deleted"},
                "RequesterVpcInfo": {"OwnerId": "111111111111"},
                "AccepterVpcInfo": {"OwnerId": "999999999999"},
            }
        ],
        route_tables=[
            {
                "RouteTableId": "rtb-1",
                "Routes": [{"DestinationIpv6CidrBlock": "0::/0", "VpcPeeringConnectionId": "pcx-1"}],
            }
        ],
    )
    enabled = frozenset(AUDITED)
    hits = {
        (h.control, h.resource): h for h in check_region(snapshot, "111111111111", "eu-west-1", ScanConfig(), enabled)
    }
    assert set(hits) == {("NG-VPC-001", "vpc-1"), ("NG-PCX-002", "rtb-1")}
    assert "fl-off are not ACTIVE" in hits[("NG-VPC-001", "vpc-1")].message
    assert hits[("NG-PCX-002", "rtb-1")].values == ({"route_table_id": "rtb-1", "ipv6_destination": "0::/0"},)
    encoded = quote(_policy({"Effect": "Allow", "Action": "ec2:Release*", "Resource": "*"}))
    iam = IamSnapshot(
        groups=[
            {
                "GroupName": "ops",
                "Arn": "arn:aws:iam::1:group/ops",
                "GroupPolicyList": [{"PolicyName": "eip", "PolicyDocument": encoded}],
            }
        ]
    )
    iam_hits, problems, notices = check_iam(iam, enabled)
    assert problems == notices == [] and [(h.control, h.resource) for h in iam_hits] == [("NG-IAM-002", "ops/eip")]
    assert iam_hits[0].values == ({"group_name": "ops", "policy_name": "eip"},)
    missing = IamSnapshot(
        roles=[
            {
                "RoleName": "r",
                "Arn": "arn:aws:iam::1:role/r",
                "AttachedManagedPolicies": [{"PolicyArn": "arn:aws:iam::aws:policy/Gone", "PolicyName": "Gone"}],
            }
        ]
    )
    assert check_iam(missing, enabled)[1] == [
        "IAM returned no document for arn:aws:iam::aws:policy/Gone (AWS managed, attached to role r): not judged"
    ]


def _audit_json(monkeypatch, url: str, recorder: Recorder, *args: str) -> tuple[int, dict]:
    code, out, _ = run_audit(monkeypatch, recorder, "--endpoint-url", url, *args, "--format", "json")
    return code, json.loads(out)


def test_organization_accounts_by_state_and_inactive_ones_are_notices(monkeypatch, moto_url, estate):
    """ListAccounts is replacing Status with State: State is read first, Status only without it, and
    an account that is not ACTIVE is named with its state rather than dropped without a word."""
    a, b = estate["accounts"]["a"], estate["accounts"]["b"]
    accounts = [
        {"Id": a, "State": "ACTIVE"},
        {"Id": b, "State": "SUSPENDED"},
        {"Id": "999999999999", "State": "CLOSED", "Status": "ACTIVE"},  # State wins
    ]
    recorder = Recorder(pages=[("ListAccounts", "", 1, {"Accounts": accounts})])
    code, report = _audit_json(
        monkeypatch, moto_url, recorder, "--organization", "--regions", "us-east-1", "--check", "NG-EIP-001"
    )
    assert code == 1 and report["errors"] == []
    assert report["summary"]["accounts_audited"] == 1
    assert {f["account"] for f in report["findings"]} == {a}
    assert f"account {b} is SUSPENDED in the organization (not ACTIVE): not audited" in report["notices"]
    assert "account 999999999999 is CLOSED in the organization (not ACTIVE): not audited" in report["notices"]
    # asked for by name, an account that is not ACTIVE is an error
    recorder = Recorder(pages=[("ListAccounts", "", 1, {"Accounts": accounts})])
    code, report = _audit_json(
        monkeypatch, moto_url, recorder, "--organization", "--accounts", b, "--regions", "us-east-1"
    )
    assert code == 2 and any("is SUSPENDED" in e["message"] for e in report["errors"])


@pytest.mark.parametrize(
    "page",
    [
        ("ListAccounts", "", 1, {"Accounts": []}),
        ("ListAccounts", "", 1, {"Accounts": [{"Id": "111111111111", "State": "SUSPENDED"}]}),
        ("DescribeRegions", "", 1, {"Regions": []}),
    ],
    ids=["no-account", "no-active-account", "no-region"],
)
def test_an_audit_that_judges_nothing_is_an_error_not_a_clean_pass(monkeypatch, moto_url, estate, page):
    args = ["--check", "NG-VPC-001"] + (["--organization"] if page[0] == "ListAccounts" else [])
    code, report = _audit_json(monkeypatch, moto_url, Recorder(pages=[page]), *args)
    assert code == 2
    assert report["findings"] == [] and report["summary"]["scopes_audited"] == 0
    assert any("nothing was judged" in e["message"] for e in report["errors"])


def test_an_odd_answer_is_an_error_of_its_scope_and_the_rest_is_reported(monkeypatch, moto_url, estate):
    a = estate["accounts"]["a"]
    odd_vpcs = ("DescribeVpcs", "region=eu-west-1 ", 1, {"Vpcs": [{"CidrBlock": "10.0.0.0/16"}]})  # no VpcId
    code, report = _audit_json(
        monkeypatch,
        moto_url,
        Recorder(pages=[odd_vpcs]),
        "--accounts",
        a,
        "--regions",
        "us-east-1,eu-west-1",
        "--check",
        "NG-VPC-001",
    )
    assert code == 2
    assert [(e["file"], e["message"]) for e in report["errors"]] == [
        (f"{a}/eu-west-1", f"account {a}, region eu-west-1: not audited: internal error KeyError: 'VpcId'")
    ]
    assert {f["region"] for f in report["findings"]} == {"us-east-1"}
    # a whole account: the first one read gets a region list of an odd shape, the second is still audited
    odd_regions = ("DescribeRegions", "", 1, {"Regions": [{"Endpoint": "ec2.example"}]})
    code, report = _audit_json(
        monkeypatch,
        moto_url,
        Recorder(pages=[odd_regions]),
        "--accounts",
        f"123456789012,{a}",
        "--jobs",
        "1",
        "--regions",
        "us-east-1",
        "--check",
        "NG-VPC-001",
    )
    assert code == 2
    assert [(e["file"], e["message"]) for e in report["errors"]] == [
        ("123456789012", "account 123456789012: not audited: internal error KeyError: 'RegionName'")
    ]
    assert {f["account"] for f in report["findings"]} == {a}


def test_resources_shared_by_another_account_are_left_to_their_owner(monkeypatch, moto_url, estate):
    """VPC sharing: a participant's DescribeVpcs and DescribeRouteTables return the owner's resources,
    which only the owner can log, associate or route: counted in a notice, never judged here."""
    a, owner = estate["accounts"]["a"], "555555555555"
    vpcs = [
        {"VpcId": "vpc-0shared", "OwnerId": owner, "DhcpOptionsId": "default"},
        {"VpcId": "vpc-0mine", "OwnerId": a, "DhcpOptionsId": "default"},
    ]
    default = {"DestinationCidrBlock": "0.0.0.0/0", "VpcPeeringConnectionId": "pcx-1"}
    tables = [{"RouteTableId": "rtb-0shared", "OwnerId": owner, "Routes": [default]}]
    recorder = Recorder(
        pages=[
            ("DescribeVpcs", "region=us-east-1 ", 1, {"Vpcs": vpcs}),
            ("DescribeRouteTables", "region=us-east-1 ", 1, {"RouteTables": tables}),
        ]
    )
    code, report = _audit_json(
        monkeypatch,
        moto_url,
        recorder,
        "--accounts",
        a,
        "--regions",
        "us-east-1",
        "--check",
        "NG-VPC-001,NG-VPC-003,NG-PCX-002",
    )
    assert code == 1 and report["errors"] == []
    judged = {(f["control"], f["resource"], f["file"]) for f in report["findings"]}
    assert {r for _, r, _ in judged} == {"vpc-0mine"}
    assert ("NG-VPC-001", "vpc-0mine", f"arn:aws:ec2:us-east-1:{a}:vpc/vpc-0mine") in judged
    assert [n for n in report["notices"] if "shared" in n] == [
        f"account {a}, region us-east-1: 1 VPC(s), 1 route table(s) owned by account {owner} and shared with this"
        " one (VPC sharing): not judged here, the owner's audit judges them"
    ]


def _fix(control: str, hit, region: str = "eu-west-1") -> tuple[str, ...]:
    from netguard.audit.fixes import fill

    return fill(load_catalog()[control].fix, hit.values, {"region": region, "account": "111111111111"})


def test_dhcp_fix_uses_the_approved_servers_and_keeps_the_other_options():
    import shlex

    from netguard.audit.checks import check_region
    from netguard.audit.collect import RegionSnapshot
    from netguard.config import ScanConfig

    def entry(key: str, *values: str) -> dict:
        return {"Key": key, "Values": [{"Value": v} for v in values]}

    options = {
        "DhcpOptionsId": "dopt-1",
        "DhcpConfigurations": [
            entry("domain-name-servers", "8.8.8.8"),
            entry("domain-name", "corp.example.com"),
            entry("ntp-servers", "10.0.0.5", "10.0.0.6"),
        ],
    }
    snapshot = RegionSnapshot(dhcp_options=[options], vpcs=[{"VpcId": "vpc-1", "DhcpOptionsId": "dopt-1"}])
    only = frozenset({"NG-DHCP-001"})

    def create(config: ScanConfig, dhcp: dict = options) -> list[str]:
        snap = RegionSnapshot(dhcp_options=[dhcp], vpcs=snapshot.vpcs)
        [hit] = check_region(snap, "111111111111", "eu-west-1", config, only)
        commands = _fix("NG-DHCP-001", hit)
        assert "aws ec2 associate-dhcp-options --region eu-west-1 --dhcp-options-id '<NEW_DOPT_ID>' --vpc-id vpc-1" in (
            commands
        )
        [line] = [c for c in commands if c.startswith("aws ec2 create-dhcp-options")]
        words = shlex.split(line)
        return words[words.index("--dhcp-configurations") + 1 :]

    corporate = ScanConfig(approved_dns_servers=("10.0.0.2", "10.0.0.3"))
    assert create(corporate) == [
        "Key=domain-name-servers,Values=10.0.0.2,10.0.0.3",
        "Key=domain-name,Values=corp.example.com",
        "Key=ntp-servers,Values=10.0.0.5,10.0.0.6",
    ]
    assert create(ScanConfig(approved_dns_servers=()))[0] == "Key=domain-name-servers,Values=<APPROVED_DNS>"
    many = ScanConfig(approved_dns_servers=tuple(f"10.0.0.{n}" for n in range(2, 8)))
    assert create(many)[0] == "Key=domain-name-servers,Values=10.0.0.2,10.0.0.3,10.0.0.4,10.0.0.5"  # AWS takes four
    # a value the shorthand would split (two search domains): the whole list as JSON
    spaced = {
        **options,
        "DhcpConfigurations": [entry("domain-name-servers", "8.8.8.8"), entry("domain-name", "a.example b.example")],
    }
    [argument] = create(corporate, spaced)
    assert json.loads(argument) == [
        {"Key": "domain-name-servers", "Values": ["10.0.0.2", "10.0.0.3"]},
        {"Key": "domain-name", "Values": ["a.example b.example"]},
    ]


def test_a_peering_pending_this_accounts_acceptance_is_rejected_not_deleted():
    from netguard.audit.checks import check_region
    from netguard.audit.collect import RegionSnapshot
    from netguard.config import ScanConfig

    def fix(status: str, requester: str, accepter: str) -> tuple[str, ...]:
        peering = {
            "VpcPeeringConnectionId": "pcx-1",
            "Status": {"Code": status},
            "RequesterVpcInfo": {"OwnerId": requester},
            "AccepterVpcInfo": {"OwnerId": accepter},
        }
        snapshot = RegionSnapshot(peerings=[peering])
        [hit] = check_region(snapshot, "111111111111", "eu-west-1", ScanConfig(), frozenset({"NG-PCX-001"}))
        return tuple(c for c in _fix("NG-PCX-001", hit) if not c.startswith("#"))

    reject = "aws ec2 reject-vpc-peering-connection --region eu-west-1 --vpc-peering-connection-id pcx-1"
    delete = "aws ec2 delete-vpc-peering-connection --region eu-west-1 --vpc-peering-connection-id pcx-1"
    assert fix("pending-acceptance", "999999999999", "111111111111") == (reject,)
    assert fix("pending-acceptance", "111111111111", "999999999999") == (delete,)  # the requester deletes
    assert fix("active", "999999999999", "111111111111") == (delete,)


def test_a_peering_is_named_by_its_requester_s_arn_in_either_account():
    """A peering connection is the requester's resource: seen from the accepter's account (and region),
    its ARN still names the requester's, so both accounts' findings and suppressions agree on it."""
    from netguard.audit.checks import check_region
    from netguard.audit.collect import RegionSnapshot
    from netguard.config import ScanConfig

    peering = {
        "VpcPeeringConnectionId": "pcx-1",
        "Status": {"Code": "active"},
        "RequesterVpcInfo": {"OwnerId": "999999999999", "Region": "us-east-1"},
        "AccepterVpcInfo": {"OwnerId": "111111111111", "Region": "eu-west-1"},
    }
    [hit] = check_region(
        RegionSnapshot(peerings=[peering]), "111111111111", "eu-west-1", ScanConfig(), frozenset({"NG-PCX-001"})
    )
    assert hit.arn == "arn:aws:ec2:us-east-1:999999999999:vpc-peering-connection/pcx-1"


def test_an_address_on_a_detached_interface_fails_and_one_in_use_passes():
    from netguard.audit.checks import check_region
    from netguard.audit.collect import RegionSnapshot
    from netguard.config import ScanConfig

    addresses = [
        {"AllocationId": "eipalloc-1", "AssociationId": "eipassoc-1", "NetworkInterfaceId": "eni-gone"},
        {"AllocationId": "eipalloc-2", "AssociationId": "eipassoc-2", "NetworkInterfaceId": "eni-nat"},
    ]
    interfaces = [
        {"NetworkInterfaceId": "eni-gone", "Status": "available"},
        {"NetworkInterfaceId": "eni-nat", "Status": "in-use"},
    ]
    snapshot = RegionSnapshot(addresses=addresses, interfaces=interfaces)
    [hit] = check_region(snapshot, "111111111111", "eu-west-1", ScanConfig(), frozenset({"NG-EIP-001"}))
    assert hit.resource == "eipalloc-1" and "eni-gone, which is attached to nothing" in hit.message
    assert [c for c in _fix("NG-EIP-001", hit) if not c.startswith("#")] == [
        "aws ec2 attach-network-interface --region eu-west-1 --network-interface-id eni-gone"
        " --instance-id '<INSTANCE_ID>' --device-index '<DEVICE_INDEX>'",
        "aws ec2 disassociate-address --region eu-west-1 --association-id eipassoc-1",
        "aws ec2 release-address --region eu-west-1 --allocation-id eipalloc-1",
    ]


def test_a_flow_log_whose_delivery_fails_still_logs_but_is_named_in_a_notice():
    from netguard.audit.checks import check_region, region_notices
    from netguard.audit.collect import RegionSnapshot
    from netguard.config import ScanConfig

    log = {
        "FlowLogId": "fl-1",
        "ResourceId": "vpc-1",
        "FlowLogStatus": "ACTIVE",
        "TrafficType": "ALL",
        "DeliverLogsStatus": "FAILED",
        "DeliverLogsErrorMessage": "Access error",
    }
    snapshot = RegionSnapshot(vpcs=[{"VpcId": "vpc-1", "DhcpOptionsId": "dopt-1"}], flow_logs=[log])
    enabled = frozenset({"NG-VPC-001"})
    assert check_region(snapshot, "111111111111", "eu-west-1", ScanConfig(), enabled) == []
    assert region_notices(snapshot, "111111111111", "eu-west-1", enabled) == [
        "account 111111111111, region eu-west-1: flow log fl-1 on vpc-1 is ACTIVE but its delivery is failing"
        " (DeliverLogsStatus FAILED: Access error); it still counts for NG-VPC-001: fix its destination or"
        " delivery role"
    ]
    assert region_notices(snapshot, "111111111111", "eu-west-1", frozenset({"NG-EIP-001"})) == []


def _unquoted(command: str) -> str:
    """The parts of a command the shell reads outside single quotes."""
    import re

    return re.sub(r"'[^']*'", "", command)


def test_no_printed_fix_has_a_bare_redirection(org_audit):
    """An unedited paste of a fix must fail at AWS, never let the shell read <X or >Y as a redirection."""
    from netguard.audit.fixes import Placeholder, fill, placeholders

    printed = [c for f in org_audit["report"]["findings"] for c in f["fix"]]
    assert any("'<" in c for c in printed)
    for control in load_catalog().values():  # every template, filled with every value it can take
        values = {name: Placeholder("<X>") for template in control.fix for name in placeholders(template)}
        printed += fill(control.fix, [values], {})
    for command in printed:
        if not command.startswith("#"):
            assert not {"<", ">"} & set(_unquoted(command)), command


def test_service_linked_roles_are_left_out_of_the_iam_controls():
    from netguard.audit.checks import check_iam
    from netguard.audit.collect import IamSnapshot

    managed = "arn:aws:iam::aws:policy/aws-service-role/NetworkWide"
    document = _policy({"Effect": "Allow", "Action": "ec2:DeleteVpc", "Resource": "*"})
    attached = [{"PolicyArn": managed, "PolicyName": "NetworkWide"}]
    snapshot = IamSnapshot(
        roles=[
            {
                "RoleName": "AWSServiceRoleForNetwork",
                "Path": "/aws-service-role/network.amazonaws.com/",
                "Arn": "arn:aws:iam::1:role/aws-service-role/network.amazonaws.com/AWSServiceRoleForNetwork",
                "AttachedManagedPolicies": attached,
                "RolePolicyList": [{"PolicyName": "inline", "PolicyDocument": document}],
            },
            {"RoleName": "ops", "Path": "/", "Arn": "arn:aws:iam::1:role/ops", "AttachedManagedPolicies": attached},
        ],
        policies=[
            {
                "Arn": managed,
                "PolicyName": "NetworkWide",
                "PolicyVersionList": [{"IsDefaultVersion": True, "Document": document}],
            }
        ],
    )
    hits, problems, notices = check_iam(snapshot, frozenset({"NG-IAM-001"}))
    assert problems == []
    assert [(h.resource, h.values) for h in hits] == [
        ("NetworkWide", ({"managed_policy_arn": managed, "attached_role": "ops"},))
    ]
    assert notices == [
        "1 service-linked role(s) not judged (path /aws-service-role/: AWS manages their policies and no one in"
        " the account can change them): AWSServiceRoleForNetwork"
    ]


def test_region_names_with_a_longer_prefix_are_accepted():
    import argparse

    from netguard.audit.command import _REGION, _ids

    parse = _ids(_REGION, "region names")
    assert parse("eu-west-1,eusc-de-east-1,us-gov-west-1") == ["eu-west-1", "eusc-de-east-1", "us-gov-west-1"]
    with pytest.raises(argparse.ArgumentTypeError):
        parse("europe-west-1")
