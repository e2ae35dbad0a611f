"""The SCP guardrail library: rendering, validation, and decisions on CloudTrail fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netguard.catalog import load_catalog
from netguard.cli import main
from netguard.iam.conditions import RequestContext
from netguard.iam.evaluator import FULL_AWS_ACCESS, Policy, Request, evaluate_scps
from netguard.policy.orgconfig import load_org_config
from netguard.policy.render import minify, render, render_to_dir, templates
from netguard.policy.simulate import load_policy_levels, simulate
from netguard.policy.validate import validate_document
from tests.conftest import FIXTURES

ORG = FIXTURES / "org" / "org.yaml"
TRAILS = sorted((FIXTURES / "cloudtrail").glob("*.json"))
SEED_EVENTS = {"DeleteDhcpOptions", "DeleteVpcPeeringConnection", "DisassociateAddress", "AllocateAddress", "CreateVpc"}


def _records(path: Path) -> tuple[str, list[dict]]:
    data = json.loads(path.read_text())
    return data["netguard-test"]["org"], data["Records"]


@pytest.mark.parametrize("trail", TRAILS, ids=lambda p: p.name)
def test_every_fixture_record_gets_its_expected_decision(trail, tmp_path):
    org_name, records = _records(trail)
    org = load_org_config(FIXTURES / "org" / org_name)
    render_to_dir(org, tmp_path)
    levels, errors = load_policy_levels(tmp_path)
    assert not errors
    outcome = simulate(levels, [trail], org.management_account_id)
    assert not outcome.errors
    by_id = {r["eventID"]: r for r in outcome.results}
    assert len(by_id) == len(records)
    wrong = []
    for record in records:
        expect, got = record["netguard-expect"], by_id[record["eventID"]]
        label = f"{record['eventName']} by {got['principal']}"
        if got["decision"] != expect["decision"]:
            wrong.append(f"{label}: {got['decision']} ({got['reason']}), expected {expect['decision']}")
        elif "sid" in expect and expect["sid"] not in {d["sid"] for d in got["denied_by"]}:
            wrong.append(f"{label}: denied by {got['denied_by']}, expected Sid {expect['sid']}")
        elif "missing_keys" in expect and expect["missing_keys"] != got["missing_keys"]:
            wrong.append(f"{label}: missing {got['missing_keys']}, expected {expect['missing_keys']}")
    assert not wrong, "\n".join(wrong)


def test_each_seed_event_is_denied_for_ordinary_and_allowed_for_exempt_principals():
    seen: dict[str, set[str]] = {}
    for trail in TRAILS:
        for record in _records(trail)[1]:
            seen.setdefault(record["eventName"], set()).add(record["netguard-expect"]["decision"])
    for event in SEED_EVENTS | {"DeleteFlowLogs"}:
        assert {"Allow", "Deny"} <= seen.get(event, set()), f"{event} lacks an Allow and a Deny fixture"


@pytest.mark.parametrize("config,limit", [("org.yaml", 10240), ("org-legacy.yaml", 5120)])
def test_every_guardrail_renders_under_the_size_limit(config, limit, tmp_path):
    org = load_org_config(FIXTURES / "org" / config)
    assert org.scp_size_limit == limit
    written = render_to_dir(org, tmp_path)
    assert {name for name, _ in written} == set(templates())
    for name, size in written:
        text = (tmp_path / f"{name}.json").read_text().strip()
        assert len(text) == size <= limit
        assert validate_document(text, size_limit=limit, org=org) == []


def test_rendered_policies_are_minified_and_carry_the_catalogue_actions():
    rendered = render(load_org_config(ORG))
    for control in load_catalog().values():
        if control.scp:
            document = rendered[control.scp["policy"]]
            statement = next(s for s in document["Statement"] if s["Sid"] == control.scp["sid"])
            if control.actions:
                assert statement["Action"] == list(control.actions)
            exempt = statement["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
            assert exempt[:2] == ["arn:aws:iam::*:role/netguard-deploy", "arn:aws:iam::*:role/break-glass/*"]
    assert " " not in minify(rendered["ng-deny-network-deletes"])


def test_render_refuses_an_oversize_guardrail(tmp_path):
    org_file = tmp_path / "org.yaml"
    org_file.write_text(ORG.read_text() + "scp_size_limit: 300\n")
    out = tmp_path / "out"
    code = main(["policy", "render", "--config", str(org_file), "--out", str(out)])
    assert code == 2
    assert not out.exists() or not list(out.iterdir())


def _doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


EXEMPT = {
    "ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::*:role/netguard-deploy", "arn:aws:iam::*:role/break-glass/*"]}
}


def test_validate_accepts_a_sound_policy_and_names_each_problem():
    good = _doc({"Sid": "A", "Effect": "Deny", "Action": "ec2:DeleteVpc", "Resource": "*", "Condition": EXEMPT})
    assert validate_document(good) == []
    org = load_org_config(ORG)
    assert validate_document(good, org=org) == []
    problems = validate_document(
        _doc(
            {
                "Sid": "A",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "ec2:DeleteVpc",
                "Resource": "*",
                "Condition": EXEMPT,
            }
        )
    )
    assert any("cannot have Principal" in p for p in problems)
    problems = validate_document(_doc({"Sid": "A", "Effect": "Deny", "Action": "organizations:*", "Resource": "*"}))
    assert any("lockout guard" in p for p in problems)
    only_deploy = {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/netguard-deploy"}}
    problems = validate_document(
        _doc({"Effect": "Deny", "Action": "organizations:*", "Resource": "*", "Condition": only_deploy}), org=org
    )
    assert any("break-glass" in p and "lockout" in p for p in problems)
    assert any("over the SCP limit" in p for p in validate_document(good, size_limit=50))
    problems = validate_document(
        _doc(
            {
                "Sid": "A",
                "Effect": "Deny",
                "Action": ["ec2:DeleteVpcc", "ec3:DeleteVpc", "ec2:Nope*"],
                "Resource": "*",
                "Condition": EXEMPT,
            },
            {"Sid": "A", "Effect": "Deny", "Action": "ec2:deletevpc", "Resource": "*", "Condition": EXEMPT},
        )
    )
    assert "unknown action 'ec2:DeleteVpcc'" in problems
    assert any("unknown service prefix 'ec3'" in p for p in problems)
    assert any("matches no ec2 action" in p for p in problems)
    assert "duplicate Sid: A" in problems
    problems = validate_document(json.dumps({"Version": "2012-10-17", "Statement": "deny everything"}))
    assert any(p.startswith("Statement:") for p in problems)
    problems = validate_document(
        _doc({"Effect": "Deny", "Action": "ec2:DeleteVpc", "NotAction": "s3:*", "Resource": "*", "Condition": EXEMPT})
    )
    assert any("exactly one of Action, NotAction" in p for p in problems)
    assert validate_document("{not json") == [
        "invalid JSON at line 1: Expecting property name enclosed in double quotes"
    ]


def test_validate_cli_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(
        _doc({"Sid": "A", "Effect": "Deny", "Action": "ec2:DeleteVpc", "Resource": "*", "Condition": EXEMPT})
    )
    assert main(["policy", "validate", str(good)]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text(
        _doc({"Sid": "A", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "ec2:DeleteVpc", "Resource": "*"})
    )
    assert main(["policy", "validate", str(good), str(bad)]) == 2
    out = capsys.readouterr().out
    assert f"{bad}: statement A: SCPs cannot have Principal" in out
    assert "Traceback" not in out


def _request(action: str, **values) -> Request:
    return Request(action, RequestContext.build({"aws:PrincipalArn": "arn:aws:iam::1:role/dev", **values}))


def test_evaluator_needs_an_allow_at_every_level():
    deny_nothing = Policy("allow-ec2", {"Statement": [{"Effect": "Allow", "Action": "ec2:*", "Resource": "*"}]})
    full = Policy("FullAWSAccess", FULL_AWS_ACCESS)
    assert evaluate_scps([[full], [deny_nothing]], _request("ec2:DeleteVpc")).decision == "Allow"
    decision = evaluate_scps([[full], [deny_nothing]], _request("s3:GetObject"))
    assert decision.decision == "Deny" and "level 1" in decision.reason


def test_evaluator_condition_semantics():
    full = Policy("FullAWSAccess", FULL_AWS_ACCESS)

    def decide(condition: dict, **values) -> str:
        deny = Policy(
            "d", {"Statement": [{"Effect": "Deny", "NotAction": "s3:*", "Resource": "*", "Condition": condition}]}
        )
        return evaluate_scps([[full, deny]], _request("EC2:DeleteVpc", **values)).decision

    # Negated operators are true when the key is absent; a key the record cannot supply is Indeterminate.
    ctx_absent = Request("ec2:DeleteVpc", RequestContext.build({}, absent=["aws:SourceIp"]))
    deny = Policy(
        "d",
        {
            "Statement": [
                {
                    "Effect": "Deny",
                    "Action": "ec2:*",
                    "Resource": "*",
                    "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
                }
            ]
        },
    )
    assert evaluate_scps([[full, deny]], ctx_absent).decision == "Deny"
    unknown = evaluate_scps([[full, deny]], Request("ec2:DeleteVpc", RequestContext.build({})))
    assert unknown.decision == "Indeterminate" and unknown.missing == ["aws:SourceIp"]
    assert decide({"StringEqualsIfExists": {"aws:RequestTag/team": "x"}}) == "Indeterminate"
    assert decide({"StringEqualsIfExists": {"aws:RequestTag/team": "x"}}, **{"aws:RequestTag/team": "y"}) == "Allow"
    assert decide({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/d?v"}}) == "Deny"
    assert (
        decide(
            {"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:role/dev"}},
            **{"aws:PrincipalAccount": "1"},
        )
        == "Deny"
    )
    assert decide({"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:role/dev"}}) == (
        "Indeterminate"
    )
    assert decide({"Null": {"aws:RequestTag/team": "true"}}, **{"aws:RequestTag/team": "x"}) == "Allow"
    assert decide({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}}, **{"aws:TagKeys": ["c", "b"]}) == "Deny"
    assert decide({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, **{"aws:TagKeys": ["c", "b"]}) == "Allow"
    assert decide({"Bool": {"aws:ViaAWSService": "false"}}, **{"aws:ViaAWSService": False}) == "Deny"
    assert decide({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}, **{"aws:MultiFactorAuthAge": "10"}) == "Deny"


def test_iam_guardrails_render_and_hold(tmp_path):
    """The permission boundary denies like the SCPs; the NetworkAdmin policy passes netguard's own checks."""
    org = load_org_config(ORG)
    written = dict(render_to_dir(org, tmp_path, kind="iam"))
    assert set(written) == {"ng-permission-boundary", "ng-network-admin", "ng-audit-readonly", "ng-audit-caller"}
    boundary = Policy("boundary", json.loads((tmp_path / "ng-permission-boundary.json").read_text()))

    def decide(action: str, role: str) -> str:
        context = RequestContext.build({"aws:PrincipalArn": f"arn:aws:iam::123456789012:role/{role}"})
        return evaluate_scps([[boundary]], Request(action, context)).decision

    assert decide("ec2:DeleteVpc", "Developer") == "Deny"
    assert decide("ec2:DeleteVpc", "network/NetworkAdmin") == "Allow"
    assert decide("ec2:DescribeVpcs", "Developer") == "Allow"
    assert decide("iam:DeleteRolePermissionsBoundary", "Developer") == "Deny"

    admin = json.loads((tmp_path / "ng-network-admin.json").read_text())
    template = tmp_path / "admin.json"
    template.write_text(
        json.dumps(
            {
                "Resources": {
                    "NetworkAdmin": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": admin}}
                }
            }
        )
    )
    assert main(["scan", str(template)]) == 0


