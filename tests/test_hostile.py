"""Hostile and broken input: every bad file is an error naming it, nothing else is lost, no traceback."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from netguard.cli import main
from tests.conftest import ROOT

GOOD_VPC = "Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    Properties:\n      CidrBlock: 10.0.0.0/16\n"
BILLION_LAUGHS = (
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(8))
    + "Resources: {}\n"
)

# name -> (content, words the error must contain)
BAD_FILES: dict[str, tuple[bytes | str, str]] = {
    "syntax.yaml": ("Resources:\n  Vpc: [unclosed\n", "invalid YAML"),
    "syntax.json": ('{"Resources": {"Vpc": }', "invalid JSON"),
    "bomb.yaml": (BILLION_LAUGHS, "alias bomb"),
    "deep.yaml": ("Resources: " + "[" * 100_000 + "]" * 100_000 + "\n", "levels deep"),
    "deep.json": ('{"Resources": ' + "[" * 100_000 + "]" * 100_000 + "}", "levels deep"),
    "binary.yaml": (b"Resources:\n  \x00\x01\x02\xff\xfe", "binary data"),
    "utf16.yaml": (GOOD_VPC.encode("utf-16"), "UTF-16"),
    "latin1.yaml": (
        "Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    # caf\xe9\n".encode("latin-1"),
        "not valid UTF-8",
    ),
    "tag.yaml": ("Resources:\n  Vpc: !Unknown thing\n", "!Unknown"),
    "resources-list.yaml": ("Resources:\n  - Vpc\n", "Resources is a list"),
    "no-type.yaml": ("Resources:\n  Vpc:\n    Properties: {}\n", "resource Vpc has no Type"),
    "type-number.yaml": ("Resources:\n  Vpc:\n    Type: 42\n", "Type that is not a string"),
    "null-properties.yaml": (
        "Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    Properties:\n",
        "Properties that are not",
    ),
    "missing-ref.yaml": (
        "Resources:\n  Log:\n    Type: AWS::EC2::FlowLog\n    Properties:\n"
        "      ResourceId: !GetAtt Nowhere.VpcId\n      ResourceType: VPC\n      TrafficType: ALL\n",
        "GetAtt to Nowhere, which is not defined",
    ),
    "circular.yaml": (
        "Resources:\n  A:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: !GetAtt B.TopicName\n"
        "  B:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: !GetAtt A.TopicName\n",
        "circular reference",
    ),
    "syntax.tf": ('resource "aws_vpc" "x" {\n  cidr_block = \n', "invalid HCL"),
    "heredoc/main.tf": (
        'resource "aws_iam_policy" "p" {\n  policy = <<EOF\n{"Version": "2012-10-17"}\n',
        "invalid HCL",
    ),
    "deep-tf/main.tf": ("locals {\n  x = " + "[" * 50_000 + "]" * 50_000 + "\n}\n", "levels deep"),
    # A second document after the template: CloudFormation and cfn-lint refuse it; skipping it was a false pass.
    "two-documents.yaml": (GOOD_VPC + "---\n", "YAML documents"),
    "duplicate-key.yaml": (GOOD_VPC + "  Vpc:\n    Type: AWS::EC2::EIP\n", "duplicate key 'Vpc'"),
    "duplicate-key.json": (
        '{"Resources": {\n "Vpc": {"Type": "AWS::EC2::VPC"},\n "Vpc": {"Type": "AWS::EC2::EIP"}}}',
        "duplicate key 'Vpc'",
    ),
    "duplicate-block/main.tf": (
        'resource "aws_vpc" "x" {\n  cidr_block = "10.0.0.0/16"\n}\n'
        'resource "aws_vpc" "x" {\n  cidr_block = "10.1.0.0/16"\n}\n',
        "declared twice",
    ),
    "huge-count/main.tf": ('resource "aws_eip" "x" {\n  count = 20000\n}\n', "limits.max_instances"),
}


def _write(folder: Path, name: str, content: bytes | str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _scan(capsys, *args: str) -> tuple[int, dict, str]:
    code = main(["scan", *args, "--format", "json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_each_bad_file_is_a_clear_error_and_the_good_template_is_still_scanned(tmp_path, capsys, name):
    content, words = BAD_FILES[name]
    _write(tmp_path, name, content)
    _write(tmp_path, "good/vpc.yaml", GOOD_VPC)
    code, report, err = _scan(capsys, str(tmp_path))
    assert code == 2
    errors = [e for e in report["errors"] if e["file"].endswith(name)]
    assert errors, report["errors"]
    assert any(words in e["message"] for e in errors), errors
    assert {(f["control"], f["resource"]) for f in report["findings"] if "good" in f["file"]} >= {("NG-VPC-001", "Vpc")}
    assert "Traceback" not in err


def test_empty_and_comment_only_files_are_not_errors(tmp_path, capsys):
    for name in ("empty.yaml", "empty.json", "empty.tf", "comments.yaml", "comments.tf"):
        _write(tmp_path, name, "" if name.startswith("empty") else "# only a comment\n")
    code, report, _ = _scan(capsys, str(tmp_path))
    assert (code, report["errors"], report["findings"]) == (0, [], [])


def test_symlink_loops_and_unreadable_files(tmp_path, capsys):
    _write(tmp_path, "stacks/vpc.yaml", GOOD_VPC)
    os.symlink(tmp_path / "stacks", tmp_path / "stacks" / "loop")
    os.symlink(tmp_path / "nowhere.yaml", tmp_path / "stacks" / "dangling.yaml")
    code, report, _ = _scan(capsys, str(tmp_path))
    assert code == 2
    assert [Path(e["file"]).name for e in report["errors"]] == ["dangling.yaml"]
    assert "cannot read file" in report["errors"][0]["message"]
    assert [f["resource"] for f in report["findings"] if f["control"] == "NG-VPC-001"] == ["Vpc"]


def test_limits_are_configurable(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the config is the one where the scan runs (a repository root)
    _write(tmp_path, "vpc.yaml", GOOD_VPC + "#" + "x" * 3000 + "\n")
    _write(tmp_path, ".netguard.yaml", "limits:\n  max_file_mb: 0.001\n")
    code, report, _ = _scan(capsys, str(tmp_path))
    assert code == 2 and "limits.max_file_mb" in report["errors"][0]["message"]
    deep = "  Deep:\n    Type: AWS::SNS::Topic\n    Metadata: {a: " + "[" * 12 + "]" * 12 + "}\n"
    _write(tmp_path, "vpc.yaml", GOOD_VPC + deep)
    _write(tmp_path, ".netguard.yaml", "limits:\n  max_depth: 10\n")
    code, report, _ = _scan(capsys, str(tmp_path))
    assert code == 2 and "limits.max_depth" in report["errors"][0]["message"]
    _write(tmp_path, ".netguard.yaml", "limits:\n  max_depth: 20\n")
    code, report, _ = _scan(capsys, str(tmp_path))
    assert code == 1 and report["errors"] == []
    _write(tmp_path, ".netguard.yaml", "limits:\n  max_depth: 3\n")
    assert main(["scan", str(tmp_path)]) == 2
    assert "limits/max_depth" in capsys.readouterr().err


def test_a_rule_crash_is_an_error_for_that_file_only(tmp_path, capsys, monkeypatch):
    from netguard.cfn import rules

    original = rules.evaluate

    def explode(template, config, controls=None):
        if "Boom" in template.resources:
            raise RuntimeError("simulated engine failure")
        return original(template, config, controls)

    monkeypatch.setattr(rules, "evaluate", explode)
    _write(tmp_path, "boom.yaml", GOOD_VPC.replace("Vpc:", "Boom:"))
    _write(tmp_path, "vpc.yaml", GOOD_VPC)
    code, report, err = _scan(capsys, str(tmp_path))
    assert code == 2
    assert [Path(e["file"]).name for e in report["errors"]] == ["boom.yaml"], report["errors"]
    assert "simulated engine failure" in report["errors"][0]["message"]
    assert {f["resource"] for f in report["findings"]} == {"Vpc"}
    assert "Traceback" not in err


def test_bad_cloudtrail_and_policies_through_the_cli(tmp_path, capsys):
    trail = tmp_path / "trail"
    trail.mkdir()
    (trail / "cut.json.gz").write_bytes(gzip.compress(b'{"Records": [{"eventName": "x"}]}')[:20])
    (trail / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (trail / "fields.json").write_text(json.dumps({"Records": [{"eventID": "1", "eventName": "DeleteVpc"}]}))
    policies = tmp_path / "scp"
    policies.mkdir()
    (policies / "deny.json").write_text(
        '{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Action": "ec2:DeleteVpc", "Resource": "*"}}'
    )
    code = main(["policy", "simulate", "--policies", str(policies), "--events", str(trail), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 2
    messages = {Path(e["file"]).name: e["message"] for e in out["errors"]}
    assert "corrupt gzip" in messages["cut.json.gz"]
    assert "nested too deeply" in messages["deep.json"]
    assert "missing or malformed field" in messages["fields.json"]
    (policies / "wrong.json").write_text('{"Version": "2012-10-17", "Statement": 7}')
    assert main(["policy", "validate", str(policies / "wrong.json")]) == 2
    assert "Statement" in capsys.readouterr().out


def test_internal_errors_print_no_traceback_unless_debug(tmp_path, monkeypatch):
    _write(tmp_path, "vpc.yaml", GOOD_VPC)
    env = {**os.environ, "NETGUARD_TEST_CRASH": "1"}
    script = (
        "import sys, netguard.scan.run as r\n"
        "def boom(*a, **k): raise ValueError('kaboom')\n"
        "r.scan = boom\n"
        "from netguard.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    plain = subprocess.run(
        [sys.executable, "-c", script, "scan", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert plain.returncode == 2 and "internal error: ValueError: kaboom" in plain.stderr
    assert "Traceback" not in plain.stderr
    debug = subprocess.run(
        [sys.executable, "-c", script, "scan", str(tmp_path), "--debug"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert "Traceback" in debug.stderr


def test_a_folder_mixing_every_bad_case_with_good_templates(tmp_path, capsys):
    """Each good template's findings and each bad file's error, in one run (figures: README, bench)."""
    for name, (content, _) in BAD_FILES.items():
        _write(tmp_path, f"bad/{name}", content)
    _write(tmp_path, "good/a/vpc.yaml", GOOD_VPC)
    _write(tmp_path, "good/b/eip.yaml", "Resources:\n  Eip:\n    Type: AWS::EC2::EIP\n")
    _write(tmp_path, "good/tf/main.tf", 'resource "aws_eip" "x" {\n  domain = "vpc"\n}\n')
    # round two: inputs that once hung, crashed or passed
    os.mkfifo(tmp_path / "bad" / "fifo.yaml")
    os.symlink("/dev/zero", tmp_path / "bad" / "zero.yaml")
    _write(tmp_path, "bad/over-1mb.yaml", GOOD_VPC + "# " + "x" * 1_100_000 + "\n")
    _write(tmp_path, "good/tfjson/main.tf.json", '{"resource": {"aws_vpc": {"x": {}}}}')
    _write(tmp_path, f"good/{FORGING}/vpc.yaml", GOOD_VPC)
    _write(tmp_path, "good/ids/t.yaml", "Resources:\n  On:\n    Type: AWS::EC2::EIP\n")
    _write(tmp_path, "good/venv/vpc.yaml", GOOD_VPC)
    round_two = {"fifo.yaml", "zero.yaml", "over-1mb.yaml"}
    code, report, err = _scan(capsys, str(tmp_path))
    assert code == 2 and "Traceback" not in err
    errored = {Path(e["file"]).relative_to(tmp_path / "bad").as_posix() for e in report["errors"]}
    assert errored == set(BAD_FILES) | round_two
    resources = {f["resource"] for f in report["findings"]}
    assert {"On", "aws_vpc.x"} <= resources and sum(
        1 for f in report["findings"] if f["file"].endswith("vpc.yaml")
    ) >= 6
    found = {(Path(f["file"]).parent.name, f["control"], f["resource"]) for f in report["findings"]}
    assert {("a", "NG-VPC-001", "Vpc"), ("b", "NG-EIP-001", "Eip"), ("tf", "NG-EIP-001", "aws_eip.x")} <= found


def test_a_30_mb_template_finishes(tmp_path, capsys, monkeypatch):
    """Bound: limits.max_file_mb (64 MB). Measured figures for 30 MB are in the README."""
    statements = "\n".join(
        f"          - {{Effect: Allow, Action: [s3:GetObject], Resource: 'arn:aws:s3:::b{j}/{'p' * 60}/*'}}"
        for j in range(100)
    )
    blocks, size, i = [], 0, 0
    while size < 30 * 1024 * 1024:
        block = (
            f"  Vpc{i}:\n    Type: AWS::EC2::VPC\n    Properties:\n      CidrBlock: 10.0.0.0/16\n"
            f"  Policy{i}:\n    Type: AWS::IAM::ManagedPolicy\n    Properties:\n      PolicyDocument:\n"
            f"        Statement:\n{statements}\n"
            f'  Topic{i}:\n    Type: AWS::SNS::Topic\n    Metadata:\n      note: "{"z" * 25000}"\n'
        )
        blocks.append(block)
        size += len(block)
        i += 1
    _write(tmp_path, "big.yaml", "Resources:\n" + "".join(blocks))
    code, report, _ = _scan(capsys, str(tmp_path))
    assert code == 2 and "limits.max_template_mb" in report["errors"][0]["message"]  # CloudFormation's 1 MB
    _write(tmp_path, ".netguard.yaml", "limits:\n  max_template_mb: 64\n")
    monkeypatch.chdir(tmp_path)
    code, report, _ = _scan(capsys, str(tmp_path))
    assert code == 1 and report["errors"] == []
    assert sum(1 for f in report["findings"] if f["control"] == "NG-VPC-001") == i


def test_duplicate_key_errors_name_the_line(tmp_path, capsys):
    _write(tmp_path, "dup.yaml", GOOD_VPC + "  Vpc:\n    Type: AWS::EC2::EIP\n")
    code, report, _ = _scan(capsys, str(tmp_path))
    assert code == 2 and report["errors"][0]["line"] == 6, report["errors"]


def test_over_the_instance_limit_the_block_is_still_judged(tmp_path, capsys, monkeypatch):
    """A block past limits.max_instances is an error and is checked as one instance, never skipped."""
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "main.tf", 'resource "aws_eip" "x" {\n  count = 50\n}\n')
    _write(tmp_path, ".netguard.yaml", "limits:\n  max_instances: 10\n")
    code, report, _ = _scan(capsys, str(tmp_path))
    assert code == 2 and "limits.max_instances" in report["errors"][0]["message"]
    assert [f["resource"] for f in report["findings"]] == ["aws_eip.x"]


def test_override_files_are_merged_as_terraform_merges_them(tmp_path, capsys):
    """An *_override.tf that makes a clean module's flow log conditional must not pass."""
    _write(
        tmp_path,
        "main.tf",
        'resource "aws_vpc" "main" {\n  cidr_block = "10.0.0.0/16"\n}\n'
        'resource "aws_flow_log" "main" {\n  vpc_id = aws_vpc.main.id\n  traffic_type = "ALL"\n}\n',
    )
    code, report, _ = _scan(capsys, str(tmp_path))
    assert [f for f in report["findings"] if f["control"] == "NG-VPC-001"] == [], report
    _write(
        tmp_path,
        "logs_override.tf",
        'variable "off" {\n  default = 0\n}\nresource "aws_flow_log" "main" {\n  count = var.off\n}\n',
    )
    code, report, _ = _scan(capsys, str(tmp_path))
    assert code == 1
    assert [f["resource"] for f in report["findings"] if f["control"] == "NG-VPC-001"] == ["aws_vpc.main"]


