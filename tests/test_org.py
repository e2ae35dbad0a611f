"""Rolling guardrails out through AWS Organizations, against moto (in-process and a real moto_server).

moto serves the Organizations API but does not enforce SCP size, attachment or last-SCP limits, nor
apply SCPs to calls; those guards are tested on netguard's own code. Nothing here ran against AWS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from netguard.errors import NetguardError
from netguard.org import rollout
from netguard.policy.orgconfig import load_org_config
from tests.conftest import FIXTURES, ROOT, running_moto_server

CONFIG = FIXTURES / "org" / "org-targets.yaml"


pytestmark = pytest.mark.usefixtures("fake_aws_credentials")


def build_org(client) -> dict[str, str]:
    client.create_organization(FeatureSet="ALL")
    root = client.list_roots()["Roots"][0]["Id"]
    client.enable_policy_type(RootId=root, PolicyType="SERVICE_CONTROL_POLICY")
    sandbox = client.create_organizational_unit(ParentId=root, Name="Sandbox")["OrganizationalUnit"]["Id"]
    workloads = client.create_organizational_unit(ParentId=root, Name="Workloads")["OrganizationalUnit"]["Id"]
    prod = client.create_organizational_unit(ParentId=workloads, Name="Prod")["OrganizationalUnit"]["Id"]
    return {"root": root, "sandbox": sandbox, "prod": prod}


class WriteCounter:
    """Counts Organizations write calls by hooking botocore's request events."""

    def __init__(self, client) -> None:
        self.count = 0
        for operation in rollout.WRITE_OPERATIONS:
            client.meta.events.register(f"before-call.organizations.{operation}", self._hit)

    def _hit(self, **_kwargs) -> None:
        self.count += 1


@pytest.fixture
def moto_org():
    with mock_aws():
        client = boto3.client("organizations", region_name="us-east-1")
        ids = build_org(client)
        yield client, ids


def _names(client, target: str) -> set[str]:
    return {
        p["Name"] for p in client.list_policies_for_target(TargetId=target, Filter="SERVICE_CONTROL_POLICY")["Policies"]
    }


def test_plan_apply_then_nothing_to_do(moto_org):
    client, ids = moto_org
    org = load_org_config(CONFIG)
    organization = rollout.Organization(client, sleep=lambda _: None)
    first = rollout.plan(org, organization)
    actions = sorted((c.action, c.policy, c.target_label or "") for c in first.changes)
    assert [a for a in actions if a[0] == "create"] == [
        ("create", f"netguard-{g}", "")
        for g in sorted(
            ["ng-deny-eip-management", "ng-deny-network-deletes", "ng-deny-topology-creation", "ng-protect-flow-logs"]
        )
    ]
    assert sum(1 for a in actions if a[0] == "attach") == 2 + 4 + 1
    assert [c.policy for c in first.changes if c.action == "tag"] == sorted(c.policy for c in first.changes[:4])
    counter = WriteCounter(client)
    rollout.apply(org, organization, first.changes)
    assert counter.count == 4 + 7 + 4  # creates, attaches, then each policy's record of its targets
    assert _names(client, ids["prod"]) == {
        "FullAWSAccess",
        "netguard-ng-deny-network-deletes",
        "netguard-ng-deny-eip-management",
        "netguard-ng-deny-topology-creation",
        "netguard-ng-protect-flow-logs",
    }
    assert rollout.plan(org, organization).changes == []
    counter.count = 0
    rollout.apply(org, organization, rollout.plan(org, organization).changes)
    assert counter.count == 0, "a second apply must make no write calls"
    policy = next(
        p
        for p in client.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]
        if p["Name"] == "netguard-ng-deny-network-deletes"
    )
    content = client.describe_policy(PolicyId=policy["Id"])["Policy"]["Content"]
    assert " " not in content and "\n" not in content  # minified before CreatePolicy
    tags = {t["Key"]: t["Value"] for t in client.list_tags_for_resource(ResourceId=policy["Id"])["Tags"]}
    assert tags["managed-by"] == "netguard" and tags["netguard-hash"] == rollout.content_hash(content)
    assert tags["netguard-targets"] == " ".join(sorted([ids["sandbox"], ids["prod"]]))


