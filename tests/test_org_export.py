"""`netguard org export` against a real moto_server on 127.0.0.1: the snapshot is exactly the organization
the test built with boto3, every page is read, only List/Describe calls are made, mistakes are one-line
errors, and `policy simulate --org` decides records against the chains the export wrote.

moto does not enforce Organizations quotas, does not page ListTargetsForPolicy or ListTagsForResource,
and never applies SCPs to calls; nothing here ran against AWS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import boto3
import jsonschema
import pytest

from netguard.cli import main
from netguard.errors import NetguardError
from netguard.org import aws, export
from netguard.org.snapshot import load_snapshot
from netguard.resources import load_schema
from tests import test_org
from tests.conftest import ROOT
from tests.test_aws_retries import _Server
from tests.test_org_chain import DHCP, FLOW, PEERING, SNAPSHOT, VPC, _record  # the format by hand, and records
from tests.test_org_cli import assert_user_error, closed_port, netguard, no_credentials

moto_server = test_org.moto_server  # the fixture: a real moto_server on 127.0.0.1, stopped after the test
ORG_YAML = ROOT / "fixtures" / "org" / "org-targets.yaml"
SCP = "SERVICE_CONTROL_POLICY"
FULL = "p-FullAWSAccess"
READ_CALL = re.compile(r"^(List|Describe)[A-Z]")

pytestmark = pytest.mark.usefixtures("fake_aws_credentials")


def _doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


@dataclass
class Built:
    """What the test made in moto, recorded from the create calls' answers: the truth the export must match."""

    client: Any
    organization: dict[str, Any] = field(default_factory=dict)
    root: str = ""
    units: dict[str, dict[str, str]] = field(default_factory=dict)  # path -> id, name, parent_id
    accounts: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> id, parent_id, status
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> summary, content, tags
    attached: dict[str, set[str]] = field(default_factory=dict)  # target id -> policy ids

    def unit(self, path: str) -> str:
        parent_path, _, name = path.rpartition("/")
        parent = self.units[parent_path]["id"] if parent_path else self.root
        unit_id = self.client.create_organizational_unit(ParentId=parent, Name=name)["OrganizationalUnit"]["Id"]
        self.units[path] = {"id": unit_id, "name": name, "parent_id": parent}
        self.attached[unit_id] = {FULL}  # Organizations attaches FullAWSAccess to every new OU
        return unit_id

    def account(self, name: str, parent: str | None = None) -> str:
        created = self.client.create_account(AccountName=name, Email=f"{name}@example.com")
        account_id = created["CreateAccountStatus"]["AccountId"]
        target = self.units[parent]["id"] if parent else self.root
        if parent:
            self.client.move_account(AccountId=account_id, SourceParentId=self.root, DestinationParentId=target)
        self.accounts[name] = {"id": account_id, "parent_id": target, "status": "ACTIVE"}
        self.attached[account_id] = {FULL}
        return account_id

    def policy(self, name: str, content: str, tags: dict[str, str] | None = None, description: str = "") -> str:
        tag_list = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
        summary = self.client.create_policy(
            Name=name, Description=description, Content=content, Type=SCP, **({"Tags": tag_list} if tags else {})
        )["Policy"]["PolicySummary"]
        self.policies[name] = {"summary": summary, "content": content, "tags": tags or {}}
        return summary["Id"]

    def attach(self, policy: str, target: str) -> None:
        policy_id = FULL if policy == "FullAWSAccess" else self.policies[policy]["summary"]["Id"]
        self.client.attach_policy(PolicyId=policy_id, TargetId=target)
        self.attached[target].add(policy_id)

    def detach(self, policy_id: str, target: str) -> None:
        self.client.detach_policy(PolicyId=policy_id, TargetId=target)
        self.attached[target].discard(policy_id)

    def expected(self) -> dict[str, Any]:
        """The snapshot the export must write for what was built (all but exported_at)."""
        full = self.client.describe_policy(PolicyId=FULL)["Policy"]
        policies = [
            {
                "id": FULL,
                "name": "FullAWSAccess",
                "arn": full["PolicySummary"]["Arn"],
                "description": full["PolicySummary"]["Description"],
                "aws_managed": True,
                "content": full["Content"],
                "tags": {},
            }
        ]
        for name, made in self.policies.items():
            summary = made["summary"]
            policies.append(
                {
                    "id": summary["Id"],
                    "name": name,
                    "arn": summary["Arn"],
                    "description": summary["Description"],
                    "aws_managed": False,
                    "content": made["content"],
                    "tags": dict(sorted(made["tags"].items())),
                }
            )
        units = [
            {"id": u["id"], "name": u["name"], "parent_id": u["parent_id"], "path": path}
            | {"policies": sorted(self.attached[u["id"]])}
            for path, u in sorted(self.units.items())
        ]
        accounts = [
            {"id": a["id"], "name": name, "status": a["status"], "parent_id": a["parent_id"]}
            | {"policies": sorted(self.attached[a["id"]])}
            for name, a in self.accounts.items()
        ]
        return {
            "format": "netguard-org-snapshot",
            "version": 1,
            "organization": {
                "id": self.organization["Id"],
                "arn": self.organization["Arn"],
                "management_account_id": self.organization["MasterAccountId"],
            },
            "root": {
                "id": self.root,
                "name": "Root",
                "scp_enabled": True,
                "policies": sorted(self.attached[self.root]),
            },
            "organizational_units": units,
            "accounts": sorted(accounts, key=lambda a: a["id"]),
            "policies": sorted(policies, key=lambda p: p["id"]),
        }