def test_validate_cli_rejects_oversize_and_lockout(tmp_path, capsys):
    org = tmp_path / "org.yaml"
    org.write_text(ORG.read_text())
    big = tmp_path / "big.json"
    actions = sorted(f"ec2:{a}" for a in __import__("netguard.policy.validate", fromlist=["x"]).known_actions()["ec2"])
    big.write_text(
        _doc({"Sid": "Big", "Effect": "Deny", "Action": actions[:600], "Resource": "*", "Condition": EXEMPT})
    )
    no_break_glass = tmp_path / "lockout.json"
    no_break_glass.write_text(
        _doc(
            {
                "Sid": "NoBreakGlass",
                "Effect": "Deny",
                "Action": "organizations:DetachPolicy",
                "Resource": "*",
                "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/netguard-deploy"}},
            }
        )
    )
    assert main(["policy", "validate", str(big), str(no_break_glass), "--config", str(org)]) == 2
    out = capsys.readouterr().out
    assert f"{big}: " in out and "over the SCP limit of 10240" in out
    assert f"{no_break_glass}: Deny statement NoBreakGlass can deny the break-glass" in out


def test_simulate_cli_json(tmp_path, capsys):
    policies = tmp_path / "scp"
    assert main(["policy", "render", "--config", str(ORG), "--out", str(policies)]) == 0
    capsys.readouterr()
    trail = FIXTURES / "cloudtrail" / "seed-events.json"
    code = main(
        [
            "policy",
            "simulate",
            "--policies",
            str(policies),
            "--events",
            str(trail),
            "--config",
            str(ORG),
            "--format",
            "json",
        ]
    )
    assert code == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert {r["decision"] for r in results} == {"Allow", "Deny"}
    denied = next(r for r in results if r["decision"] == "Deny")
    assert denied["policy"].endswith(".json") and denied["sid"]
    code = main(["policy", "simulate", "--policies", str(policies), "--events", str(tmp_path / "missing.json")])
    assert code == 2


