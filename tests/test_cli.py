"""netguard scan as users run it: exit codes, error reporting, configuration and output formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from netguard.cli import main
from tests.conftest import ROOT

BAD_VPC = """\
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: 10.0.0.0/16
"""
GOOD_PEERING = """\
Resources:
  Peering:
    Type: AWS::EC2::VPCPeeringConnection
    Properties:
      VpcId: vpc-1
      PeerVpcId: vpc-2
      PeerOwnerId: "111122223333"
"""


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_clean_template_exits_0(tmp_path, capsys):
    (tmp_path / "ok.yaml").write_text("Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n")
    code, out, _ = run(capsys, "scan", str(tmp_path))
    assert code == 0, out
    assert "0 findings, 0 errors" in out


def test_findings_exit_1_with_json_contract(tmp_path, capsys):
    (tmp_path / "vpc.yaml").write_text(BAD_VPC)
    code, out, _ = run(capsys, "scan", str(tmp_path), "--format", "json")
    assert code == 1
    report = json.loads(out)
    controls = {(f["control"], f["resource"]) for f in report["findings"]}
    assert controls == {("NG-VPC-001", "Vpc"), ("NG-VPC-003", "Vpc")}
    finding = next(f for f in report["findings"] if f["control"] == "NG-VPC-001")
    assert finding["file"].endswith("vpc.yaml") and finding["line"] == 2 and finding["severity"] == "high"
    assert finding["engines"] == ["netguard"]
    assert report["errors"] == []


def test_parse_error_is_reported_with_file_and_line_and_the_rest_goes_on(tmp_path, capsys):
    (tmp_path / "vpc.yaml").write_text(BAD_VPC)
    (tmp_path / "broken.yaml").write_text("Resources:\n  Vpc:\n    Type: [unclosed\n")
    (tmp_path / "broken.json").write_text('{"Resources": {"Vpc": }')
    (tmp_path / "broken.tf").write_text('resource "aws_vpc" "x" {\n  cidr_block = \n')
    code, out, err = run(capsys, "scan", str(tmp_path), "--format", "json")
    assert code == 2
    report = json.loads(out)
    errors = {Path(e["file"]).name: e for e in report["errors"]}
    assert set(errors) == {"broken.yaml", "broken.json", "broken.tf"}
    assert "invalid YAML" in errors["broken.yaml"]["message"] and errors["broken.yaml"]["line"] == 4
    assert "invalid JSON" in errors["broken.json"]["message"] and errors["broken.json"]["line"] == 1
    assert "invalid HCL" in errors["broken.tf"]["message"]
    assert {f["control"] for f in report["findings"]} == {"NG-VPC-001", "NG-VPC-003"}
    assert "Traceback" not in out + err


def test_missing_path_and_unsupported_file_are_errors(tmp_path, capsys):
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    code, out, _ = run(capsys, "scan", str(tmp_path / "nope"), str(other))
    assert code == 2
    assert "no such file or directory" in out
    assert "not a CloudFormation" in out


def test_empty_and_comment_only_files_are_not_errors(tmp_path, capsys):
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "comments.yaml").write_text("# nothing here\n")
    (tmp_path / "empty.tf").write_text("")
    code, out, _ = run(capsys, "scan", str(tmp_path))
    assert code == 0, out


def test_only_the_repository_roots_config_applies(tmp_path, capsys, monkeypatch):
    """The config is the repository owner's: the root's `.netguard.yaml`, never one in a scanned
    subfolder (a pull request can add one) and never one above the repository."""
    repo = tmp_path / "repo"
    nested = repo / "stacks" / "network"
    nested.mkdir(parents=True)
    (repo / ".git").mkdir()
    (nested / "peering.yaml").write_text(GOOD_PEERING)
    (tmp_path / ".netguard.yaml").write_text('approved_peer_accounts: ["111122223333"]\n')  # above the repo
    monkeypatch.chdir(nested)
    code, _, _ = run(capsys, "scan", ".")
    assert code == 1  # 111122223333 is not approved by default, and the file above the repo is not read
    (nested / ".netguard.yaml").write_text('approved_peer_accounts: ["111122223333"]\nseverity_threshold: critical\n')
    code, out, _ = run(capsys, "scan", ".", "--format", "json")
    assert code == 1 and any("ignored as a config" in n for n in json.loads(out)["notices"])
    (repo / ".netguard.yaml").write_text('approved_peer_accounts: ["111122223333"]\n')
    code, out, _ = run(capsys, "scan", ".")
    assert code == 0, out
    monkeypatch.setenv("NETGUARD_CONFIG", str(nested / ".netguard.yaml"))
    code, out, _ = run(capsys, "scan", ".")
    assert code == 0, out


def test_invalid_config_is_exit_2_naming_the_file(tmp_path, capsys):
    (tmp_path / "vpc.yaml").write_text(BAD_VPC)
    config = tmp_path / "bad.yaml"
    config.write_text("approved_peer_accounts: [12]\n")
    code, _, err = run(capsys, "scan", str(tmp_path), "--config", str(config))
    assert code == 2
    assert str(config) in err and "approved_peer_accounts/0" in err
    config.write_text("severity_threshold: [\n")
    code, _, err = run(capsys, "scan", str(tmp_path), "--config", str(config))
    assert code == 2 and "invalid YAML" in err


def test_severity_threshold_drops_lower_findings(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "vpc.yaml").write_text(BAD_VPC)
    (tmp_path / ".netguard.yaml").write_text("severity_threshold: high\n")
    code, out, _ = run(capsys, "scan", str(tmp_path), "--format", "json")
    assert code == 1
    assert [f["control"] for f in json.loads(out)["findings"]] == ["NG-VPC-001"]


@pytest.mark.parametrize("engine", ["checkov", "cfn-lint", "all"])
def test_engine_flag_is_refused_not_a_silent_pass(tmp_path, capsys, engine):
    """`--engine cfn-lint` on Terraform once printed "1 files scanned, 0 findings" and exited 0."""
    (tmp_path / "main.tf").write_text('resource "aws_vpc" "main" {\n  cidr_block = "10.0.0.0/16"\n}\n')
    code, out, err = run(capsys, "scan", str(tmp_path), "--engine", engine, "--format", "json")
    assert code == 2
    assert "--engine" in err and "plug-in" in err
    code, out, _ = run(capsys, "scan", str(tmp_path), "--format", "json")
    assert code == 1 and {f["control"] for f in json.loads(out)["findings"]} >= {"NG-VPC-001"}


def test_sarif_and_junit_outputs(tmp_path, capsys):
    (tmp_path / "vpc.yaml").write_text(BAD_VPC)
    code, out, _ = run(capsys, "scan", str(tmp_path), "--format", "sarif")
    assert code == 1
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    run_ = sarif["runs"][0]
    rule_ids = [r["id"] for r in run_["tool"]["driver"]["rules"]]
    assert "NG-VPC-001" in rule_ids
    result = next(r for r in run_["results"] if r["ruleId"] == "NG-VPC-001")
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
    assert rule_ids[result["ruleIndex"]] == "NG-VPC-001"
    report = tmp_path / "report.xml"
    code, _, _ = run(capsys, "scan", str(tmp_path), "--format", "junit", "--output", str(report))
    cases = ET.parse(report).getroot().findall(".//testcase")
    assert len(cases) == 10  # every CloudFormation control, once for the one file
    assert {c.get("name") for c in cases if c.find("failure") is not None} == {"NG-VPC-001", "NG-VPC-003"}


def test_usage_error_is_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["scan"])
    assert exit_info.value.code == 2


def test_real_command_on_the_examples():
    """The installed console script, as the README's demo runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "netguard", "scan", "examples/", "--format", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert not report["errors"]
    found = {f["control"] for f in report["findings"]}
    assert {"NG-VPC-001", "NG-DHCP-001", "NG-EIP-001", "NG-PCX-001", "NG-PCX-002", "NG-IAM-001"} <= found
    assert "Traceback" not in proc.stderr