def test_a_block_declared_twice_is_judged_in_each_file(tmp_path, capsys):
    log = 'resource "aws_flow_log" "x" {\n  vpc_id = "vpc-1"\n  traffic_type = "REJECT"\n}\n'
    _write(tmp_path, "a.tf", log)
    _write(tmp_path, "b.tf", "\n" + log)
    code, report, _ = _scan(capsys, str(tmp_path))
    assert code == 2 and "declared twice" in report["errors"][0]["message"]
    placed = {(Path(f["file"]).name, f["line"]) for f in report["findings"] if f["control"] == "NG-VPC-002"}
    assert placed == {("a.tf", 1), ("b.tf", 2)}


# --- round two: names, layouts and shapes an attacker controls ------------------------------------
def test_yaml_and_json_shapes_that_once_crashed_are_scanned(tmp_path, capsys):
    _write(
        tmp_path,
        "bigint.json",
        '{"Resources": {"Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"X": ' + "9" * 5000 + "}}}}",
    )
    _write(tmp_path, "ids.yaml", "Resources:\n  0x10:\n    Type: AWS::EC2::VPC\n  On:\n    Type: AWS::EC2::EIP\n")
    _write(
        tmp_path,
        "date.yaml",
        "Resources:\n  Pol:\n    Type: AWS::IAM::Policy\n    Properties:\n      PolicyDocument:\n"
        "        Version: 2012-10-17\n        Statement:\n"
        "          - {Effect: Allow, Action: 'ec2:*', Resource: '*'}\n",
    )
    _, report, err = _scan(capsys, str(tmp_path))
    assert report["errors"] == [] and "Traceback" not in err
    found = {(Path(f["file"]).name, f["control"], f["resource"]) for f in report["findings"]}
    assert {
        ("bigint.json", "NG-VPC-001", "Vpc"),
        ("ids.yaml", "NG-VPC-001", "0x10"),
        ("ids.yaml", "NG-EIP-001", "On"),
    } <= found
    assert ("date.yaml", "NG-IAM-001", "Pol") in found


