"""`policy simulate/replay --org`: each record against its caller's account's SCP chain, today and after
the rollout that org.yaml's targets describe, from an organization snapshot.

The snapshot here is written by hand in the format `netguard org export` writes (its tests build a real
one against moto_server): root > Workloads > Prod and Legacy, Sandbox, an account at the root, and the
management account. Workloads carries a third-party Deny; Legacy has FullAWSAccess detached; an older
netguard guardrail is already attached at the root.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from netguard.cli import main
from netguard.org.snapshot import load_snapshot
from tests.conftest import ROOT

ORG_YAML = ROOT / "fixtures" / "org" / "org-targets.yaml"
FULL = "p-FullAWSAccess"
ROOT_ID, SANDBOX, WORKLOADS, PROD, LEGACY = (
    "r-ab12",
    "ou-ab12-sandbox1",
    "ou-ab12-workload",
    "ou-ab12-prod0001",
    "ou-ab12-legacy01",
)
PROD_ACCOUNT, SANDBOX_ACCOUNT, LEGACY_ACCOUNT, ROOT_ACCOUNT, MANAGEMENT = (
    "123456789012",
    "111111111111",
    "222222222222",
    "333333333333",
    "999999999999",
)


def _doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


SNAPSHOT = {
    "format": "netguard-org-snapshot",
    "version": 1,
    "exported_at": "2026-12-01T09:00:00Z",
    "organization": {"id": "o-exampleorg1", "management_account_id": MANAGEMENT},
    "root": {"id": ROOT_ID, "name": "Root", "scp_enabled": True, "policies": [FULL, "p-oldflowlog"]},
    "organizational_units": [
        {"id": SANDBOX, "name": "Sandbox", "parent_id": ROOT_ID, "path": "/Sandbox", "policies": [FULL]},
        {"id": WORKLOADS, "name": "Workloads", "parent_id": ROOT_ID, "policies": [FULL, "p-denypeering"]},
        {"id": PROD, "name": "Prod", "parent_id": WORKLOADS, "policies": [FULL]},
        {"id": LEGACY, "name": "Legacy", "parent_id": WORKLOADS, "policies": ["p-describeonly"]},
    ],
    "accounts": [
        {"id": PROD_ACCOUNT, "name": "prod", "parent_id": PROD, "policies": [FULL]},
        {"id": SANDBOX_ACCOUNT, "name": "sandbox", "parent_id": SANDBOX, "policies": [FULL]},
        {"id": LEGACY_ACCOUNT, "name": "legacy", "parent_id": LEGACY, "policies": [FULL]},
        {"id": ROOT_ACCOUNT, "name": "tools", "parent_id": ROOT_ID, "policies": [FULL]},
        {"id": MANAGEMENT, "name": "management", "parent_id": ROOT_ID, "policies": [FULL]},
    ],
    "policies": [
        {
            "id": FULL,
            "name": "FullAWSAccess",
            "aws_managed": True,
            "content": _doc({"Effect": "Allow", "Action": "*", "Resource": "*"}),
        },
        {
            "id": "p-denypeering",
            "name": "platform-deny-peering-deletes",
            "aws_managed": False,
            "content": _doc(
                {"Sid": "NoPeeringDeletes", "Effect": "Deny", "Action": "ec2:DeleteVpcPeering*", "Resource": "*"}
            ),
        },
        {
            "id": "p-describeonly",
            "name": "legacy-describe-only",
            "aws_managed": False,
            "content": _doc({"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}),
        },
        {  # an older netguard guardrail at the root: the rollout updates it in place
            "id": "p-oldflowlog",
            "name": "netguard-ng-protect-flow-logs",
            "aws_managed": False,
            "content": _doc({"Sid": "Old", "Effect": "Deny", "Action": "ec2:DeleteFlowLogs", "Resource": "*"}),
            "tags": {"managed-by": "netguard"},
        },
    ],
}


def _record(account: str, event: str, params: dict | None = None, role: str = "Developer", n: int = 0) -> dict:
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": f"AROAEXAMPLE:{role}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role}/session",
            "accountId": account,
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{account}:role/{role}", "accountId": account},
                "attributes": {"creationDate": "2026-11-01T10:00:00Z", "mfaAuthenticated": "false"},
            },
        },
        "eventTime": f"2026-11-0{1 + n % 9}T12:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": event,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "203.0.113.10",
        "requestParameters": params or {},
        "eventID": f"{account}-{event}-{n}",
        "recipientAccountId": account,
    }


DHCP = {"dhcpOptionsId": "dopt-0a1b2c3d4e5f67890"}
PEERING = {"vpcPeeringConnectionId": "pcx-0a1b2c3d4e5f67890"}
VPC = {"cidrBlock": "10.0.0.0/16"}
FLOW = {"DeleteFlowLogsRequest": {"FlowLogId": {"content": "fl-0a1b2c3d4e5f67890", "tag": 1}}}


@pytest.fixture
def org_files(tmp_path: Path) -> dict[str, Path]:
    snapshot = tmp_path / "org-snapshot.json"
    snapshot.write_text(json.dumps(SNAPSHOT))
    records = [
        _record(PROD_ACCOUNT, "DeleteDhcpOptions", DHCP, n=1),  # new: ng-deny-network-deletes at Prod
        _record(PROD_ACCOUNT, "DeleteVpcPeeringConnection", PEERING, n=2),  # existing: the Workloads Deny
        _record(PROD_ACCOUNT, "CreateVpc", VPC, n=3),  # new: ng-deny-topology-creation at Prod
        _record(SANDBOX_ACCOUNT, "CreateVpc", VPC, n=4),  # allowed: Sandbox gets no topology guardrail
        _record(SANDBOX_ACCOUNT, "DeleteDhcpOptions", DHCP, n=5),  # new, in the canary stage too
        _record(LEGACY_ACCOUNT, "CreateVpc", VPC, n=6),  # existing: implicit deny, FullAWSAccess detached
        _record(ROOT_ACCOUNT, "DeleteDhcpOptions", DHCP, n=7),  # allowed: no target above this account
        _record(MANAGEMENT, "DeleteDhcpOptions", DHCP, n=8),  # allowed: SCPs never restrict it
        _record(ROOT_ACCOUNT, "DeleteFlowLogs", FLOW, n=9),  # existing: the older root guardrail denies it
    ]
    events = tmp_path / "trail.json"
    events.write_text(json.dumps({"Records": records}))
    return {"snapshot": snapshot, "events": events}


def _run(capsys, *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


def _simulate(capsys, files, *extra: str) -> tuple[int, dict[str, dict]]:
    code, report = _run(
        capsys,
        "policy", "simulate", "--org", str(files["snapshot"]), "--config", str(ORG_YAML),
        "--events", str(files["events"]), "--format", "json", *extra,
    )  # fmt: skip
    return code, {r["eventID"]: r for r in report["results"]}


def test_each_record_is_decided_against_its_accounts_chain_today_and_after_the_rollout(capsys, org_files):
    code, by_id = _simulate(capsys, org_files)
    assert code == 0
    expect = {
        f"{PROD_ACCOUNT}-DeleteDhcpOptions-1": ("Deny", "new", "netguard-ng-deny-network-deletes"),
        f"{PROD_ACCOUNT}-DeleteVpcPeeringConnection-2": ("Deny", "existing", "platform-deny-peering-deletes"),
        f"{PROD_ACCOUNT}-CreateVpc-3": ("Deny", "new", "netguard-ng-deny-topology-creation"),
        f"{SANDBOX_ACCOUNT}-CreateVpc-4": ("Allow", None, None),
        f"{SANDBOX_ACCOUNT}-DeleteDhcpOptions-5": ("Deny", "new", "netguard-ng-deny-network-deletes"),
        f"{LEGACY_ACCOUNT}-CreateVpc-6": ("Deny", "existing", None),
        f"{ROOT_ACCOUNT}-DeleteDhcpOptions-7": ("Allow", None, None),
        f"{MANAGEMENT}-DeleteDhcpOptions-8": ("Allow", None, None),
        f"{ROOT_ACCOUNT}-DeleteFlowLogs-9": ("Deny", "existing", "netguard-ng-protect-flow-logs"),
    }
    got = {
        eid: (r["decision"], r["impact"], r["denied_by"][0]["policy"] if r["denied_by"] else None)
        for eid, r in by_id.items()
    }
    assert got == expect
    legacy = by_id[f"{LEGACY_ACCOUNT}-CreateVpc-6"]
    assert f"/Workloads/Legacy ({LEGACY})" in legacy["reason"], legacy["reason"]  # the level, by name
    assert by_id[f"{PROD_ACCOUNT}-CreateVpc-3"]["account"] == PROD_ACCOUNT
    # where the denying policy is attached: after the rollout for a new denial, today for an existing one
    assert by_id[f"{PROD_ACCOUNT}-CreateVpc-3"]["attached_at"] == f"/Workloads/Prod ({PROD})"
    assert by_id[f"{PROD_ACCOUNT}-DeleteVpcPeeringConnection-2"]["attached_at"] == f"/Workloads ({WORKLOADS})"
    assert by_id[f"{ROOT_ACCOUNT}-DeleteFlowLogs-9"]["attached_at"] == "root"


def test_the_canary_stage_attaches_only_to_canary_targets(capsys, org_files):
    _, by_id = _simulate(capsys, org_files, "--stage", "canary")
    assert by_id[f"{SANDBOX_ACCOUNT}-DeleteDhcpOptions-5"]["impact"] == "new"  # Sandbox is the canary
    assert by_id[f"{PROD_ACCOUNT}-DeleteDhcpOptions-1"]["decision"] == "Allow"  # Prod waits for --stage all
    assert by_id[f"{PROD_ACCOUNT}-CreateVpc-3"]["decision"] == "Allow"


def test_replay_reports_new_and_existing_denials_apart_and_fails_only_on_new(capsys, org_files):
    argv = ["policy", "replay", "--org", str(org_files["snapshot"]), "--config", str(ORG_YAML)]
    argv += ["--events", str(org_files["events"]), "--jobs", "1", "--format", "json"]
    code, report = _run(capsys, *argv)
    assert code == 0
    summary = report["summary"]
    assert (summary["would_be_denied"], summary["newly_denied"], summary["already_denied"]) == (6, 3, 3)
    assert report["organization"]["stage"] == "all" and report["organization"]["accounts"] == 5
    assert any("update" in c and "ng-protect-flow-logs" in c for c in report["organization"]["rollout"])
    impacts = {(g["action"], g["account"]): g["impact"] for g in report["groups"]}
    assert impacts[("ec2:DeleteVpcPeeringConnection", PROD_ACCOUNT)] == "existing"
    assert impacts[("ec2:CreateVpc", PROD_ACCOUNT)] == "new"
    code, _ = _run(capsys, *argv, "--fail-on", "deny")
    assert code == 1
    capsys.readouterr()
    main([*argv[:-2], "--format", "text"])
    text = capsys.readouterr().out
    assert text.index("newly denied") < text.index("already denied today")
    assert "6 would be denied (3 newly, 3 already today)" in text


def test_only_existing_denials_do_not_fail_the_run(capsys, org_files, tmp_path):
    events = tmp_path / "existing-only.json"
    events.write_text(json.dumps({"Records": [_record(PROD_ACCOUNT, "DeleteVpcPeeringConnection", PEERING)]}))
    argv = ["policy", "replay", "--org", str(org_files["snapshot"]), "--config", str(ORG_YAML)]
    code, report = _run(capsys, *argv, "--events", str(events), "--jobs", "1", "--format", "json", "--fail-on", "deny")
    assert code == 0 and report["summary"]["already_denied"] == 1 and report["summary"]["newly_denied"] == 0


def test_an_account_missing_from_the_snapshot_is_an_error_for_its_records(capsys, org_files, tmp_path):
    events = tmp_path / "stranger.json"
    records = [_record("444444444444", "DeleteDhcpOptions", DHCP), _record(PROD_ACCOUNT, "DeleteDhcpOptions", DHCP)]
    events.write_text(json.dumps({"Records": records}))
    code, by_id = _simulate(capsys, {**org_files, "events": events})
    assert code == 2
    assert list(by_id) == [f"{PROD_ACCOUNT}-DeleteDhcpOptions-0"]  # the rest is still evaluated
    argv = ["policy", "replay", "--org", str(org_files["snapshot"]), "--config", str(ORG_YAML)]
    code, report = _run(capsys, *argv, "--events", str(events), "--jobs", "1", "--format", "json")
    assert code == 2
    [error] = report["errors"]
    assert "account 444444444444 is not in the organization snapshot" in error["message"]
    assert report["summary"]["newly_denied"] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["accounts"][0].update(parent_id="ou-ab12-nowhere1"), "is not the root or an OU"),
        (lambda s: s["root"]["policies"].append("p-missing01"), "is not listed in policies"),
        (lambda s: s["policies"][1].update(content="{not json"), "content is not JSON"),
        (lambda s: s["organizational_units"][2].update(parent_id=PROD), "form a cycle"),
        (lambda s: s.pop("accounts"), "invalid organization snapshot"),
        (lambda s: s.update(format="something-else"), "not an organization snapshot"),
    ],
)
def test_a_broken_snapshot_is_refused_naming_the_file_and_the_reason(capsys, org_files, change, message):
    broken = copy.deepcopy(SNAPSHOT)
    change(broken)
    org_files["snapshot"].write_text(json.dumps(broken))
    with pytest.raises(Exception, match=message):
        load_snapshot(org_files["snapshot"])
    code = main(["policy", "simulate", "--org", str(org_files["snapshot"]), "--config", str(ORG_YAML),
                 "--events", str(org_files["events"])])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and message in err and str(org_files["snapshot"]) in err and "Traceback" not in err


def test_org_needs_the_config_and_excludes_policies(capsys, org_files):
    assert main(["policy", "simulate", "--org", str(org_files["snapshot"]), "--events", str(org_files["events"])]) == 2
    assert "needs --config" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["policy", "simulate", "--org", "x", "--policies", "y", "--events", "z"])
    assert exit_info.value.code == 2
    capsys.readouterr()
    assert main(["policy", "simulate", "--policies", "y", "--stage", "canary", "--events", "z"]) == 2
    assert "only with --org" in capsys.readouterr().err


def test_a_rollout_that_changes_nothing_says_so(capsys, org_files, tmp_path):
    """Apply the rollout to the snapshot first: replaying then finds nothing new, and says why."""
    from netguard.org import rollout
    from netguard.org.snapshot import SnapshotOrganization
    from netguard.policy.orgconfig import load_org_config

    org = load_org_config(ORG_YAML)
    applied = SnapshotOrganization(load_snapshot(org_files["snapshot"]))
    rollout.apply(org, applied, rollout.plan(org, applied).changes)
    data = copy.deepcopy(SNAPSHOT)
    data["policies"] = [
        {"id": p["Id"], "name": p["Name"], "aws_managed": p["AwsManaged"], "content": p["Content"], "tags": p["Tags"]}
        for p in applied.snapshot.policies.values()
    ]
    for entry in [data["root"], *data["organizational_units"], *data["accounts"]]:
        entry["policies"] = applied.snapshot.attached[entry["id"]]
    done = tmp_path / "applied.json"
    done.write_text(json.dumps(data).replace("p-planned", "p-plannedx"))
    argv = ["policy", "replay", "--org", str(done), "--config", str(ORG_YAML)]
    code, report = _run(capsys, *argv, "--events", str(org_files["events"]), "--jobs", "1", "--format", "json")
    assert code == 0
    assert report["summary"]["newly_denied"] == 0 and report["summary"]["already_denied"] == 6
    assert any("changes nothing" in w for w in report["warnings"])


def test_only_accounts_whose_chain_could_deny_a_call_evaluate_it(capsys, org_files, tmp_path):
    """A call no Deny names and every level of its account's chain allows unconditionally is counted
    without being evaluated; Legacy's allow-list SCP (ec2:Describe*) leaves RunInstances to decide
    there, and only there. Identities without an account take the account called."""
    web = _record(LEGACY_ACCOUNT, "RunInstances", n=3)
    web["userIdentity"] = {"type": "WebIdentityUser", "principalId": "accounts.google.com:1", "userName": "1"}
    records = [
        _record(ROOT_ACCOUNT, "DescribeVpcs", n=1),  # FullAWSAccess all the way, no Deny names it
        _record(LEGACY_ACCOUNT, "DescribeVpcs", n=2),  # the allow-list grants it on every resource
        web,  # evaluated in the account called: implicit deny there today
        _record(ROOT_ACCOUNT, "RunInstances", n=4),  # granted everywhere above this account
    ]
    events = tmp_path / "mixed.json"
    events.write_text(json.dumps({"Records": records}))
    argv = ["policy", "replay", "--org", str(org_files["snapshot"]), "--config", str(ORG_YAML)]
    code, report = _run(capsys, *argv, "--events", str(events), "--jobs", "1", "--format", "json")
    assert code == 0, report["errors"]
    assert (report["summary"]["records"], report["summary"]["evaluated"]) == (4, 1)
    [group] = report["groups"]
    assert (group["action"], group["impact"], group["count"]) == ("ec2:RunInstances", "existing", 1)


def test_the_pre_filter_never_skips_a_call_an_allow_list_does_not_grant_unconditionally():
    """The pre-filter's grants are only unconditional Allows on every resource; a conditional Allow,
    a NotAction Allow or an Allow on some resources leaves the call to the evaluator."""
    from netguard.iam.evaluator import Policy
    from netguard.policy.replay import compile_policies

    full = Policy("FullAWSAccess", {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})

    def allow(**statement) -> Policy:
        return Policy("allow-list", {"Statement": [{"Effect": "Allow", **statement}]})

    granted = compile_policies([[full], [allow(Action=["ec2:Describe*"], Resource="*")]])
    assert not granted.needs_evaluation("ec2.amazonaws.com", "DescribeVpcs")
    assert granted.needs_evaluation("ec2.amazonaws.com", "RunInstances")  # an implicit deny
    for statement in (
        {"Action": "ec2:*", "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}},
        {"NotAction": "iam:*", "Resource": "*"},
        {"Action": "ec2:*", "Resource": "arn:aws:ec2:*:*:vpc/*"},
    ):
        compiled = compile_policies([[full], [allow(**statement)]])
        assert compiled.needs_evaluation("ec2.amazonaws.com", "DescribeVpcs"), statement
    assert not compile_policies([]).needs_evaluation("ec2.amazonaws.com", "DeleteVpc")  # SCPs disabled