def test_staged_rollout_canary_first(moto_org):
    client, ids = moto_org
    org = load_org_config(CONFIG)
    organization = rollout.Organization(client, sleep=lambda _: None)
    canary = rollout.plan(org, organization, stage="canary")
    assert {c.target for c in canary.changes if c.action == "attach"} == {ids["sandbox"]}
    rollout.apply(org, organization, canary.changes)
    assert _names(client, ids["prod"]) == {"FullAWSAccess"}
    assert "netguard-ng-deny-network-deletes" in _names(client, ids["sandbox"])
    rest = rollout.plan(org, organization, stage="all")
    assert {c.target for c in rest.changes if c.action == "attach"} == {ids["prod"], ids["root"]}
    assert not any(c.action == "create" for c in rest.changes)


def test_drift_after_a_hand_edit_and_a_manual_detach(moto_org):
    client, ids = moto_org
    org = load_org_config(CONFIG)
    organization = rollout.Organization(client, sleep=lambda _: None)
    rollout.apply(org, organization, rollout.plan(org, organization).changes)
    assert rollout.drift(org, organization).changes == []
    policy = next(
        p
        for p in client.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]
        if p["Name"] == "netguard-ng-deny-eip-management"
    )
    edited = json.loads(client.describe_policy(PolicyId=policy["Id"])["Policy"]["Content"])
    edited["Statement"][0]["Action"] = ["ec2:AllocateAddress"]
    client.update_policy(PolicyId=policy["Id"], Content=json.dumps(edited))
    client.detach_policy(PolicyId=policy["Id"], TargetId=ids["sandbox"])
    found = rollout.drift(org, organization)
    assert {(c.action, c.policy, c.target) for c in found.changes} == {
        ("update", "netguard-ng-deny-eip-management", None),
        ("attach", "netguard-ng-deny-eip-management", ids["sandbox"]),
    }
    assert '\n+        "ec2:DisassociateAddress",\n' in found.diffs["netguard-ng-deny-eip-management"]
    rollout.apply(org, organization, found.changes)
    assert rollout.drift(org, organization).changes == []