def test_condition_graphs_are_bounded(tmp_path, capsys):
    """C(i) = And[C(i-1), C(i-1)] forty deep is 2^40 nodes as a tree; 500 chained conditions once crashed."""
    doubling = ["Parameters:\n  P:\n    Type: String\nConditions:\n  C0: !Equals [!Ref P, a]\n"]
    doubling += [f"  C{i}: !And [!Condition C{i - 1}, !Condition C{i - 1}]\n" for i in range(1, 41)]
    doubling.append(
        "Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    Condition: C40\n  Log:\n    Type: AWS::EC2::FlowLog\n"
        "    Condition: C39\n    Properties: {ResourceType: VPC, ResourceId: !Ref Vpc, TrafficType: ALL}\n"
    )
    chained = ["Parameters:\n  P:\n    Type: String\nConditions:\n  C0: !Equals [!Ref P, a]\n"]
    chained += [f"  C{i}: !Not [!Condition C{i - 1}]\n" for i in range(1, 501)]
    chained.append("Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    Condition: C500\n")
    _write(tmp_path, "doubling.yaml", "".join(doubling))
    _write(tmp_path, "chained.yaml", "".join(chained))
    _, report, _ = _scan(capsys, str(tmp_path))
    assert report["errors"] == []
    found = {(Path(f["file"]).name, f["control"]) for f in report["findings"]}
    assert ("doubling.yaml", "NG-VPC-001") not in found  # C40 = C39, and the log exists under C39
    assert ("chained.yaml", "NG-VPC-001") in found


