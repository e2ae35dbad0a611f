"""What PR pipelines consume: SARIF valid against the 2.1.0 schema, GitHub annotations, baselines,
suppressions in every form netguard honours, and generated docs that stay current."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import jsonschema
import pytest

from netguard.cli import main
from netguard.resources import pack_path
from tests.conftest import FIXTURES, ROOT

SUPPRESSED = """\
Resources:
  # netguard:skip=NG-VPC-003: options come from the shared-services stack
  Vpc:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: 10.0.0.0/16
  Eip:
    Type: AWS::EC2::EIP
    Metadata:
      checkov:
        skip:
          - id: CKV_NG_EIP_001
            comment: attached by the bastion at boot
  EipNoReason:
    Type: AWS::EC2::EIP
    Metadata:
      cfn-lint:
        config:
          ignore_checks: [W9505]
"""
SUPPRESSED_4_SPACES = """\
Resources:
    # netguard:skip=NG-VPC-003: options come from the shared-services stack
    Vpc:
        Type: AWS::EC2::VPC
        Properties:
            CidrBlock: 10.0.0.0/16
    Eip:
        Type: AWS::EC2::EIP
        Metadata:
            checkov:
                skip:
                    -   id: CKV_NG_EIP_001
                        comment: attached by the bastion at boot
    EipNoReason:
        Type: AWS::EC2::EIP
        Metadata:
            cfn-lint:
                config:
                    ignore_checks: [W9505]
"""
SUPPRESSED_TF = """\
resource "aws_eip" "kept" {
  #checkov:skip=CKV_NG_EIP_001:reserved for the partner allow-list
  domain = "vpc"
}

# netguard:skip=NG-EIP-001
resource "aws_eip" "no_reason" {
  domain = "vpc"
}
"""


def _scan_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["scan", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_sarif_validates_against_the_schema_for_findings_suppressions_and_errors(tmp_path, capsys):
    shutil.copytree(FIXTURES / "cloudformation", tmp_path / "cfn")
    (tmp_path / "cfn" / "suppressed.yaml").write_text(SUPPRESSED)
    (tmp_path / "cfn" / "broken.yaml").write_text("Resources: [\n")
    code = main(["scan", str(tmp_path / "cfn"), "--format", "sarif"])
    assert code == 2
    sarif = json.loads(capsys.readouterr().out)
    schema = json.loads(pack_path("netguard.schemas", "sarif-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(sarif)
    run = sarif["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert all(float(r["properties"]["security-severity"]) > 0 and "helpUri" not in r for r in rules.values())
    assert all("docs/controls.md#ng-" in r["help"]["markdown"] for r in rules.values())  # no public URL: the file
    assert any("suppressions" in r for r in run["results"])
    assert all(r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1 for r in run["results"])
    assert run["invocations"][0]["toolExecutionNotifications"]


@pytest.mark.parametrize("indent", [2, 4])
def test_suppressions_in_every_form_and_layout(tmp_path, capsys, indent):
    """A reasoned skip in 4-space YAML was once ignored: positions now come from the parser."""
    (tmp_path / "t.yaml").write_text(SUPPRESSED if indent == 2 else SUPPRESSED_4_SPACES)
    code, report = _scan_json(capsys, str(tmp_path))
    state = {(f["control"], f["resource"]): f.get("suppression_reason") for f in report["findings"]}
    assert state[("NG-VPC-003", "Vpc")] == "options come from the shared-services stack"
    assert state[("NG-EIP-001", "Eip")] == "attached by the bastion at boot"
    assert state[("NG-EIP-001", "EipNoReason")] is None
    no_reason = next(f for f in report["findings"] if f["resource"] == "EipNoReason")
    assert "without a reason is not honoured" in no_reason["message"]
    assert code == 1  # NG-VPC-001 on Vpc and the reasonless one still fail


def test_terraform_suppressions(tmp_path, capsys):
    (tmp_path / "main.tf").write_text(SUPPRESSED_TF)
    code, report = _scan_json(capsys, str(tmp_path))
    state = {f["resource"]: f.get("suppressed", False) for f in report["findings"]}
    assert state == {"aws_eip.kept": True, "aws_eip.no_reason": False}
    assert code == 1


def test_baseline_only_new_findings_fail(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "legacy.yaml").write_text("Resources:\n  Old:\n    Type: AWS::EC2::EIP\n")
    assert main(["scan", ".", "--create-baseline", "baseline.json"]) == 0
    capsys.readouterr()
    assert main(["scan", ".", "--baseline", "baseline.json"]) == 0
    (tmp_path / "legacy.yaml").write_text(
        "Resources:\n  # moved down a line\n  Old:\n    Type: AWS::EC2::EIP\n  New:\n    Type: AWS::EC2::EIP\n"
    )
    capsys.readouterr()
    code, report = _scan_json(capsys, ".", "--baseline", "baseline.json")
    assert code == 1
    assert {(f["resource"], f.get("baselined", False)) for f in report["findings"]} == {("Old", True), ("New", False)}
    main(["scan", ".", "--baseline", "baseline.json", "--format", "sarif"])
    states = {
        r["logicalLocations"][0]["name"]
        if "logicalLocations" in r
        else r["locations"][0]["logicalLocations"][0]["name"]: r["baselineState"]
        for r in json.loads(capsys.readouterr().out)["runs"][0]["results"]
    }
    assert states == {"Old": "unchanged", "New": "new"}
    (tmp_path / "bad-baseline.json").write_text("[]")
    assert main(["scan", ".", "--baseline", "bad-baseline.json"]) == 2


def test_github_annotations(tmp_path, capsys):
    (tmp_path / "vpc.yaml").write_text(
        "Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    Properties:\n      CidrBlock: 10.0.0.0/16\n"
    )
    assert main(["scan", str(tmp_path), "--format", "github"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("::error file=") and ",line=2,title=NG-VPC-001 Vpc::" in line for line in lines)
    assert any(line.startswith("::warning file=") and "NG-VPC-003" in line for line in lines)


def test_docs_are_generated_from_the_catalogue_and_current():
    generated = subprocess.run([sys.executable, "-m", "netguard.docs"], capture_output=True, text=True, check=True)
    committed = (ROOT / "docs" / "controls.md").read_text()
    assert generated.stdout == committed, "docs/controls.md is stale: run `make docs`"
    for control_id in ("NG-VPC-001", "NG-IAM-001", "NG-PCX-002"):
        assert f"## {control_id}" in committed
    assert "DenyNetworkDestructiveDeletes" in committed and "E9506" in committed and "CKV_NG_IAM_001" in committed
