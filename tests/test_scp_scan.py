"""SCP files in `netguard scan`: each problem `netguard policy validate` finds is a finding under a
NG-SCP control (not an input error), on the statement it is about; `scp_paths` decides which files are SCPs.

The expectations for fixtures/policy_files/ are in its expected.yaml (JSON holds no comments).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest
import yaml

from netguard.catalog import load_catalog
from netguard.cli import main
from netguard.config import DEFAULT_CONFIG, DEFAULT_SCP_PATHS
from netguard.policy import validate
from netguard.resources import pack_path
from netguard.scan.policy_files import _glob_regex, is_scp_path
from netguard.scan.run import scan
from tests.conftest import FIXTURES, fixture_config

POLICY_FIXTURES = FIXTURES / "policy_files"
EXPECTED: dict[str, dict] = yaml.safe_load((POLICY_FIXTURES / "expected.yaml").read_text())
SCP_CONTROLS = [c for c in load_catalog().values() if c.resource_types("policy")]

EXEMPT = {
    "ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::*:role/netguard-deploy", "arn:aws:iam::*:role/break-glass/*"]}
}


def _policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, indent=2)


@pytest.fixture(scope="module")
def policy_scan():
    return scan([str(POLICY_FIXTURES)], fixture_config())


def compare(findings, name: str, expected: dict) -> list[str]:
    """Problems with one fixture's findings against its expectations (scope, resources and lines)."""
    path = (POLICY_FIXTURES / name).resolve()
    scope = set(expected["scope"])
    got = {(f.control, f.resource, f.line) for f in findings if Path(f.file).resolve() == path and f.control in scope}
    want = {tuple(entry) for entry in expected["findings"]}
    problems = []
    if want - got:
        problems.append(f"missing: {sorted(want - got)}")
    if got - want:
        problems.append(f"unexpected: {sorted(got - want)}")
    return problems


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_policy_fixture(policy_scan, name):
    assert not policy_scan.errors, policy_scan.errors
    assert not compare(policy_scan.findings, name, EXPECTED[name])


def test_every_policy_fixture_has_expectations_and_every_expectation_a_fixture():
    files = {p.relative_to(POLICY_FIXTURES).as_posix() for p in POLICY_FIXTURES.rglob("*.json")}
    assert files == set(EXPECTED)
    catalog = load_catalog()
    assert all(control in catalog for entry in EXPECTED.values() for control in entry["scope"])


def test_the_comparison_catches_a_wrong_line_and_a_missing_finding(policy_scan):
    import dataclasses

    name = "scps/unknown-actions.json"
    shifted = [dataclasses.replace(f, line=f.line + 1) for f in policy_scan.findings]
    assert any("unexpected" in p for p in compare(shifted, name, EXPECTED[name]))
    assert any("missing" in p for p in compare([], name, EXPECTED[name]))


def test_every_scp_control_has_a_failing_and_a_clean_fixture():
    assert {c.id for c in SCP_CONTROLS} == {"NG-SCP-001", "NG-SCP-002", "NG-SCP-003", "NG-SCP-004"}
    for control in SCP_CONTROLS:
        failing = [n for n, e in EXPECTED.items() if any(f[0] == control.id for f in e["findings"])]
        clean = [
            n
            for n, e in EXPECTED.items()
            if control.id in e["scope"] and not any(f[0] == control.id for f in e["findings"])
        ]
        assert failing and clean, control.id


def test_scp_findings_carry_the_catalogue_severity_and_name_their_resource(policy_scan):
    catalog = load_catalog()
    scp = [f for f in policy_scan.findings if f.control.startswith("NG-SCP-")]
    assert scp
    for finding in scp:
        assert finding.severity == catalog[finding.control].severity
        assert finding.message.startswith(f"{finding.resource}: ")
        assert finding.engines == ["netguard"]


# --- validate: every problem lands under exactly one catalogue control ------------------------------