def test_non_regular_files_are_refused_not_read(tmp_path, capsys):
    os.mkfifo(tmp_path / "fifo.yaml")
    os.symlink("/dev/zero", tmp_path / "zero.yaml")
    _write(tmp_path, "good/vpc.yaml", GOOD_VPC)
    code, report, _ = _scan(capsys, str(tmp_path))
    assert code == 2
    assert {Path(e["file"]).name: "not a regular file" in e["message"] for e in report["errors"]} == {
        "fifo.yaml": True,
        "zero.yaml": True,
    }
    assert any(f["resource"] == "Vpc" for f in report["findings"])


def test_a_very_deep_tree_is_walked(tmp_path, capsys):
    deep = Path(tmp_path, *(["d"] * 1500))
    subprocess.run(["mkdir", "-p", str(deep)], check=True)  # os.makedirs itself recurses too deep
    try:
        _write(deep, "vpc.yaml", GOOD_VPC)
        code, report, _ = _scan(capsys, str(tmp_path))
        assert code == 1 and report["summary"]["files_scanned"] == 1
    finally:  # pytest's clean-up of old temporary folders would recurse too deep in it as well
        subprocess.run(["rm", "-rf", str(tmp_path / "d")], check=True)


def test_discovery_skips_only_what_it_lists(tmp_path, capsys):
    for folder in ("venv", "cdk.out", "nested"):
        _write(tmp_path, f"{folder}/vpc.yaml", GOOD_VPC)
    _write(tmp_path, "nested/.netguard.yaml", GOOD_VPC)  # a template under the config's name is still a template
    _write(tmp_path, "real-venv/pyvenv.cfg", "home = /usr/bin\n")
    _write(tmp_path, "real-venv/lib/vpc.yaml", GOOD_VPC)
    _code, report, _ = _scan(capsys, str(tmp_path))
    scanned = {str(Path(f["file"]).relative_to(tmp_path)) for f in report["findings"]}
    assert scanned == {"venv/vpc.yaml", "cdk.out/vpc.yaml", "nested/vpc.yaml", "nested/.netguard.yaml"}
    assert any("real-venv" in n and "virtual environment" in n for n in report["notices"])
    _, report, _ = _scan(capsys, str(tmp_path / "real-venv"))  # named explicitly: scanned
    assert report["summary"]["files_scanned"] == 1