def test_a_run_killed_between_writes_converges_on_the_next_apply(moto_org):
    client, ids = moto_org
    org = load_org_config(CONFIG)
    organization = rollout.Organization(client, sleep=lambda _: None)
    changes = rollout.plan(org, organization).changes
    calls = {"n": 0}

    def kill_after_five(**_kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt("killed between two writes")

    handler_names = [f"before-call.organizations.{op}" for op in rollout.WRITE_OPERATIONS]
    for name in handler_names:
        client.meta.events.register(name, kill_after_five)
    with pytest.raises(KeyboardInterrupt):
        rollout.apply(org, organization, changes)
    for name in handler_names:
        client.meta.events.unregister(name, kill_after_five)
    remaining = rollout.plan(org, organization).changes
    assert 0 < len(remaining) < len(changes)
    rollout.apply(org, organization, remaining)
    assert rollout.plan(org, organization).changes == []
    assert len(_names(client, ids["prod"])) == 5


def test_guards_refuse_before_any_write(moto_org, tmp_path):
    client, ids = moto_org
    organization = rollout.Organization(client, sleep=lambda _: None)
    counter = WriteCounter(client)

    def config(extra: str) -> Path:
        path = tmp_path / "org.yaml"
        path.write_text(CONFIG.read_text() + extra)
        return path

    with pytest.raises(NetguardError, match="over the SCP limit of 400"):
        rollout.plan(load_org_config(config("scp_size_limit: 400\n")), organization)
    with pytest.raises(NetguardError, match="over the quota of 3"):
        rollout.plan(load_org_config(config("max_scps_per_target: 3\n")), organization)
    for i in range(6):
        policy = client.create_policy(
            Content='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}',
            Description="x",
            Name=f"team-{i}",
            Type="SERVICE_CONTROL_POLICY",
        )["Policy"]["PolicySummary"]["Id"]
        client.attach_policy(PolicyId=policy, TargetId=ids["prod"])
    with pytest.raises(NetguardError, match="would have 11 SCPs attached, over the quota of 10"):
        rollout.plan(load_org_config(CONFIG), organization)
    assert counter.count == 12  # only the test's own setup wrote (6 creates, 6 attaches)


def test_never_leaves_a_target_without_an_scp(moto_org, tmp_path):
    client, ids = moto_org
    org = load_org_config(CONFIG)
    organization = rollout.Organization(client, sleep=lambda _: None)
    rollout.apply(org, organization, rollout.plan(org, organization).changes)
    client.detach_policy(PolicyId="p-FullAWSAccess", TargetId=ids["sandbox"])
    smaller = tmp_path / "org.yaml"
    smaller.write_text(
        CONFIG.read_text().replace(
            "  - target: /Sandbox\n    guardrails: [ng-deny-network-deletes, ng-deny-eip-management]\n"
            "    stage: canary\n",
            "",
        )
    )
    with pytest.raises(NetguardError, match="no SCP attached"):
        rollout.plan(load_org_config(smaller), organization)


def test_scp_type_must_be_enabled(tmp_path):
    with mock_aws():
        client = boto3.client("organizations", region_name="us-east-1")
        client.create_organization(FeatureSet="ALL")
        with pytest.raises(NetguardError, match="enable-policy-type --root-id r-"):
            rollout.plan(load_org_config(CONFIG), rollout.Organization(client))


def test_concurrent_modification_is_retried():
    from botocore.exceptions import ClientError

    calls, sleeps = [], []

    class Flaky:
        def attach_policy(self, **kwargs):
            calls.append(kwargs)
            if len(calls) < 3:
                raise ClientError(
                    {"Error": {"Code": "ConcurrentModificationException", "Message": "busy"}}, "AttachPolicy"
                )
            return {}

    rollout.Organization(Flaky(), sleep=sleeps.append).call("attach_policy", PolicyId="p", TargetId="t")
    assert len(calls) == 3 and sleeps == [0.5, 1.0]


def test_validate_online_with_access_analyzer_stubbed():
    client = boto3.client("accessanalyzer", region_name="us-east-1")
    org = load_org_config(CONFIG)
    stubber = Stubber(client)
    desired = rollout.desired_policies(org)
    for name, want in desired.items():
        findings = []
        if name.endswith("ng-protect-flow-logs"):
            findings = [
                {
                    "findingDetails": "Resource pattern never matches",
                    "findingType": "WARNING",
                    "issueCode": "INVALID_ARN_RESOURCE",
                    "learnMoreLink": "https://example.com",
                    "locations": [],
                }
            ]
        stubber.add_response(
            "validate_policy",
            {"findings": findings},
            {"policyDocument": want.content, "policyType": "SERVICE_CONTROL_POLICY"},
        )
    with stubber:
        found = rollout.validate_online(client, org)
    stubber.assert_no_pending_responses()
    assert found == [
        {
            "policy": "netguard-ng-protect-flow-logs",
            "type": "WARNING",
            "code": "INVALID_ARN_RESOURCE",
            "detail": "Resource pattern never matches",
        }
    ]


@pytest.fixture
def moto_server():
    with running_moto_server() as url:
        yield url


def test_end_to_end_against_a_moto_server(moto_server):
    client = boto3.client("organizations", region_name="us-east-1", endpoint_url=moto_server)
    ids = build_org(client)

    def netguard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "netguard",
                "org",
                *args,
                "--config",
                str(CONFIG),
                "--endpoint-url",
                moto_server,
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
            env=os.environ.copy(),
            check=False,
        )

    planned = netguard("plan")
    assert planned.returncode == 0, planned.stderr
    assert len(json.loads(planned.stdout)["changes"]) == 4 + 7 + 4
    shown = netguard("apply")
    assert shown.returncode == 0 and _names(client, ids["prod"]) == {"FullAWSAccess"}
    applied = netguard("apply", "--yes")
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["write_calls"] == 15
    assert json.loads(netguard("plan").stdout)["changes"] == []
    assert netguard("drift").returncode == 0
    policy = next(
        p
        for p in client.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]
        if p["Name"] == "netguard-ng-protect-flow-logs"
    )
    client.update_policy(
        PolicyId=policy["Id"],
        Content='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}',
    )
    drifted = netguard("drift")
    assert drifted.returncode == 1
    report = json.loads(drifted.stdout)
    assert [(c["action"], c["policy"]) for c in report["changes"]] == [("update", "netguard-ng-protect-flow-logs")]
    assert "DenyFlowLogDeletion" in report["diffs"]["netguard-ng-protect-flow-logs"]