def test_each_problem_falls_under_one_scp_control_and_keeps_its_message():
    document = _policy(
        {
            "Sid": "A",
            "Effect": "Deny",
            "Principal": "*",
            "Action": ["ec2:DeleteVpcc", "organizations:DetachPolicy"],
            "Resource": "*",
        },
        {
            "Sid": "A",
            "Effect": "Deny",
            "Action": "ec2:DeleteVpc",
            "NotAction": "x",
            "Resource": "*",
            "Condition": EXEMPT,
        },
        {"Effect": "Allow", "Action": "log:Get*", "Resource": "*"},
    )
    problems = validate.document_problems(document, size_limit=100)
    assert [p.message for p in problems] == validate.validate_document(document, size_limit=100)
    by_control = {}
    for problem in problems:
        by_control.setdefault(problem.control, []).append(problem)
    assert set(by_control) == {c.id for c in SCP_CONTROLS}
    refused = {(p.statement, p.sid, p.message.split(":")[0]) for p in by_control[validate.REFUSED]}
    assert (0, "A", "statement A") in refused  # the Principal
    assert (1, "A", "Statement/1") in refused  # Action and NotAction
    assert (0, None, "duplicate Sid") in refused  # the document; placed at the first duplicate
    assert [(p.statement, p.sid) for p in by_control[validate.OVERSIZE]] == [(None, None)]
    assert {(p.statement, p.sid) for p in by_control[validate.UNKNOWN_ACTION]} == {(0, "A"), (1, "A"), (2, None)}
    assert [(p.statement, p.sid) for p in by_control[validate.LOCKOUT]] == [(0, "A")]


@pytest.mark.parametrize(
    "text,control",
    [
        ("{not json", validate.REFUSED),
        ("[1, 2]", validate.REFUSED),
        ('{"Statement": ' * 40 + "{}" + "}" * 40, validate.REFUSED),
        (json.dumps({"Version": "2012-10-17", "Statement": "deny everything"}), validate.REFUSED),
    ],
)
def test_what_cannot_be_a_policy_is_refused(text, control):
    assert {p.control for p in validate.document_problems(text)} == {control}


def test_a_lone_statement_object_is_statement_zero():
    text = json.dumps({"Version": "2012-10-17", "Statement": {"Sid": "S", "Effect": "Nope", "Action": "ec2:DeleteVpc"}})
    placed = {(p.control, p.statement, p.sid, p.message.split(":")[0]) for p in validate.document_problems(text)}
    assert (validate.REFUSED, 0, "S", "Statement/Effect") in placed
    assert (validate.REFUSED, None, None, "Statement") in placed  # the Statement as a whole (no Resource)


# --- which files are SCPs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern,path,matches",
    [
        ("**/scp/**", "scp/a.json", True),
        ("**/scp/**", "org/scp/sub/a.json", True),
        ("**/scp/**", "/abs/outside/scp/a.json", True),
        ("**/scp/**", "scp.json", False),
        ("**/scp/**", "myscp/a.json", False),
        ("**/scps/**", "Org/SCPs/a.json", True),  # case-insensitive, as folder names were before
        ("org/guardrails/*.json", "org/guardrails/a.json", True),
        ("org/guardrails/*.json", "org/guardrails/nested/a.json", False),
        ("org/guardrails/*.json", "other/org/guardrails/a.json", False),
        ("org/**/*.json", "org/a.json", True),
        ("org/**/*.json", "org/x/y/a.json", True),
        ("policies/scp-?.json", "policies/scp-1.json", True),
        ("policies/scp-[!0-9].json", "policies/scp-1.json", False),
        ("policies/scp-[!0-9].json", "policies/scp-a.json", True),
        ("a+b/(x).json", "a+b/(x).json", True),
    ],
)
def test_scp_path_globs(pattern, path, matches):
    assert bool(_glob_regex(pattern).fullmatch(path)) is matches


def _repository(tmp_path: Path, monkeypatch, config: str | None) -> Path:
    (tmp_path / ".git").mkdir(parents=True)
    if config is not None:
        (tmp_path / ".netguard.yaml").write_text(config)
    monkeypatch.chdir(tmp_path)
    return tmp_path


LOOKALIKE = _policy(
    {"Sid": "FullAWSAccess", "Effect": "Allow", "Action": "*", "Resource": "*"},
    {"Sid": "DenyPolicyDetach", "Effect": "Deny", "Action": "organizations:DetachPolicy", "Resource": "*"},
)