def start_org(client: Any) -> Built:
    built = Built(client)
    built.organization = client.create_organization(FeatureSet="ALL")["Organization"]
    built.root = client.list_roots()["Roots"][0]["Id"]
    client.enable_policy_type(RootId=built.root, PolicyType=SCP)
    built.attached[built.root] = {FULL}
    management = built.organization["MasterAccountId"]
    built.accounts["master"] = {"id": management, "parent_id": built.root, "status": "ACTIVE"}  # moto's name
    built.attached[management] = {FULL}
    return built


PEERING_DENY = json.dumps(
    _doc({"Sid": "NoPeeringDeletes", "Effect": "Deny", "Action": "ec2:DeleteVpcPeering*", "Resource": "*"})
)
DESCRIBE_ONLY = json.dumps(
    _doc({"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}), indent=2
)  # kept as is
FLOW_LOGS = json.dumps(
    _doc({"Sid": "Old", "Effect": "Deny", "Action": "ec2:DeleteFlowLogs", "Resource": "*"}), separators=(",", ":")
)
NETWORK_DELETES = json.dumps(
    _doc({"Sid": "NoDhcpDeletes", "Effect": "Deny", "Action": "ec2:DeleteDhcpOptions", "Resource": "*"})
)
LEAVE = json.dumps(_doc({"Effect": "Deny", "Action": "organizations:LeaveOrganization", "Resource": "*"}))
DRAFT = json.dumps(_doc({"Effect": "Deny", "Action": "ec2:CreateVpc", "Resource": "*"}))


def build_org(client: Any) -> Built:
    """root > Sandbox; Workloads > Prod > Payments; Workloads > Legacy (FullAWSAccess detached, only an
    Allow of ec2:Describe* left); a third-party Deny at Workloads, one at an account; netguard's own SCPs
    (managed-by=netguard) at the root and at Prod; an SCP attached nowhere; a closed account."""
    built = start_org(client)
    for path in ("/Sandbox", "/Workloads", "/Workloads/Prod", "/Workloads/Prod/Payments", "/Workloads/Legacy"):
        built.unit(path)
    built.account("tools")
    built.account("sandbox", "/Sandbox")
    built.account("prod-web", "/Workloads/Prod")
    built.account("payments", "/Workloads/Prod/Payments")
    built.account("payments-old", "/Workloads/Prod/Payments")
    built.account("legacy", "/Workloads/Legacy")
    client.close_account(AccountId=built.accounts["payments-old"]["id"])
    built.accounts["payments-old"]["status"] = "SUSPENDED"

    netguard_tags = {"managed-by": "netguard", "netguard:guardrail": "ng-protect-flow-logs"}
    built.policy("netguard-ng-protect-flow-logs", FLOW_LOGS, netguard_tags, "netguard guardrail")
    built.policy("netguard-ng-deny-network-deletes", NETWORK_DELETES, {"managed-by": "netguard"})
    built.policy("platform-deny-peering-deletes", PEERING_DENY, {"owner": "platform", "cost-centre": "42"})
    built.policy("legacy-describe-only", DESCRIBE_ONLY, description="Legacy may only look")
    built.policy("deny-leave-organization", LEAVE, {"owner": "security"})
    built.policy("draft-deny-create-vpc", DRAFT)
    built.attach("netguard-ng-protect-flow-logs", built.root)
    built.attach("netguard-ng-deny-network-deletes", built.units["/Workloads/Prod"]["id"])
    built.attach("platform-deny-peering-deletes", built.units["/Workloads"]["id"])
    legacy = built.units["/Workloads/Legacy"]["id"]
    built.attach("legacy-describe-only", legacy)  # first, so FullAWSAccess is not the last SCP there
    built.detach(FULL, legacy)
    built.attach("deny-leave-organization", built.accounts["payments"]["id"])
    return built


def organizations(url: str) -> Any:
    return boto3.client("organizations", region_name="us-east-1", endpoint_url=url)


def without_time(snapshot: dict[str, Any]) -> dict[str, Any]:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", snapshot["exported_at"]), snapshot["exported_at"]
    return {k: v for k, v in snapshot.items() if k != "exported_at"}


class CallLog:
    """Every operation each client made through aws.make_client makes, as botocore is about to send it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        original = aws.make_client

        def recording_client(service: str, **kwargs: Any) -> Any:
            client = original(service, **kwargs)
            client.meta.events.register("before-call", self._record)
            return client

        monkeypatch.setattr(aws, "make_client", recording_client)

    def _record(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        body = params.get("body") or b"{}"
        self.calls.append((model.name, json.loads(body)))

    def names(self) -> set[str]:
        return {name for name, _ in self.calls}

    def paged(self) -> set[str]:
        return {name for name, params in self.calls if "NextToken" in params}


def run_export(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["org", "export", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- the snapshot is the organization --------------------------------------------------------------


def test_the_snapshot_is_exactly_the_organization_built(moto_server, tmp_path):
    built = build_org(organizations(moto_server))
    out = tmp_path / "org.json"
    done, seconds = netguard("org", "export", "--output", str(out), "--endpoint-url", moto_server)
    print(f"\norg export of 5 OUs, 7 accounts, 7 SCPs: {seconds:.2f} s (a process, moto_server)")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"netguard: exported 1 root, 5 OUs, 7 accounts, 7 SCPs to {out}\n"
    assert done.stderr == ""
    written = json.loads(out.read_text(encoding="utf-8"))
    assert without_time(written) == built.expected()
    jsonschema.validate(written, load_schema("org-snapshot.schema.json"), format_checker=jsonschema.FormatChecker())

    # spot checks that say in words what the equality above covers
    by_path = {u["path"]: u for u in written["organizational_units"]}
    payments = by_path["/Workloads/Prod/Payments"]
    assert payments["parent_id"] == by_path["/Workloads/Prod"]["id"]
    assert by_path["/Workloads/Prod"]["parent_id"] == by_path["/Workloads"]["id"]
    assert by_path["/Workloads/Legacy"]["policies"] == [built.policies["legacy-describe-only"]["summary"]["Id"]]
    policies = {p["name"]: p for p in written["policies"]}
    assert policies["legacy-describe-only"]["content"] == DESCRIBE_ONLY and "\n" in DESCRIBE_ONLY  # not re-serialised
    assert policies["netguard-ng-protect-flow-logs"]["tags"]["managed-by"] == "netguard"
    assert policies["FullAWSAccess"]["aws_managed"] is True and policies["FullAWSAccess"]["tags"] == {}
    assert policies["draft-deny-create-vpc"]["id"] not in {p for t in written["accounts"] for p in t["policies"]}
    status = {a["name"]: a["status"] for a in written["accounts"]}
    assert status["payments-old"] == "SUSPENDED" and status["payments"] == "ACTIVE"
    assert list(written) == list(load_schema("org-snapshot.schema.json")["properties"])  # key order of the format

    # the consumer reads it: the chain of an account three OUs deep, root first
    chain = load_snapshot(out).chain(built.accounts["payments"]["id"])
    assert [level.label for level in chain] == [
        "root",
        f"/Workloads ({by_path['/Workloads']['id']})",
        f"/Workloads/Prod ({by_path['/Workloads/Prod']['id']})",
        f"/Workloads/Prod/Payments ({payments['id']})",
        f"account {built.accounts['payments']['id']}",
    ]
    assert [sorted(name for name, _ in level.policies) for level in chain] == [
        ["FullAWSAccess", "netguard-ng-protect-flow-logs"],
        ["FullAWSAccess", "platform-deny-peering-deletes"],
        ["FullAWSAccess", "netguard-ng-deny-network-deletes"],
        ["FullAWSAccess"],
        ["FullAWSAccess", "deny-leave-organization"],
    ]


def test_two_exports_of_an_unchanged_organization_are_the_same_bytes_but_the_time(moto_server, tmp_path):
    build_org(organizations(moto_server))
    texts = []
    for name in ("a.json", "b.json"):
        done, _ = netguard("org", "export", "--output", str(tmp_path / name), "--endpoint-url", moto_server)
        assert done.returncode == 0, done.stderr
        texts.append(re.sub(r'"exported_at": "[^"]+"', "", (tmp_path / name).read_text(encoding="utf-8")))
    assert texts[0] == texts[1]
    assert texts[0].count('"id"') == 1 + 1 + 5 + 7 + 7  # organization, root, OUs, accounts, SCPs


def test_output_dash_writes_only_the_snapshot_to_stdout(moto_server, capsys, tmp_path):
    built = build_org(organizations(moto_server))
    code, out, err = run_export(capsys, "--output", "-", "--endpoint-url", moto_server)
    assert code == 0
    assert without_time(json.loads(out)) == built.expected()
    assert err == "netguard: exported 1 root, 5 OUs, 7 accounts, 7 SCPs to stdout\n"
    assert list(tmp_path.iterdir()) == []


# --- read-only, every page -------------------------------------------------------------------------


def test_the_export_makes_only_list_and_describe_calls(moto_server, capsys, tmp_path, monkeypatch):
    build_org(organizations(moto_server))
    log = CallLog(monkeypatch)
    code, _, err = run_export(capsys, "--output", str(tmp_path / "org.json"), "--endpoint-url", moto_server)
    assert code == 0, err
    assert log.calls, "the hook saw no call"
    assert [name for name, _ in log.calls if not READ_CALL.match(name)] == []
    assert log.names() == {
        "DescribeOrganization",
        "ListRoots",
        "ListAccountsForParent",
        "ListOrganizationalUnitsForParent",
        "ListPolicies",
        "DescribePolicy",
        "ListTagsForResource",
        "ListTargetsForPolicy",
    }
    counts = {name: sum(1 for n, _ in log.calls if n == name) for name in log.names()}
    print(f"\ncalls for 1 root, 5 OUs, 7 accounts, 7 SCPs: {len(log.calls)} {counts}")
    # per parent (root + 5 OUs) for the tree, per SCP for content and targets, per customer SCP for tags
    assert counts["ListAccountsForParent"] == counts["ListOrganizationalUnitsForParent"] == 6
    assert counts["DescribePolicy"] == counts["ListTargetsForPolicy"] == 7
    assert counts["ListTagsForResource"] == 6  # not for FullAWSAccess: AWS managed policies carry no tags
    # the least-privilege policy in the docs allows exactly these calls
    documented = (ROOT / "docs" / "org-export.md").read_text(encoding="utf-8").split("```json\n", 1)[1]
    allowed = json.loads(documented.split("```", 1)[0])["Statement"][0]["Action"]
    assert sorted(allowed) == sorted(f"organizations:{name}" for name in log.names())


def test_the_reader_refuses_a_write_before_it_reaches_the_client():
    class Client:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"{name} reached the client")

    reader = export.ReadOnlyOrganization(Client(), aws.Budget())
    for operation in ("attach_policy", "detach_policy", "create_policy", "tag_resource", "update_policy"):
        with pytest.raises(NetguardError, match="not a read call"):
            reader.call(operation, PolicyId="p-12345678", TargetId="r-ab12")


def test_every_page_of_every_list_is_read(moto_server, capsys, tmp_path, monkeypatch):
    """moto pages ListOrganizationalUnitsForParent, ListAccountsForParent and ListPolicies at 20: build
    more than that of each and all must be in the snapshot; then again one item a page."""
    client = organizations(moto_server)
    built = start_org(client)
    for n in range(23):
        built.unit(f"/Team{n:02d}")
    for n in range(22):
        built.account(f"member{n:02d}", "/Team07")
    for n in range(21):
        built.policy(f"third-party-{n:02d}", LEAVE, {"n": str(n)})
        built.attach(f"third-party-{n:02d}", built.units[f"/Team{n:02d}"]["id"])

    log = CallLog(monkeypatch)
    code, out, err = run_export(capsys, "--output", "-", "--endpoint-url", moto_server)
    assert code == 0, err
    assert without_time(json.loads(out)) == built.expected()
    assert err == "netguard: exported 1 root, 23 OUs, 23 accounts, 22 SCPs to stdout\n"
    assert {"ListOrganizationalUnitsForParent", "ListAccountsForParent", "ListPolicies"} <= log.paged()

    monkeypatch.setattr(export, "PAGE_SIZE", 1)
    log.calls.clear()
    code, out, err = run_export(capsys, "--output", "-", "--endpoint-url", moto_server)
    assert code == 0, err
    assert without_time(json.loads(out)) == built.expected()
    assert sum(1 for name, _ in log.calls if name == "ListPolicies") == 22  # one SCP a page
    sized = [params.get("MaxResults") for name, params in log.calls if name.startswith("List")]
    assert sized.count(None) == 21 and set(sized) == {1, None}  # ListTagsForResource, which takes no MaxResults


class CannedOrganizations:
    """Answers of an organization as a stand-in client: a root, one OU, one account, one SCP."""

    def __init__(self, targets: list[str], tokens: list[str | None] | None = None) -> None:
        self.targets = targets
        self.tokens = tokens or [None]

    def describe_organization(self) -> dict[str, Any]:
        return {"Organization": {"Id": "o-exampleorg1", "Arn": "arn", "MasterAccountId": "999999999999"}}

    def list_roots(self) -> dict[str, Any]:
        return {"Roots": [{"Id": "r-ab12", "Name": "Root", "PolicyTypes": [{"Type": SCP, "Status": "ENABLED"}]}]}

    def list_accounts_for_parent(self, ParentId: str) -> dict[str, Any]:
        return {
            "Accounts": [{"Id": "999999999999", "Name": "management", "Status": "ACTIVE"}]
            if ParentId == "r-ab12"
            else []
        }

    def list_organizational_units_for_parent(self, ParentId: str, **_: Any) -> dict[str, Any]:
        return {"OrganizationalUnits": [{"Id": "ou-ab12-prod0001", "Name": "Prod"}] if ParentId == "r-ab12" else []}

    def list_policies(self, **_: Any) -> dict[str, Any]:
        return {
            "Policies": [{"Id": FULL, "Name": "FullAWSAccess", "AwsManaged": True}],
            "NextToken": self.tokens.pop(0),
        }

    def describe_policy(self, PolicyId: str) -> dict[str, Any]:
        return {"Policy": {"Content": "{}"}}

    def list_targets_for_policy(self, PolicyId: str) -> dict[str, Any]:
        return {"Targets": [{"TargetId": target} for target in self.targets]}


def test_an_attachment_to_a_target_the_walk_did_not_find_stops_the_export():
    complete = export.read_snapshot(
        export.ReadOnlyOrganization(CannedOrganizations(["r-ab12", "ou-ab12-prod0001", "999999999999"]), aws.Budget())
    )
    assert complete["organizational_units"][0]["policies"] == [FULL]
    export.check_snapshot(complete)
    moved = CannedOrganizations(["r-ab12", "ou-ab12-prod0001", "999999999999", "123456789012"])
    with pytest.raises(NetguardError, match="FullAWSAccess is attached to 123456789012, which the walk did not find"
                       ": the organization changed while it was being read; run the export again"):  # fmt: skip
        export.read_snapshot(export.ReadOnlyOrganization(moved, aws.Budget()))


def test_a_next_token_handed_back_twice_is_an_error_not_an_endless_loop():
    looping = CannedOrganizations(["r-ab12"], tokens=["t1", "t2", "t1", None])
    with pytest.raises(NetguardError, match="ListPolicies returned the same NextToken twice"):
        export.read_snapshot(export.ReadOnlyOrganization(looping, aws.Budget()))


# --- the file: validated, whole or not at all -----------------------------------------------------


def test_a_snapshot_that_breaks_the_schema_is_a_bug_message_and_nothing_is_written(
    moto_server, capsys, tmp_path, monkeypatch
):
    build_org(organizations(moto_server))
    out = tmp_path / "org.json"
    out.write_text("the previous snapshot\n", encoding="utf-8")
    real = export.read_snapshot

    def broken(reader: Any, now: Any = None) -> dict[str, Any]:
        snapshot = real(reader, now)
        snapshot["accounts"][0]["id"] = "12345"
        return snapshot

    monkeypatch.setattr(export, "read_snapshot", broken)
    code, stdout, err = run_export(capsys, "--output", str(out), "--endpoint-url", moto_server)
    assert code == 2
    assert stdout == ""
    assert err.startswith("netguard: error: org export: internal error: the snapshot does not match")
    assert "at accounts/0/id" in err and "nothing was written" in err and err.count("\n") == 1
    assert out.read_text(encoding="utf-8") == "the previous snapshot\n"
    assert [p.name for p in tmp_path.iterdir()] == ["org.json"]  # no temporary file left behind


def test_a_failed_rename_leaves_the_previous_snapshot_and_no_temporary_file(tmp_path, monkeypatch):
    out = tmp_path / "org.json"
    out.write_text("the previous snapshot\n", encoding="utf-8")

    def refuse(*_args: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(export.os, "replace", refuse)
    with pytest.raises(NetguardError, match="cannot write the snapshot: Permission denied"):
        export.write_snapshot(SNAPSHOT, str(out))
    assert out.read_text(encoding="utf-8") == "the previous snapshot\n"
    assert [p.name for p in tmp_path.iterdir()] == ["org.json"]


def test_a_folder_that_does_not_exist_is_refused_before_any_call(tmp_path):
    target = tmp_path / "missing" / "org.json"
    done, seconds = netguard("org", "export", "--output", str(target), "--endpoint-url", closed_port())
    assert_user_error(done, seconds, f"netguard: error: {target}: cannot write the snapshot: its folder does not exist")
    assert seconds < 5  # no connection attempted


# --- mistakes the user can fix: exit 2, one line, fast ----------------------------------------------


def test_a_closed_port_fails_fast_saying_so(tmp_path):
    out = tmp_path / "org.json"
    done, seconds = netguard("org", "export", "--output", str(out), "--endpoint-url", closed_port())
    assert_user_error(
        done,
        seconds,
        "netguard: error: organization: DescribeOrganization failed: no connection could be made (3 attempts in ",
        "likely fix: check the network and any proxy (HTTPS_PROXY), the --endpoint-url and the --region",
    )
    assert done.stderr.count("\n") == 1 and done.stdout == ""
    assert seconds < 10  # two quick retries, not a minute of them
    assert not out.exists()


def test_no_credentials_fails_at_once_saying_how_to_give_them(tmp_path):
    done, seconds = netguard("org", "export", "--output", str(tmp_path / "org.json"), env=no_credentials())
    assert_user_error(
        done,
        seconds,
        "netguard: error: organization: DescribeOrganization failed: NoCredentialsError: Unable to locate credentials;"
        " likely fix: no usable AWS credentials",
    )


def test_access_denied_says_to_use_the_management_account_or_a_delegated_administrator(tmp_path):
    denied = json.dumps({"__type": "AccessDeniedException", "message": "not for you"}).encode()
    with _Server(400, denied) as url:
        done, seconds = netguard("org", "export", "--output", str(tmp_path / "org.json"), "--endpoint-url", url)
    assert_user_error(
        done,
        seconds,
        "DescribeOrganization failed: AccessDeniedException: not for you; likely fix: the identity these credentials"
        " belong to may not call organizations:DescribeOrganization",
        "the management account or a delegated administrator",
    )
    assert not (tmp_path / "org.json").exists()


def test_an_account_outside_any_organization_is_told_so(moto_server, tmp_path):
    done, seconds = netguard("org", "export", "--output", str(tmp_path / "org.json"), "--endpoint-url", moto_server)
    assert_user_error(
        done,
        seconds,
        "DescribeOrganization failed: AWSOrganizationsNotInUseException",
        "likely fix: these credentials belong to an account outside any organization: use the organization's"
        " management account",
    )


# --- end to end: export, then simulate each account's records against its chain --------------------


def test_simulate_with_the_exported_snapshot_follows_each_accounts_chain(moto_server, capsys, tmp_path):
    built = build_org(organizations(moto_server))
    snapshot = tmp_path / "org.json"
    code, _, err = run_export(capsys, "--output", str(snapshot), "--endpoint-url", moto_server)
    assert code == 0, err
    account = {name: a["id"] for name, a in built.accounts.items()}
    unit = {path: u["id"] for path, u in built.units.items()}
    records = [
        _record(account["legacy"], "CreateVpc", VPC, n=1),
        _record(account["legacy"], "DeleteVpcPeeringConnection", PEERING, n=2),
        _record(account["payments"], "DeleteVpcPeeringConnection", PEERING, n=3),
        _record(account["prod-web"], "DeleteVpcPeeringConnection", PEERING, n=4),
        _record(account["sandbox"], "DeleteVpcPeeringConnection", PEERING, n=5),
        _record(account["tools"], "CreateVpc", VPC, n=6),
        _record(account["payments"], "DeleteFlowLogs", FLOW, n=7),
        _record(account["prod-web"], "DeleteDhcpOptions", DHCP, n=8),
        _record(account["sandbox"], "DeleteDhcpOptions", DHCP, n=9),
        _record(account["master"], "DeleteVpcPeeringConnection", PEERING, n=10),
    ]
    events = tmp_path / "trail.json"
    events.write_text(json.dumps({"Records": records}), encoding="utf-8")
    argv = ["policy", "simulate", "--org", str(snapshot), "--config", str(ORG_YAML), "--events", str(events)]
    code = main([*argv, "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    by_id = {r["eventID"]: r for r in report["results"]}
    got = {
        eid: (r["decision"], r["impact"], r["denied_by"][0]["policy"] if r["denied_by"] else None, r.get("attached_at"))
        for eid, r in by_id.items()
    }
    workloads, prod, sandbox = (
        f"/Workloads ({unit['/Workloads']})",
        f"/Workloads/Prod ({unit['/Workloads/Prod']})",
        f"/Sandbox ({unit['/Sandbox']})",
    )
    peering_deny = ("Deny", "existing", "platform-deny-peering-deletes", workloads)
    assert got == {
        # FullAWSAccess detached at Legacy and only ec2:Describe* allowed there: an implicit deny at that level
        f"{account['legacy']}-CreateVpc-1": ("Deny", "existing", None, None),
        # ... and an explicit Deny above it (Workloads) names that policy
        f"{account['legacy']}-DeleteVpcPeeringConnection-2": peering_deny,
        # the third-party Deny at Workloads reaches two and three OUs down
        f"{account['payments']}-DeleteVpcPeeringConnection-3": peering_deny,
        f"{account['prod-web']}-DeleteVpcPeeringConnection-4": peering_deny,
        # not under Workloads: only the rollout (org-targets.yaml attaches ng-deny-network-deletes at Sandbox) denies
        f"{account['sandbox']}-DeleteVpcPeeringConnection-5": (
            "Deny",
            "new",
            "netguard-ng-deny-network-deletes",
            sandbox,
        ),
        f"{account['tools']}-CreateVpc-6": ("Allow", None, None, None),
        # netguard's own SCPs already attached (at the root, at Prod) deny today
        f"{account['payments']}-DeleteFlowLogs-7": ("Deny", "existing", "netguard-ng-protect-flow-logs", "root"),
        f"{account['prod-web']}-DeleteDhcpOptions-8": ("Deny", "existing", "netguard-ng-deny-network-deletes", prod),
        f"{account['sandbox']}-DeleteDhcpOptions-9": ("Deny", "new", "netguard-ng-deny-network-deletes", sandbox),
        # the management account: SCPs never restrict it
        f"{account['master']}-DeleteVpcPeeringConnection-10": ("Allow", None, None, None),
    }
    legacy = by_id[f"{account['legacy']}-CreateVpc-1"]
    assert f"/Workloads/Legacy ({unit['/Workloads/Legacy']})" in legacy["reason"], legacy["reason"]


def test_scp_enabled_says_whether_the_policy_type_is_enabled_on_the_root(moto_server, capsys):
    client = organizations(moto_server)
    client.create_organization(FeatureSet="ALL")
    code, out, err = run_export(capsys, "--output", "-", "--endpoint-url", moto_server)
    assert code == 0, err
    assert json.loads(out)["root"]["scp_enabled"] is False
    client.enable_policy_type(RootId=client.list_roots()["Roots"][0]["Id"], PolicyType=SCP)
    code, out, err = run_export(capsys, "--output", "-", "--endpoint-url", moto_server)
    assert code == 0, err
    assert json.loads(out)["root"]["scp_enabled"] is True