# --- a write whose connection drops (issue #13) ----------------------------------------------------


def _drop_answer_of_write(client, number: int, then_down: bool = False) -> dict:
    """Drop the connection of the number-th write after AWS (moto) carried it out, so its answer is
    lost; with then_down, every later attempt fails before it reaches AWS."""
    from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

    state = {"writes": 0, "down": False}

    def before(request, **_kwargs):  # runs before moto: the request never arrives
        if state["down"]:
            raise EndpointConnectionError(endpoint_url=request.url)

    def after(request, **_kwargs):  # runs after moto: the write is made, its answer lost
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        if target.rsplit(".", 1)[-1] not in rollout.WRITE_OPERATIONS:
            return
        state["writes"] += 1
        if state["writes"] == number:
            state["down"] = then_down
            raise ConnectionClosedError(endpoint_url=request.url)

    for operation in rollout.WRITE_OPERATIONS:
        client.meta.events.register_first(f"before-send.organizations.{operation}", before)
    client.meta.events.register_last("before-send", after)  # moto answers on before-send too, earlier
    return state


@pytest.mark.parametrize("number", [3, 6])  # a CreatePolicy, an AttachPolicy
def test_a_write_whose_answer_was_lost_is_recognised_and_apply_converges(moto_org, number):
    client, ids = moto_org
    org = load_org_config(CONFIG)
    organization = rollout.Organization(client, sleep=lambda _: None)
    changes = rollout.plan(org, organization).changes
    _drop_answer_of_write(client, number)
    notes: list[str] = []
    assert rollout.apply(org, organization, changes, notes) == len(changes)
    if number == 3:  # sent again, CreatePolicy meets the policy its first attempt made
        (note,) = notes
        assert note.startswith("CreatePolicy netguard-ng-deny-topology-creation: AWS answers DuplicatePolicyException")
        assert "already made, by an earlier attempt whose answer a dropped connection lost" in note
    else:  # moto takes a second AttachPolicy silently (AWS answers DuplicatePolicyAttachmentException)
        assert notes == []
    assert rollout.plan(org, organization).changes == []
    names = [p["Name"] for p in client.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]]
    assert len(names) == len(set(names)) == 5  # FullAWSAccess and the four guardrails, none twice
    assert len(_names(client, ids["prod"])) == 5