def test_terraform_modules_with_the_same_resource_names_are_kept_apart(tmp_path, capsys, monkeypatch):
    """Checkov builds one graph for all module folders of a run; addresses repeat across them."""
    for name, traffic in (("a", "ALL"), ("b", "REJECT"), ("c", "ALL")):
        module = tmp_path / name
        module.mkdir()
        (module / "main.tf").write_text(
            'resource "aws_vpc" "main" {\n  cidr_block = "10.0.0.0/16"\n}\n'
            f'resource "aws_flow_log" "main" {{\n  vpc_id = aws_vpc.main.id\n  traffic_type = "{traffic}"\n}}\n'
        )
    monkeypatch.setattr("netguard.scan.run.PARALLEL_THRESHOLD", 1)  # exercise the worker processes too
    for jobs in ("1", "2"):
        code, out, _ = run(capsys, "scan", str(tmp_path), "--format", "json", "--jobs", jobs)
        assert code == 1
        flagged = {
            (Path(f["file"]).parent.name, f["control"])
            for f in json.loads(out)["findings"]
            if f["control"] in ("NG-VPC-001", "NG-VPC-002")
        }
        assert flagged == {("b", "NG-VPC-002")}, jobs


def test_a_scan_imports_neither_engine(tmp_path):
    """netguard runs its own rules: a scan imports neither Checkov nor cfn-lint, and a
    CloudFormation-only scan not even the HCL parser."""
    (tmp_path / "vpc.yaml").write_text(BAD_VPC)
    (tmp_path / "tf").mkdir()
    (tmp_path / "tf" / "main.tf").write_text('resource "aws_vpc" "x" {\n  cidr_block = "10.0.0.0/16"\n}\n')
    code = (
        "import sys\n"
        "from netguard.cli import main\n"
        "main(['scan', *sys.argv[1:], '--format', 'json'])\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('checkov', 'cfnlint', 'hcl2')}))\n"
    )

    def imported(*paths: str) -> str:
        out = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, check=False)
        return out.stdout.strip().splitlines()[-1]

    assert imported(str(tmp_path / "vpc.yaml")) == "[]"
    assert imported(str(tmp_path)) == "['hcl2']"