def test_policies_nested_below_a_level_are_an_error_not_silently_ignored(tmp_path):
    deny = '{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "ec2:CreateVpc", "Resource": "*"}]}'
    (tmp_path / "ou" / "team").mkdir(parents=True)
    (tmp_path / "ou" / "team" / "deny.json").write_text(deny)
    (tmp_path / "ou" / "empty").mkdir()
    _, errors = load_policy_levels(tmp_path)
    assert [Path(e.file).name for e in errors] == ["team", tmp_path.name]
    assert "below a level" in errors[0].message
    assert errors[1].message == "no policy files (*.json) in this folder or its subfolders"


def test_a_policies_folder_with_no_policies_is_an_error_not_a_run_of_allows(tmp_path, capsys):
    trail = FIXTURES / "cloudtrail" / "seed-events.json"
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "no-such-folder"):
        code = main(["policy", "simulate", "--policies", str(folder), "--events", str(trail)])
        out, err = capsys.readouterr()
        assert code == 2 and str(folder) in out + err


def test_without_full_aws_access_a_root_level_with_no_files_is_an_error(tmp_path):
    allow = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'
    (tmp_path / "ou").mkdir()
    (tmp_path / "ou" / "allow.json").write_text(allow)
    levels, errors = load_policy_levels(tmp_path, full_aws_access=False)
    assert [Path(e.file) for e in errors] == [tmp_path]
    assert "every level needs its own SCPs" in errors[0].message
    levels, errors = load_policy_levels(tmp_path)  # FullAWSAccess at the root: a complete set
    assert errors == [] and len(levels) == 2
    (tmp_path / "allow.json").write_text(allow)
    assert load_policy_levels(tmp_path, full_aws_access=False)[1] == []


def test_an_unrendered_template_is_an_error_naming_it_and_nothing_is_evaluated(capsys):
    trail = FIXTURES / "cloudtrail" / "seed-events.json"
    templates_folder = FIXTURES.parent / "policies" / "scp"
    for command in (["simulate", "--events", str(trail)], ["replay", "--source", str(trail)]):
        code = main(["policy", command[0], "--policies", str(templates_folder), *command[1:]])
        out, err = capsys.readouterr()
        assert code == 2 and out == "" and "internal error" not in err
        assert "ng-deny-network-deletes.json: not a valid SCP, not evaluated" in err
        assert "unrendered template: run netguard policy render" in err