def test_a_dropped_connection_stops_apply_naming_the_writes_and_the_rerun_finishes(moto_org, monkeypatch, capsys):
    from netguard.cli import main

    client, ids = moto_org
    real = rollout.make_client
    dropped: dict = {}

    def client_that_drops(service, **kwargs):
        made = real(service, **kwargs)
        if not dropped:
            dropped.update(_drop_answer_of_write(made, 3, then_down=True))
        return made

    monkeypatch.setattr(rollout, "make_client", client_that_drops)
    start = time.monotonic()
    code = main(["org", "apply", "--yes", "--config", str(CONFIG), "--aws-retry-seconds", "1"])
    out, err = capsys.readouterr()
    assert code == 2 and time.monotonic() - start < 10 and "Traceback" not in err
    assert err.startswith("netguard: error: organization: CreatePolicy netguard-ng-deny-topology-creation failed")
    assert "its connection dropped, so AWS may or may not have carried it out" in err
    assert (
        "writes made before the failure (2): CreatePolicy netguard-ng-deny-eip-management,"
        " CreatePolicy netguard-ng-deny-network-deletes; not made (12): CreatePolicy netguard-ng-protect-flow-logs,"
        " AttachPolicy netguard-ng-deny-eip-management to /Sandbox," in err
    )
    assert "DuplicatePolicyException" not in err

    monkeypatch.setattr(rollout, "make_client", real)
    code = main(["org", "apply", "--yes", "--config", str(CONFIG)])
    out, err = capsys.readouterr()
    assert code == 0, err
    for name in ("ng-deny-eip-management", "ng-deny-network-deletes", "ng-deny-topology-creation"):
        assert (
            f"note: netguard-{name} exists (netguard's) but is attached nowhere (an apply that stopped before"
            " attaching it, or detached by hand); this plan attaches it"
        ) in out
    assert "create  netguard-ng-protect-flow-logs" in out and out.count("create ") == 1
    assert "netguard: 12 changes applied" in out
    assert main(["org", "plan", "--config", str(CONFIG)]) == 0
    assert "netguard: 0 changes planned" in capsys.readouterr().out
    assert len(_names(client, ids["prod"])) == 5


def test_a_policy_of_the_same_name_that_is_not_netguards_is_not_adopted(moto_org):
    from botocore.exceptions import ConnectionClosedError

    client, _ = moto_org
    org = load_org_config(CONFIG)
    organization = rollout.Organization(client, sleep=lambda _: None)
    changes = rollout.plan(org, organization).changes

    def someone_else_first(request, **_kwargs):
        if b"netguard-ng-deny-eip-management" in (request.body or b""):
            client.meta.events.unregister("before-send.organizations.CreatePolicy", someone_else_first)
            other = boto3.client("organizations", region_name="us-east-1")
            other.create_policy(
                Content='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}',
                Description="not netguard's",
                Name="netguard-ng-deny-eip-management",
                Type="SERVICE_CONTROL_POLICY",
            )
            raise ConnectionClosedError(endpoint_url=request.url)

    client.meta.events.register_first("before-send.organizations.CreatePolicy", someone_else_first)
    with pytest.raises(NetguardError, match=r"is not the one netguard sends .* nothing more written"):
        rollout.apply(org, organization, changes)


def test_a_policy_made_without_tags_is_named_and_tagged_on_the_rerun(moto_org):
    client, _ = moto_org
    org = load_org_config(CONFIG)
    want = rollout.desired_policies(org)["netguard-ng-deny-eip-management"]
    client.create_policy(
        Content=want.content, Description="x", Name=want.name, Type="SERVICE_CONTROL_POLICY"
    )  # as an apply that stopped between creating and tagging would leave it
    organization = rollout.Organization(client, sleep=lambda _: None)
    found = rollout.plan(org, organization)
    assert ("tag", want.name) in {(c.action, c.policy) for c in found.changes}
    assert any(
        n.startswith(f"{want.name} is not tagged managed-by=netguard") and "this plan tags it" in n for n in found.notes
    )
    rollout.apply(org, organization, found.changes)
    assert rollout.plan(org, organization).changes == []


@pytest.mark.parametrize(
    ("action", "code"),
    [("attach", "DuplicatePolicyAttachmentException"), ("detach", "PolicyNotAttachedException")],
)
def test_an_attachment_already_made_when_sent_again_counts_as_done(moto_org, action, code):
    from netguard.org import aws

    client, ids = moto_org
    org = load_org_config(CONFIG)
    organization = rollout.Organization(client, sleep=lambda _: None)
    rollout.apply(org, organization, rollout.plan(org, organization).changes)
    real = organization.call

    def answer_already_done(operation, **kwargs):
        if operation == f"{action}_policy":
            raise aws.AwsCallFailed("organization", f"{operation} failed: {code}", code=code, uncertain=True)
        return real(operation, **kwargs)

    organization.call = answer_already_done
    change = rollout.Change(action, "netguard-ng-deny-eip-management", ids["sandbox"], "/Sandbox")
    notes: list[str] = []
    assert rollout.apply(org, organization, [change], notes) == 1
    assert notes == [
        f"{aws.api_name(action + '_policy')} netguard-ng-deny-eip-management {'to' if action == 'attach' else 'from'}"
        f" /Sandbox: AWS answers {code}: already made, by an earlier attempt whose answer a dropped connection lost"
        " (or by another run); found it made as netguard sends it"
    ]