def test_terraform_json_is_scanned_and_other_json_ignored(tmp_path, capsys):
    (tmp_path / "main.tf.json").write_text('{"resource": {"aws_vpc": {"x": {"cidr_block": "10.0.0.0/16"}}}}')
    (tmp_path / "other.json").write_text('{"name": "not infrastructure"}')
    code, out, _ = run(capsys, "scan", str(tmp_path), "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["errors"] == []
    assert {(Path(f["file"]).name, f["resource"]) for f in report["findings"]} == {("main.tf.json", "aws_vpc.x")}


def test_an_option_smuggled_in_by_a_file_name_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "--create-baseline=notes.yaml").write_text(BAD_VPC)
    code = main(["scan", "--create-baseline=notes.yaml"])
    assert code == 2 and "named like an option" in capsys.readouterr().err
    assert not (tmp_path / "notes.yaml").exists()
    assert main(["scan", "--", "--create-baseline=notes.yaml"]) == 1  # after `--` it is a file name


def test_no_baseline_is_created_inside_a_pre_commit_hook(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PRE_COMMIT", "1")
    (tmp_path / "vpc.yaml").write_text(BAD_VPC)
    assert main(["scan", str(tmp_path), "--create-baseline", str(tmp_path / "b.json")]) == 2
    assert not (tmp_path / "b.json").exists()


def test_an_unresolved_module_is_a_notice_or_an_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "main.tf").write_text('module "vpc" {\n  source = "terraform-aws-modules/vpc/aws"\n}\n')
    code, out, _ = run(capsys, "scan", ".", "--format", "json")
    report = json.loads(out)
    assert code == 0 and report["errors"] == [] and "module.vpc" in report["notices"][0]
    (tmp_path / ".netguard.yaml").write_text("unresolved_modules: error\n")
    code, out, _ = run(capsys, "scan", ".", "--format", "json")
    assert code == 2 and "module.vpc" in json.loads(out)["errors"][0]["message"]


def test_policy_files_in_the_scan(tmp_path, capsys):
    """An identity policy file granting deletes on everything is a finding; an SCP under scp/ that AWS
    would refuse (a Principal) is a NG-SCP-001 finding, not an input error; a resource policy is not judged."""
    (tmp_path / "scp").mkdir()
    (tmp_path / "iam").mkdir()
    deny = (
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", %s"Action": "ec2:DeleteVpc", "Resource": "*",'
        ' "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/netguard-deploy"}}}]}'
    )
    (tmp_path / "scp" / "bad.json").write_text(deny % '"Principal": "*", ')
    (tmp_path / "scp" / "good.json").write_text(deny % "")
    (tmp_path / "iam" / "admin.json").write_text(
        '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ec2:Delete*", "Resource": "*"}]}'
    )
    (tmp_path / "iam" / "bucket.json").write_text(
        '{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ec2:*", "Resource": "*"}]}'
    )
    code, out, _ = run(capsys, "scan", str(tmp_path), "--format", "json")
    report = json.loads(out)
    assert code == 1 and report["errors"] == []
    found = {(Path(f["file"]).name, f["control"]): f["message"] for f in report["findings"]}
    assert set(found) == {("admin.json", "NG-IAM-001"), ("bad.json", "NG-SCP-001")}
    assert "cannot have Principal" in found[("bad.json", "NG-SCP-001")]


NESTED_CHILD = """\
Parameters:
  EnableFlowLog:
    Type: String
    AllowedValues: ["true", "false"]
    Default: "true"
Conditions:
  Logged: !Equals [!Ref EnableFlowLog, "true"]
Resources:
  Vpc:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: 10.0.0.0/16
  Log:
    Type: AWS::EC2::FlowLog
    Condition: Logged
    Properties: {ResourceType: VPC, ResourceId: !Ref Vpc, TrafficType: ALL}
"""


def test_a_nested_stack_is_judged_with_the_parameters_its_parent_passes(tmp_path, capsys):
    (tmp_path / "children").mkdir()
    (tmp_path / "children" / "network.yaml").write_text(NESTED_CHILD)
    (tmp_path / "parent.yaml").write_text(
        "Resources:\n"
        "  Unlogged:\n    Type: AWS::CloudFormation::Stack\n"
        "    Properties:\n      TemplateURL: children/network.yaml\n      Parameters: {EnableFlowLog: 'false'}\n"
        "  Logged:\n    Type: AWS::CloudFormation::Stack\n"
        "    Properties:\n      TemplateURL: children/network.yaml\n      Parameters: {EnableFlowLog: 'true'}\n"
    )
    code, out, _ = run(capsys, "scan", str(tmp_path / "parent.yaml"), "--format", "json")
    report = json.loads(out)
    vpc = [f for f in report["findings"] if f["control"] == "NG-VPC-001"]
    assert code == 1 and len(vpc) == 1
    assert vpc[0]["file"].endswith("network.yaml") and vpc[0]["via"].endswith("parent.yaml:2")