def test_suppressions_reach_only_their_resource(tmp_path, capsys):
    _write(
        tmp_path,
        "t.yaml",
        "Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n    Properties:\n      Tags:\n"
        "        - {Key: note, Value: 'x # netguard:skip=NG-VPC-001: in a string'}\n"
        "Outputs:\n  # netguard:skip=NG-VPC-003: above an output of the same name\n  Vpc:\n    Value: !Ref Vpc\n",
    )
    _write(
        tmp_path,
        "tf/main.tf",
        'resource "aws_eip" "x" {\n  domain = "vpc # netguard:skip=NG-EIP-001: in a string"\n}\n'
        'output "x" {\n  # netguard:skip=NG-EIP-001: in an output\n  value = aws_eip.x.id\n}\n',
    )
    code, report, _ = _scan(capsys, str(tmp_path))
    assert code == 1
    assert [f for f in report["findings"] if f.get("suppressed")] == []


FORGING = "evil\r\n::warning::forged\x1b]8;;http://x\x07link\x1b[2J"


def test_names_cannot_forge_report_lines(tmp_path, capsys):
    _write(tmp_path, f"{FORGING}.yaml", GOOD_VPC)
    for fmt in ("text", "github"):
        main(["scan", str(tmp_path), "--format", fmt])
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\r" not in out and "\x07" not in out
        assert not any(line.startswith("::warning::forged") for line in out.splitlines())
    main(["scan", str(tmp_path), "--format", "junit"])
    from xml.etree import ElementTree

    ElementTree.fromstring(capsys.readouterr().out.split("\n", 1)[1])  # valid XML
    main(["scan", str(tmp_path), "--format", "sarif"])
    uri = json.loads(capsys.readouterr().out)["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert "%0D%0A" in uri["artifactLocation"]["uri"] and "\n" not in uri["artifactLocation"]["uri"]


def test_a_file_name_that_is_not_utf8_is_reported_not_a_crash(tmp_path, capsys):
    with open(os.path.join(os.fsencode(tmp_path), b"bad\xff.yaml"), "w") as handle:
        handle.write(GOOD_VPC)
    for fmt in ("text", "json", "sarif", "junit", "github"):
        assert main(["scan", str(tmp_path), "--format", fmt]) == 1, fmt
        out = capsys.readouterr().out
        assert any(shown in out for shown in ("bad\\udcff.yaml", "bad%FF.yaml", "bad%25FF.yaml")), (fmt, out[:300])


def test_an_override_files_count_wins(tmp_path, capsys):
    _write(tmp_path, "main.tf", 'resource "aws_vpc" "main" {\n  count      = 0\n  cidr_block = "10.0.0.0/16"\n}\n')
    _write(tmp_path, "main_override.tf", 'resource "aws_vpc" "main" {\n  count = 1\n}\n')
    _, report, _ = _scan(capsys, str(tmp_path))
    assert ("NG-VPC-001", "aws_vpc.main[0]") in {(f["control"], f["resource"]) for f in report["findings"]}


def test_variables_from_tfvars_json(tmp_path, capsys):
    _write(
        tmp_path,
        "main.tf",
        'variable "peer" {\n  default = "111122223333"\n}\n'
        'resource "aws_vpc_peering_connection" "p" {\n  vpc_id = "vpc-1"\n  peer_vpc_id = "vpc-2"\n'
        "  peer_owner_id = var.peer\n}\n",
    )
    _write(tmp_path, ".netguard.yaml", 'approved_peer_accounts: ["111122223333"]\n')
    _write(tmp_path, "terraform.tfvars.json", '{"peer": "999988887777"}')
    os.chdir(tmp_path)
    try:
        _, report, _ = _scan(capsys, str(tmp_path))
    finally:
        os.chdir(ROOT)
    assert [f["message"] for f in report["findings"] if f["control"] == "NG-PCX-001"] == [
        "aws_vpc_peering_connection.p: peer_owner_id: account 999988887777 is not approved"
        " (approved_peer_accounts in .netguard.yaml)"
    ]


def test_a_comment_inside_the_resource_above_does_not_suppress_the_next(tmp_path, capsys):
    _write(
        tmp_path,
        "t.yaml",
        "Resources:\n  VpcA:\n    Type: AWS::EC2::VPC\n    Properties:\n      CidrBlock: 10.0.0.0/16\n"
        "      # netguard:skip=NG-VPC-001: A is a sandbox\n  VpcB:\n    Type: AWS::EC2::VPC\n",
    )
    _, report, _ = _scan(capsys, str(tmp_path))
    suppressed = {f["resource"] for f in report["findings"] if f.get("suppressed")}
    assert "VpcB" not in suppressed


def test_a_missing_policy_file_is_an_error_naming_it(tmp_path, capsys):
    _write(tmp_path, "main.tf", 'resource "aws_iam_policy" "p" {\n  policy = file("policies/nope.json")\n}\n')
    code, report, _ = _scan(capsys, str(tmp_path))
    assert code == 2
    assert [e["message"] for e in report["errors"]] == [
        "aws_iam_policy.p: policy file policies/nope.json: cannot read file: No such file or directory"
    ]


def test_foreach_over_a_mapping_keyed_by_a_parameter_without_default(tmp_path, capsys):
    """cfn-lint accepts it, so netguard must too: every key the parameter can select is expanded."""
    _write(
        tmp_path,
        "t.yaml",
        "Transform: AWS::LanguageExtensions\nParameters:\n  Env:\n    Type: String\n"
        "Mappings:\n  Zones:\n    prod: {Names: [A, B]}\n    dev: {Names: [A, C]}\n"
        "Resources:\n  Fn::ForEach::Eips:\n    - Id\n    - !FindInMap [Zones, !Ref Env, Names]\n"
        "    - Eip${Id}:\n        Type: AWS::EC2::EIP\n",
    )
    _, report, _ = _scan(capsys, str(tmp_path))
    assert report["errors"] == []
    assert {f["resource"] for f in report["findings"]} == {"EipA", "EipB", "EipC"}


def test_second_review_false_passes(tmp_path, capsys):
    """Same count text in two modules is not the same condition; a nested stack's loops use the
    parent's parameters; a loop over an empty default is judged; .tf.json outputs link."""
    _write(
        tmp_path,
        "tf/mod/main.tf",
        'variable "enable" {\n  default = true\n}\n'
        'resource "aws_vpc" "this" {\n  count = var.enable ? 1 : 0\n  cidr_block = "10.0.0.0/16"\n}\n'
        'output "vpc_id" {\n  value = aws_vpc.this[0].id\n}\n',
    )
    _write(
        tmp_path,
        "tf/root/main.tf",
        'variable "enable" {\n  default = false\n}\n'
        'module "net" {\n  source = "../mod"\n  enable = true\n}\n'
        'resource "aws_flow_log" "x" {\n  count = var.enable ? 1 : 0\n  vpc_id = module.net.vpc_id\n'
        '  traffic_type = "ALL"\n}\n',
    )
    _write(
        tmp_path,
        "cfn/child.yaml",
        "Parameters:\n  Names:\n    Type: CommaDelimitedList\n    Default: A\n"
        "Transform: AWS::LanguageExtensions\nResources:\n  Fn::ForEach::Vpcs:\n    - Name\n    - !Ref Names\n"
        "    - Vpc${Name}:\n        Type: AWS::EC2::VPC\n",
    )
    _write(
        tmp_path,
        "cfn/parent.yaml",
        "Resources:\n  Net:\n    Type: AWS::CloudFormation::Stack\n"
        "    Properties:\n      TemplateURL: child.yaml\n      Parameters: {Names: 'A,B'}\n",
    )
    _, report, _ = _scan(capsys, str(tmp_path / "tf" / "root"), str(tmp_path / "cfn" / "parent.yaml"))
    found = {(f["control"], f["resource"]) for f in report["findings"]}
    assert ("NG-VPC-001", "module.net.aws_vpc.this[0]") in found
    assert ("NG-VPC-001", "VpcB") in found