# --- issue #17: what drift calls a hand edit, canaried content updates ------------------------------


def _policy_id(client, name: str) -> str:
    return next(p["Id"] for p in client.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"] if p["Name"] == name)


def _variant(tmp_path: Path, old: str, new: str, name: str = "org.yaml") -> Path:
    """The test config with one edit, as a user would make it in org.yaml."""
    text = CONFIG.read_text()
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new))
    return path


ADD_EXEMPTION = (
    "  - arn:aws:iam::*:role/network/NetworkAdmin\n",
    "  - arn:aws:iam::*:role/network/NetworkAdmin\n  - arn:aws:iam::*:role/network/Automation\n",
)  # every guardrail's exemption list grows, so every guardrail's content changes


def _kinds(found: rollout.Plan) -> set[tuple[str, str, str | None, str]]:
    return {(c.action, c.policy, c.target, c.kind) for c in found.changes}


def test_drift_tells_a_hand_edit_from_config_not_yet_applied(moto_org, tmp_path):
    client, ids = moto_org
    organization = rollout.Organization(client, sleep=lambda _: None)
    org = load_org_config(CONFIG)
    rollout.apply(org, organization, rollout.plan(org, organization).changes)

    more = load_org_config(
        _variant(
            tmp_path,
            "    guardrails: [ng-deny-network-deletes, ng-deny-eip-management]\n",
            "    guardrails: [ng-deny-network-deletes, ng-deny-eip-management, ng-deny-topology-creation]\n",
        )
    )
    topology = "netguard-ng-deny-topology-creation"
    found = rollout.drift(more, organization)
    assert _kinds(found) == {
        ("attach", topology, ids["sandbox"], rollout.UNAPPLIED),
        ("tag", topology, None, rollout.UNAPPLIED),
    }
    assert found.hand_edits == []

    eip, deletes, flow = (
        "netguard-ng-deny-eip-management",
        "netguard-ng-deny-network-deletes",
        "netguard-ng-protect-flow-logs",
    )
    client.detach_policy(PolicyId=_policy_id(client, eip), TargetId=ids["prod"])
    client.attach_policy(PolicyId=_policy_id(client, deletes), TargetId=ids["root"])
    client.update_policy(
        PolicyId=_policy_id(client, flow),
        Content='{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ec2:X","Resource":"*"}]}',
    )
    found = rollout.drift(more, organization)
    assert _kinds(found) == {
        ("attach", topology, ids["sandbox"], rollout.UNAPPLIED),
        ("tag", topology, None, rollout.UNAPPLIED),
        ("attach", eip, ids["prod"], rollout.HAND_EDIT),  # detached by hand: netguard had left it there
        ("detach", deletes, ids["root"], rollout.HAND_EDIT),  # attached by hand: netguard never put it there
        ("update", flow, None, rollout.HAND_EDIT),  # its content is not what netguard wrote
    }
    assert found.to_dict()["summary"] == {"changes": 5, "hand-edit": 3, "unapplied": 2}
    rollout.apply(more, organization, found.changes)
    assert rollout.drift(more, organization).changes == []

    content_change = load_org_config(_variant(tmp_path, *ADD_EXEMPTION, name="exempt.yaml"))
    found = rollout.drift(content_change, organization)
    assert {c.kind for c in found.changes} == {rollout.UNAPPLIED}
    assert sum(c.action == "update" for c in found.changes) == 4


