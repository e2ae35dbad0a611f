"""Messages a new user meets first: a suppression that names no control or has no reason says so (with
`did you mean ...?`), and a Terraform file that does not parse is an error in words, with file and line."""

from __future__ import annotations

import json

import pytest

from netguard.cli import main
from netguard.scan import run
from netguard.suggest import did_you_mean


def _scan(capsys, *args: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["scan", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


# --- did_you_mean ----------------------------------------------------------------------------------


def test_did_you_mean_ignores_case_and_stays_quiet_when_nothing_is_close():
    ids = ["NG-EIP-001", "NG-VPC-001", "NG-VPC-003"]
    assert did_you_mean("NG-EIP-01", ids) == "did you mean NG-EIP-001?"
    assert did_you_mean("ng-vpc-003", ids) == "did you mean NG-VPC-003?"
    assert did_you_mean("completely-else", ids) == ""
    assert did_you_mean("x", []) == ""


# --- suppressions ----------------------------------------------------------------------------------


@pytest.fixture
def suppression_notices(monkeypatch) -> list[str]:
    """The notices apply_suppressions returns during a CLI scan (see test_suppression_notices_reach_the_report
    for the report itself)."""
    seen: list[str] = []
    original = run.apply_suppressions

    def recording(*args, **kwargs):
        notices = original(*args, **kwargs)
        seen.extend(notices or [])
        return notices

    monkeypatch.setattr(run, "apply_suppressions", recording)
    return seen


TYPOS = {
    "cfn-comment": (
        "t.yaml",
        "Resources:\n  # netguard:skip=NG-EIP-01: attached by the bastion at boot\n  Eip:\n    Type: AWS::EC2::EIP\n",
        "t.yaml:2: `netguard:skip=NG-EIP-01` names no netguard control; did you mean NG-EIP-001?",
    ),
    "tf-comment": (
        "main.tf",
        'resource "aws_eip" "eip" {\n  // netguard:skip=NG-EIP-01: attached at boot\n  domain = "vpc"\n}\n',
        "main.tf:2: `netguard:skip=NG-EIP-01` names no netguard control; did you mean NG-EIP-001?",
    ),
    "tf-comment-above": (
        "main.tf",
        '# netguard:skip=ng-eip-0001: attached at boot\nresource "aws_eip" "eip" {\n  domain = "vpc"\n}\n',
        "main.tf:1: `netguard:skip=ng-eip-0001` names no netguard control; did you mean NG-EIP-001?",
    ),
    "netguard-metadata": (
        "t.yaml",
        "Resources:\n  Eip:\n    Type: AWS::EC2::EIP\n    Metadata:\n      netguard:\n        skip:\n"
        "          - {id: NG-EPI-001, reason: attached at boot}\n",
        "t.yaml:7: Metadata.netguard.skip id NG-EPI-001 names no netguard control; did you mean NG-EIP-001?",
    ),
    "checkov-comment": (
        "t.yaml",
        "Resources:\n  Eip:\n    #checkov:skip=CKV_NG_EIP_01:attached at boot\n    Type: AWS::EC2::EIP\n",
        "t.yaml:3: `checkov:skip=CKV_NG_EIP_01` names no netguard control; did you mean CKV_NG_EIP_001?",
    ),
    "checkov-metadata": (
        "t.json",
        json.dumps(
            {
                "Resources": {
                    "Eip": {
                        "Type": "AWS::EC2::EIP",
                        "Metadata": {"checkov": {"skip": [{"id": "CKV_NG_EIP_0001", "comment": "attached"}]}},
                    }
                }
            },
            indent=2,
        ),
        "t.json:9: Metadata.checkov.skip id CKV_NG_EIP_0001 names no netguard control; did you mean CKV_NG_EIP_001?",
    ),
    "cfn-lint": (
        "t.yaml",
        "Resources:\n  Eip:\n    Type: AWS::EC2::EIP\n    Metadata:\n      cfn-lint:\n        config:\n"
        "          ignore_checks: [W9595]\n",
        "t.yaml:7: cfn-lint ignore_checks W9595 names no netguard control; did you mean W9505?",
    ),
}


@pytest.mark.parametrize("case", TYPOS)
def test_a_mistyped_control_id_is_a_warning_and_suppresses_nothing(tmp_path, capsys, suppression_notices, case):
    name, text, expected = TYPOS[case]
    (tmp_path / name).write_text(text)
    code, report = _scan(capsys, str(tmp_path))
    assert code == 1  # a warning, not an input error: the run fails on the finding, not on the comment
    assert report["errors"] == []
    [finding] = report["findings"]
    assert finding["control"] == "NG-EIP-001" and not finding.get("suppressed")
    assert "did you mean NG-EIP-001?" in finding["message"]
    [notice] = suppression_notices
    assert notice == f"warning: {tmp_path / expected} (it suppresses nothing)"


def test_the_engines_own_check_ids_are_theirs(tmp_path, capsys, suppression_notices):
    """Checkov and cfn-lint skips of their own checks (CKV_AWS_*, W3005) are not netguard's to judge."""
    (tmp_path / "t.yaml").write_text(
        "Resources:\n  Eip:\n    # checkov:skip=CKV_AWS_999:not ours\n    Type: AWS::EC2::EIP\n    Metadata:\n"
        "      checkov:\n        skip:\n          - {id: CKV2_AWS_1, comment: not ours}\n"
        "      cfn-lint:\n        config:\n          ignore_checks: [W3005, E3012]\n"
    )
    (tmp_path / "main.tf").write_text('resource "aws_eip" "eip" {\n  domain = "vpc" # checkov:skip=CKV_AWS_1:x\n}\n')
    code, report = _scan(capsys, str(tmp_path))
    assert code == 1 and suppression_notices == []
    assert all("did you mean" not in f["message"] for f in report["findings"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Resources:\n  # netguard:skip=NG-EIP-001\n  Eip:\n    Type: AWS::EC2::EIP\n",
            "t.yaml:2: `netguard:skip=NG-EIP-001` has no reason, so it is not honoured;"
            " write `netguard:skip=NG-EIP-001: <why>`",
        ),
        (
            "Resources:\n  Eip:\n    Type: AWS::EC2::EIP\n    Metadata:\n      netguard:\n        skip: [NG-EIP-001]\n",
            "t.yaml:5: Metadata.netguard.skip id NG-EIP-001 has no reason, so it is not honoured; give it a reason",
        ),
        (
            "Resources:\n  Eip:\n    Type: AWS::EC2::EIP\n    Metadata:\n      cfn-lint:\n        config:\n"
            "          ignore_checks: [W9505]\n",
            "t.yaml:7: cfn-lint ignore_checks W9505 (NG-EIP-001) has no place for a reason, so netguard does not"
            " honour it; use Metadata.netguard.skip [{id: NG-EIP-001, reason: ...}]",
        ),
    ],
)
def test_a_suppression_without_a_reason_says_so(tmp_path, capsys, suppression_notices, text, expected):
    (tmp_path / "t.yaml").write_text(text)
    code, report = _scan(capsys, str(tmp_path))
    assert code == 1
    assert "without a reason is not honoured" in report["findings"][0]["message"]
    assert suppression_notices == [f"warning: {tmp_path / expected}"]


def test_a_reasonless_suppression_says_so_even_where_nothing_is_found(tmp_path, capsys, suppression_notices):
    (tmp_path / "main.tf").write_text(
        'resource "aws_vpc" "v" {\n  # checkov:skip=CKV_NG_VPC_002\n  cidr_block = "10.0.0.0/16"\n}\n'
    )
    _scan(capsys, str(tmp_path))
    assert suppression_notices == [
        f"warning: {tmp_path / 'main.tf'}:2: `checkov:skip=CKV_NG_VPC_002` has no reason, so it is not honoured;"
        " write `checkov:skip=CKV_NG_VPC_002:<why>`"
    ]


def test_a_reasoned_known_suppression_is_silent(tmp_path, capsys, suppression_notices):
    (tmp_path / "t.yaml").write_text(
        "Resources:\n  # netguard:skip=NG-EIP-001: bastion\n  Eip:\n    Type: AWS::EC2::EIP\n"
    )
    code, report = _scan(capsys, str(tmp_path))
    assert code == 0 and report["findings"][0]["suppressed"] and suppression_notices == []


def test_suppression_notices_reach_the_report(tmp_path, capsys):
    (tmp_path / "t.yaml").write_text(TYPOS["cfn-comment"][1])
    _, report = _scan(capsys, str(tmp_path))
    assert any("did you mean NG-EIP-001?" in n for n in report["notices"])
    capsys.readouterr()
    main(["scan", str(tmp_path)])
    assert "warning: " in capsys.readouterr().out


# --- HCL syntax errors -----------------------------------------------------------------------------

NOISE = ("Expected one of", "/[", "__ANON", "Token(", "$END", "_NEW_LINE", "RBRACE", "STRING_LIT", "Previous tokens")

BROKEN_TF = {
    "missing-brace": (
        b'resource "aws_eip" "a" {\n  domain = "vpc"\n',
        1,
        "'{' is never closed: the file ends before its '}'",
    ),
    "stray-brace": (
        b'resource "aws_eip" "a" {\n  domain = "vpc"\n}\n}\n',
        4,
        "unexpected '}' at column 1: nothing is open here to close",
    ),
    "unclosed-string": (
        b'resource "aws_eip" "a" {\n  domain = "vpc\n}\n',
        2,
        "unclosed string: a '\"' has no closing quote on its line",
    ),
    "unclosed-heredoc": (
        b'resource "aws_iam_policy" "p" {\n  policy = <<EOF\n{}\n}\n',
        2,
        "unclosed heredoc: no line holding only EOF closes the <<EOF opened here",
    ),
    "heredoc-without-name": (
        b"locals {\n  a = <<\nx\n}\n",
        2,
        "a heredoc needs a name right after << and then a line break (<<EOF)",
    ),
    "missing-equals": (
        b'resource "aws_eip" "a" {\n  domain "vpc"\n}\n',
        2,
        "expected an attribute or block: `domain \"vpc\"` needs '=' (an attribute) or '{' (a block)",
    ),
    "invalid-label": (
        b'resource aws_eip.a "x" {\n  domain = "vpc"\n}\n',
        1,
        "invalid block label '.' at column 17: labels are quoted strings or names",
    ),
    "missing-value": (
        b"locals {\n  a =\n}\n",
        2,
        "expected a value after '=' at column 6, found the end of the line",
    ),
    "unclosed-call": (
        b"locals {\n  a = max(1, 2\n}\n",
        3,
        "unexpected '}' at column 1: the '(' opened at line 2 is not closed",
    ),
    "unclosed-comment": (
        b"locals {\n  /* about a\n  a = 1\n}\n",
        2,
        "unclosed comment: '/*' without '*/'",
    ),
    "control-character": (
        b"locals {\n  a = \x1b[31m\n}\n",
        2,
        "unexpected character '\\x1b' at column 7",
    ),
    "not-utf-8": (
        b'locals {\n  a = "caf\xe9"\n}\n',
        2,
        "not valid UTF-8 (byte 19, column 11)",
    ),
}


@pytest.mark.parametrize("case", BROKEN_TF)
def test_a_terraform_file_that_does_not_parse_is_an_error_in_words(tmp_path, capsys, case):
    content, line, message = BROKEN_TF[case]
    module = tmp_path / "module"
    module.mkdir()
    (module / "broken.tf").write_bytes(content)
    (module / "fine.tf").write_text('resource "aws_eip" "ok" {\n  domain = "vpc"\n}\n')
    code, report = _scan(capsys, str(module))
    assert code == 2
    [error] = report["errors"]
    expected = message if case == "not-utf-8" else f"invalid HCL: {message}"
    assert (error["file"], error["line"], error["message"]) == (str(module / "broken.tf"), line, expected)
    assert not any(noise in error["message"] for noise in NOISE)
    assert [f["resource"] for f in report["findings"]] == ["aws_eip.ok"]  # the rest of the folder is still judged
    capsys.readouterr()
    main(["scan", str(module)])
    text = capsys.readouterr().out
    assert f"error: {module / 'broken.tf'}:{line}: " in text
    assert not any(noise in text for noise in NOISE)


def test_an_empty_terraform_file_is_fine(tmp_path, capsys):
    (tmp_path / "empty.tf").write_bytes(b"")
    (tmp_path / "comments.tf").write_text("# nothing yet\n")
    code, report = _scan(capsys, str(tmp_path))
    assert (code, report["errors"], report["findings"]) == (0, [], [])


def test_a_variables_file_that_does_not_parse_names_its_line(tmp_path, capsys):
    (tmp_path / "main.tf").write_text('variable "x" {}\n')
    (tmp_path / "terraform.tfvars").write_text('x = "a"\ny =\n')
    code, report = _scan(capsys, str(tmp_path))
    [error] = report["errors"]
    assert code == 2 and error["line"] == 2 and error["message"].startswith("invalid HCL: expected a value after '='")


def test_anything_else_is_shown_as_the_text_where_parsing_stopped():
    """The fallback for an error no rule names: the line and its text, cut and with control characters
    escaped, never the exception's own text."""
    from lark.exceptions import LarkError

    from netguard.terraform.loader import hcl_syntax_error

    error = LarkError("Expected one of: * __ANON_0 * /[a-z]+/")
    error.line, error.column = 2, 3
    text = "locals {\n  \x07" + "b" * 60 + "\n}\n"
    message, line = hcl_syntax_error(error, text)
    assert line == 2
    assert message == "cannot parse HCL near line 2: \\x07" + "b" * 39 + "..."
    assert hcl_syntax_error(RecursionError(), "") == ("invalid HCL: nested too deeply to parse", None)