def _scan(capsys, *args: str) -> tuple[int, dict]:
    code = main(["scan", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def _controls(report: dict) -> set[tuple[str, str]]:
    return {(Path(os.path.relpath(Path(f["file"]).resolve())).as_posix(), f["control"]) for f in report["findings"]}


def test_config_scp_paths_replace_the_defaults_relative_to_the_repository_root(tmp_path, capsys, monkeypatch):
    root = _repository(tmp_path, monkeypatch, "scp_paths: ['org/guardrails/*.json']\n")
    for folder in ("org/guardrails", "org/guardrails/drafts", "scp", "other/org/guardrails"):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / "p.json").write_text(LOOKALIKE)
    code, report = _scan(capsys, str(root))
    assert code == 1 and report["errors"] == []
    found = _controls(report)
    assert ("org/guardrails/p.json", "NG-SCP-004") in found
    assert not any(file == "org/guardrails/p.json" and c.startswith("NG-IAM") for file, c in found)
    for identity in ("org/guardrails/drafts/p.json", "scp/p.json", "other/org/guardrails/p.json"):
        assert (identity, "NG-IAM-001") in found, identity  # judged as identity policies
        assert not any(file == identity and c.startswith("NG-SCP") for file, c in found), identity
    code, report = _scan(capsys, "org")  # relative to the repository root, not to the path scanned
    assert ("org/guardrails/p.json", "NG-SCP-004") in _controls(report)


def test_default_scp_paths_and_an_empty_list(tmp_path, capsys, monkeypatch):
    root = _repository(tmp_path, monkeypatch, None)
    for folder in ("scp", "a/scps", "b/Service-Control-Policies", "guardrails"):
        (root / folder).mkdir(parents=True)
        (root / folder / "p.json").write_text(LOOKALIKE)
    _, report = _scan(capsys, ".")
    scps = {file for file, control in _controls(report) if control == "NG-SCP-004"}
    assert scps == {"scp/p.json", "a/scps/p.json", "b/Service-Control-Policies/p.json"}
    (root / ".netguard.yaml").write_text("scp_paths: []\n")
    _, report = _scan(capsys, ".")
    assert not any(control.startswith("NG-SCP") for _, control in _controls(report))


def test_scp_paths_must_be_a_list_of_globs(tmp_path, capsys, monkeypatch):
    _repository(tmp_path, monkeypatch, "scp_paths: '**/scp/**'\n")
    assert main(["scan", "."]) == 2
    assert "scp_paths" in capsys.readouterr().err


def test_the_default_globs_are_the_pre_commit_hooks_folders():
    hooks = yaml.safe_load((Path(__file__).parent.parent / ".pre-commit-hooks.yaml").read_text())
    pattern = next(h["files"] for h in hooks if h["id"] == "netguard-policy-validate")
    assert pattern == r"(^|/)(scps?|service-control-policies)/.*\.json$"
    assert DEFAULT_SCP_PATHS == ("**/scp/**", "**/scps/**", "**/service-control-policies/**")


def test_a_file_outside_the_repository_is_matched_by_its_absolute_path(tmp_path, monkeypatch):
    _repository(tmp_path / "repo", monkeypatch, None)
    outside = tmp_path / "elsewhere" / "scp" / "p.json"
    assert is_scp_path(str(outside), DEFAULT_CONFIG)  # **/scp/** applies to any path
    assert not is_scp_path(str(outside), replace(DEFAULT_CONFIG, scp_paths=("scp/*.json",)))
    assert is_scp_path("scp/p.json", replace(DEFAULT_CONFIG, scp_paths=("scp/*.json",)))


# --- what stays an input error, and what suppresses ----------------------------------------------------


def test_an_scp_that_does_not_parse_is_still_an_input_error(tmp_path, capsys, monkeypatch):
    root = _repository(tmp_path, monkeypatch, None)
    (root / "scp").mkdir()
    (root / "scp" / "broken.json").write_text('{"Version": "2012-10-17", "Statement": [\n  {"Effect": "Deny",\n')
    (root / "scp" / "fine.json").write_text(
        _policy({"Effect": "Deny", "Action": "ec2:DeleteVpc", "Resource": "*", "Condition": EXEMPT})
    )
    code, report = _scan(capsys, ".")
    assert code == 2
    assert [Path(e["file"]).name for e in report["errors"]] == ["broken.json"]
    assert report["errors"][0]["message"].startswith("invalid JSON")
    assert report["findings"] == []


def test_baseline_accepts_old_scp_findings_and_fails_new_ones(tmp_path, capsys, monkeypatch):
    root = _repository(tmp_path, monkeypatch, None)
    (root / "scp").mkdir()
    old = {"Sid": "DenyPolicyDetach", "Effect": "Deny", "Action": "organizations:DetachPolicy", "Resource": "*"}
    (root / "scp" / "p.json").write_text(_policy(old))
    assert main(["scan", ".", "--create-baseline", "baseline.json"]) == 0
    capsys.readouterr()
    assert main(["scan", ".", "--baseline", "baseline.json"]) == 0
    capsys.readouterr()
    new = {
        "Sid": "DenySubnetDeletes",
        "Effect": "Deny",
        "Action": "ec2:DeleteSubnett",
        "Resource": "*",
        "Condition": EXEMPT,
    }
    (root / "scp" / "p.json").write_text(_policy(new, old))  # the old statement moves down: still baselined
    code, report = _scan(capsys, ".", "--baseline", "baseline.json")
    assert code == 1
    state = {(f["control"], f["resource"]): f.get("baselined", False) for f in report["findings"]}
    assert state == {("NG-SCP-004", "DenyPolicyDetach"): True, ("NG-SCP-003", "DenySubnetDeletes"): False}


def test_a_yaml_scp_takes_netguard_skip_comments(tmp_path, capsys, monkeypatch):
    root = _repository(tmp_path, monkeypatch, None)
    (root / "scp").mkdir()
    (root / "scp" / "p.yaml").write_text(
        "Version: '2012-10-17'\n"
        "Statement:\n"
        "  # netguard:skip=NG-SCP-004: the accounts it is attached to have no deploy role\n"
        "  - Sid: DenyPolicyDetach\n"
        "    Effect: Deny\n"
        "    Action: organizations:DetachPolicy\n"
        "    Resource: '*'\n"
        "  - Sid: DenyPolicyDelete\n"
        "    Effect: Deny\n"
        "    Action: organizations:DeletePolicy\n"
        "    Resource: '*'\n"
    )
    code, report = _scan(capsys, ".")
    state = {f["resource"]: (f["line"], f.get("suppression_reason")) for f in report["findings"]}
    assert state == {
        "DenyPolicyDetach": (4, "the accounts it is attached to have no deploy role"),
        "DenyPolicyDelete": (8, None),
    }
    assert code == 1


# --- reports ---------------------------------------------------------------------------------------------


def test_sarif_lists_the_scp_rules_and_validates(tmp_path, capsys):
    shutil.copytree(POLICY_FIXTURES, tmp_path / "policies")
    assert main(["scan", str(tmp_path / "policies"), "--format", "sarif"]) == 1
    sarif = json.loads(capsys.readouterr().out)
    schema = json.loads(pack_path("netguard.schemas", "sarif-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(sarif)
    run = sarif["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert {c.id for c in SCP_CONTROLS} <= set(rules)
    scp_results = [r for r in run["results"] if r["ruleId"].startswith("NG-SCP-")]
    assert {r["ruleId"] for r in scp_results} == {c.id for c in SCP_CONTROLS}
    assert all(rules[r["ruleIndex"]] == r["ruleId"] for r in run["results"])
    assert all(r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1 for r in scp_results)


def test_junit_and_text_carry_scp_findings(tmp_path, capsys):
    shutil.copytree(POLICY_FIXTURES / "scps", tmp_path / "scps")
    report = tmp_path / "report.xml"
    assert main(["scan", str(tmp_path / "scps"), "--format", "junit", "--output", str(report)]) == 1
    failures = {
        c.get("name") for c in ET.parse(report).getroot().findall(".//testcase") if c.find("failure") is not None
    }
    assert failures == {"NG-SCP-003"}
    capsys.readouterr()
    assert main(["scan", str(tmp_path / "scps")]) == 1
    out = capsys.readouterr().out
    assert (
        "HIGH NG-SCP-003 Service control policy names an action IAM does not know: DenyNetworkDeletes" in out
        and "unknown action 'ec2:DeleteVpcPeeringConection'" in out
    )


def test_docs_describe_the_scp_controls():
    from netguard.docs import controls_markdown

    text = controls_markdown()
    for control in SCP_CONTROLS:
        section = text.split(f"## {control.id}\n", 1)[1].split("\n## ", 1)[0]
        assert "Engine ids: none" in section and "Policy files" in section and "`SCP`" in section