def test_a_target_record_too_long_for_a_tag_is_a_hash_and_judges_the_whole_set():
    many = [f"ou-abcd-{i:08d}" for i in range(40)]
    record = rollout.targets_record(many)
    assert record.startswith("sha256:") and len(record) <= rollout.TAG_VALUE_MAX
    assert rollout.targets_record(["ou-b", "ou-a", "ou-b"]) == "ou-a ou-b"
    have = {"content": "{}", "tags": {rollout.TARGETS_TAG: record}, "targets": many}
    current = {"netguard-x": have}
    new_target = rollout.Change("attach", "netguard-x", "ou-new")
    assert rollout._kind(new_target, current) == rollout.UNAPPLIED
    have["targets"] = many[1:]  # one detached by hand: which one, a hash cannot say, but the set differs
    assert rollout._kind(rollout.Change("attach", "netguard-x", many[0]), current) == rollout.HAND_EDIT


def test_a_policy_without_a_target_record_is_recorded_and_counted_as_hand_edited_meanwhile(moto_org, tmp_path):
    client, ids = moto_org
    organization = rollout.Organization(client, sleep=lambda _: None)
    org = load_org_config(CONFIG)
    rollout.apply(org, organization, rollout.plan(org, organization).changes)
    eip = "netguard-ng-deny-eip-management"
    client.untag_resource(ResourceId=_policy_id(client, eip), TagKeys=[rollout.TARGETS_TAG])  # an older netguard
    found = rollout.drift(org, organization)
    assert _kinds(found) == {("tag", eip, None, rollout.UNAPPLIED)}
    assert any(n.startswith(f"{eip} has no netguard-targets record (tagged by an older netguard)") for n in found.notes)
    client.detach_policy(PolicyId=_policy_id(client, eip), TargetId=ids["prod"])
    assert ("attach", eip, ids["prod"], rollout.HAND_EDIT) in _kinds(rollout.drift(org, organization))
    rollout.apply(org, organization, rollout.plan(org, organization).changes)
    assert rollout.drift(org, organization).changes == []


def _content_at(client, target: str, guardrail: str) -> tuple[str, str]:
    """(name, content) of the netguard policy carrying `guardrail` on `target`; exactly one must."""
    (name,) = [n for n in _names(client, target) if n.startswith(f"netguard-{guardrail}")]
    return name, client.describe_policy(PolicyId=_policy_id(client, name))["Policy"]["Content"]


def test_a_content_update_is_canaried_then_promoted(moto_org, tmp_path):
    client, ids = moto_org
    organization = rollout.Organization(client, sleep=lambda _: None)
    old = load_org_config(CONFIG)
    rollout.apply(old, organization, rollout.plan(old, organization).changes)
    new = load_org_config(_variant(tmp_path, *ADD_EXEMPTION))
    old_content = rollout.desired_policies(old)["netguard-ng-deny-eip-management"].content
    new_content = rollout.desired_policies(new)["netguard-ng-deny-eip-management"].content
    assert old_content != new_content

    canary = rollout.plan(new, organization, stage="canary")
    steps = [(c.action, c.policy, c.target) for c in canary.changes if c.action != "tag"]
    assert steps == [
        ("create", "netguard-ng-deny-eip-management-canary", None),
        ("create", "netguard-ng-deny-network-deletes-canary", None),
        ("attach", "netguard-ng-deny-eip-management-canary", ids["sandbox"]),
        ("attach", "netguard-ng-deny-network-deletes-canary", ids["sandbox"]),
        ("detach", "netguard-ng-deny-eip-management", ids["sandbox"]),
        ("detach", "netguard-ng-deny-network-deletes", ids["sandbox"]),
    ]
    assert "Automation" in canary.diffs["netguard-ng-deny-eip-management-canary"]
    assert any("deferred to --stage all" in n and "ng-protect-flow-logs" in n for n in canary.notes)
    rollout.apply(new, organization, canary.changes)

    assert _content_at(client, ids["sandbox"], "ng-deny-eip-management") == (
        "netguard-ng-deny-eip-management-canary",
        new_content,
    )
    assert _content_at(client, ids["prod"], "ng-deny-eip-management") == (
        "netguard-ng-deny-eip-management",
        old_content,
    )
    canary_tags = client.list_tags_for_resource(ResourceId=_policy_id(client, "netguard-ng-deny-eip-management-canary"))
    assert {"Key": "managed-by", "Value": "netguard"} in canary_tags["Tags"]
    assert rollout.plan(new, organization, stage="canary").changes == []  # a rerun of the canary stage is a no-op
    waiting = rollout.drift(new, organization)
    assert waiting.changes and waiting.hand_edits == []  # a canary not yet promoted is config not applied

    promote = rollout.plan(new, organization, stage="all")
    assert [(c.action, c.policy, c.target) for c in promote.changes if "eip" in c.policy and c.action != "tag"] == [
        ("update", "netguard-ng-deny-eip-management", None),
        ("attach", "netguard-ng-deny-eip-management", ids["sandbox"]),
        ("detach", "netguard-ng-deny-eip-management-canary", ids["sandbox"]),
        ("delete", "netguard-ng-deny-eip-management-canary", None),
    ]
    counter = WriteCounter(client)
    rollout.apply(new, organization, promote.changes)
    assert counter.count == len(promote.changes)
    for target in (ids["sandbox"], ids["prod"]):
        assert _content_at(client, target, "ng-deny-eip-management") == ("netguard-ng-deny-eip-management", new_content)
    names = {p["Name"] for p in client.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]}
    assert not any(n.endswith("-canary") for n in names)
    assert rollout.drift(new, organization).changes == []


def test_a_canary_rolled_back_by_reverting_the_config(moto_org, tmp_path):
    client, ids = moto_org
    organization = rollout.Organization(client, sleep=lambda _: None)
    old = load_org_config(CONFIG)
    rollout.apply(old, organization, rollout.plan(old, organization).changes)
    new = load_org_config(_variant(tmp_path, *ADD_EXEMPTION))
    rollout.apply(new, organization, rollout.plan(new, organization, stage="canary").changes)
    back = rollout.plan(old, organization, stage="canary")
    assert {(c.action, c.policy) for c in back.changes if c.action != "tag"} == {
        ("attach", "netguard-ng-deny-eip-management"),
        ("attach", "netguard-ng-deny-network-deletes"),
        ("detach", "netguard-ng-deny-eip-management-canary"),
        ("detach", "netguard-ng-deny-network-deletes-canary"),
        ("delete", "netguard-ng-deny-eip-management-canary"),
        ("delete", "netguard-ng-deny-network-deletes-canary"),
    }
    rollout.apply(old, organization, back.changes)
    old_content = rollout.desired_policies(old)["netguard-ng-deny-eip-management"].content
    assert _content_at(client, ids["sandbox"], "ng-deny-eip-management")[1] == old_content
    assert rollout.drift(old, organization).changes == []


def test_a_swap_that_would_pass_the_quota_for_a_moment_is_refused(moto_org, tmp_path):
    client, ids = moto_org
    organization = rollout.Organization(client, sleep=lambda _: None)
    old = load_org_config(CONFIG)
    rollout.apply(old, organization, rollout.plan(old, organization).changes)
    for i in range(2):  # the sandbox now holds FullAWSAccess, two guardrails and two team policies
        team = client.create_policy(
            Content='{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ec2:X","Resource":"*"}]}',
            Description="x",
            Name=f"team-{i}",
            Type="SERVICE_CONTROL_POLICY",
        )["Policy"]["PolicySummary"]["Id"]
        client.attach_policy(PolicyId=team, TargetId=ids["sandbox"])
    tight = _variant(tmp_path, *ADD_EXEMPTION)
    tight.write_text(tight.read_text() + "max_scps_per_target: 6\n")
    counter = WriteCounter(client)
    with pytest.raises(NetguardError) as caught:  # 5 now, 5 after, but 7 between the attaches and the detaches
        rollout.plan(load_org_config(tight), organization, stage="canary")
    assert "target /Sandbox would have 7 SCPs attached for a moment, over the quota of 6" in caught.value.message
    assert "free a slot on the target first" in caught.value.message
    assert counter.count == 0
