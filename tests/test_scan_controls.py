"""Choosing controls and reading the reports, as a team that already gates on Checkov would: `netguard
controls`, --check/--skip-check, the config's `controls:` settings, several outputs in one run, the
summary per severity, colour, --quiet, doc links, and JUnit for a file that could not be read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from netguard.catalog import load_catalog
from netguard.cli import main
from tests.conftest import ROOT

EXAMPLE = ROOT / "examples" / "cloudformation" / "network.yaml"
SARIF_SCHEMA = json.loads((ROOT / "schemas" / "sarif-2.1.0.json").read_text())


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """A repository holding the example template, the working directory of the test."""
    (tmp_path / ".git").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "network.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NETGUARD_CONFIG", raising=False)
    return tmp_path


def scan(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["scan", *args])
    out, err = capsys.readouterr()
    return code, out, err


def controls_of(capsys, *args: str) -> set[str]:
    code, out, err = scan(capsys, "network.yaml", "--format", "json", *args)
    assert code in (0, 1), err
    return {f["control"] for f in json.loads(out)["findings"]}


# --- netguard controls ---------------------------------------------------------------------------------


def test_controls_lists_every_control_as_text_and_json(repo, capsys):
    assert main(["controls"]) == 0
    text = capsys.readouterr().out
    catalog = load_catalog()
    for control in catalog.values():
        line = next(line for line in text.splitlines() if line.startswith(control.id + " "))
        assert control.title in line and control.severity in line
        assert all(engine_id in line for engine_id in control.engines.values())
    assert main(["controls", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)["controls"]
    assert [c["id"] for c in listed] == list(catalog)
    first = listed[0]
    assert first["engines"]["checkov"].startswith("CKV_NG_") and first["cloudtrail_events"]
    assert first["help_uri"] == f"docs/controls.md#{first['id'].lower()}"


def test_controls_shows_the_configs_settings(repo, capsys):
    (repo / ".netguard.yaml").write_text(
        "controls:\n  NG-VPC-003: {enabled: false, reason: DHCP options are set centrally}\n"
        "  NG-EIP-001: {severity: high, reason: addresses cost money}\n"
    )
    assert main(["controls", "--format", "json"]) == 0
    listed = {c["id"]: c for c in json.loads(capsys.readouterr().out)["controls"]}
    assert listed["NG-VPC-003"]["enabled"] is False
    assert listed["NG-EIP-001"]["severity"] == "high" and listed["NG-EIP-001"]["catalog_severity"] == "low"
    assert main(["controls"]) == 0
    out = capsys.readouterr().out
    assert "NG-VPC-003 disabled by" in out and "DHCP options are set centrally" in out


# --- --check and --skip-check ----------------------------------------------------------------------------


def test_check_and_skip_check_take_ids_engine_ids_globs_and_severities(repo, capsys):
    everything = controls_of(capsys)
    assert {"NG-VPC-001", "NG-EIP-001", "NG-IAM-001"} <= everything
    assert controls_of(capsys, "--check", "NG-VPC-001") == {"NG-VPC-001"}
    assert controls_of(capsys, "--check", "CKV_NG_EIP_001,E9501") == {"NG-EIP-001", "NG-VPC-001"}
    assert controls_of(capsys, "--check", "ng-iam-*") == {c for c in everything if c.startswith("NG-IAM-")}
    severity = {c.id: c.severity for c in load_catalog().values()}
    assert controls_of(capsys, "--check", "HIGH") == {c for c in everything if severity[c] in ("high", "critical")}
    assert controls_of(capsys, "--skip-check", "LOW") == {c for c in everything if severity[c] != "low"}
    assert controls_of(capsys, "--check", "NG-IAM-*", "--skip-check", "NG-IAM-001") == (
        {c for c in everything if c.startswith("NG-IAM-")} - {"NG-IAM-001"}
    )


def test_a_selected_out_control_never_fails_the_run_and_the_report_says_what_was_not_run(repo, capsys):
    code, out, _ = scan(capsys, "network.yaml", "--check", "NG-VPC-002")
    assert code == 0
    assert "not run (--check/--skip-check): NG-VPC-001" in out


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--check", "NG-EIP-01"], "did you mean NG-EIP-001?"),
        (["--skip-check", "NG-VCP-*"], "names no control"),
        (["--check", "HIHG"], "did you mean HIGH?"),
    ],
)
def test_a_selector_that_names_no_control_is_an_error(repo, capsys, args, hint):
    code, out, err = scan(capsys, "network.yaml", *args)
    assert code == 2 and out == ""
    assert hint in err and "Traceback" not in err


# --- the config's controls: settings ----------------------------------------------------------------------


def test_the_config_disables_and_re_rates_controls_with_reasons_every_report_shows(repo, capsys):
    (repo / ".netguard.yaml").write_text(
        "controls:\n  NG-EIP-001: {enabled: false, reason: spare addresses are reserved}\n"
        "  NG-PCX-002: {severity: critical, reason: default routes are our worst incident}\n"
    )
    code, out, _ = scan(capsys, "network.yaml", "-o", "sarif=scan.sarif", "-o", "json=scan.json")
    assert code == 1
    assert not any(line.startswith("network.yaml:") and "NG-EIP-001" in line for line in out.splitlines())
    assert "note: NG-EIP-001 disabled by the config: spare addresses are reserved" in out
    assert "NG-PCX-002 severity high -> critical by the config" in out
    assert "CRITICAL NG-PCX-002" in out
    report = json.loads((repo / "scan.json").read_text())
    assert report["config"].endswith(".netguard.yaml")
    assert "NG-EIP-001" not in report["controls"]["run"]
    assert {f["control"]: f["severity"] for f in report["findings"]}["NG-PCX-002"] == "critical"
    assert report["summary"]["by_severity"]["critical"] == 2
    sarif = json.loads((repo / "scan.sarif").read_text())
    jsonschema.validate(sarif, SARIF_SCHEMA)
    invocation = sarif["runs"][0]["invocations"][0]
    overrides = {o["descriptor"]["id"]: o["configuration"] for o in invocation["ruleConfigurationOverrides"]}
    assert overrides == {"NG-EIP-001": {"enabled": False}, "NG-PCX-002": {"level": "error"}}
    assert invocation["properties"]["config"].endswith(".netguard.yaml")


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("controls:\n  NG-EIP-01: {enabled: false, reason: x}\n", "did you mean NG-EIP-001?"),
        ("controls:\n  NG-EIP-001: {enabled: false}\n", "'reason' is a required property"),
        ("controls:\n  NG-EIP-001: {severity: urgent, reason: x}\n", "controls/NG-EIP-001/severity"),
    ],
)
def test_a_bad_controls_setting_is_an_error_naming_the_config(repo, capsys, text, hint):
    (repo / ".netguard.yaml").write_text(text)
    code, out, err = scan(capsys, "network.yaml")
    assert code == 2 and out == ""
    assert ".netguard.yaml" in err and hint in err


# --- outputs ----------------------------------------------------------------------------------------------


def test_several_reports_in_one_run_and_the_terminal_still_gets_the_summary(repo, capsys):
    code, out, _ = scan(capsys, "network.yaml", "-o", "sarif=scan.sarif", "-o", "junit=j.xml")
    assert code == 1
    assert "files scanned, 7 findings (1 critical, 5 high, 1 low)" in out
    assert "no config file (defaults)" in out
    jsonschema.validate(json.loads((repo / "scan.sarif").read_text()), SARIF_SCHEMA)
    suite = ET.parse(repo / "j.xml").getroot().find("testsuite")
    assert suite is not None and int(suite.get("failures")) == 7
    assert suite.find("properties/property").get("value") == "(defaults)"


def test_a_bare_output_file_takes_the_format_and_the_terminal_gets_text(repo, capsys):
    code, out, _ = scan(capsys, "network.yaml", "--format", "json", "--output", "report.json")
    assert code == 1
    assert json.loads((repo / "report.json").read_text())["summary"]["findings"] == 7
    assert out.rstrip().splitlines()[-1].startswith("netguard: 1 files scanned, 7 findings")


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["-o", "xml=report.xml"], "unknown format 'xml'"),
        (["-o", "sarif="], "no file after sarif="),
        (["-o", "sarif=a.out", "-o", "json=a.out"], "two reports to the same file"),
    ],
)
def test_bad_outputs_are_errors(repo, capsys, args, reason):
    code, _, err = scan(capsys, "network.yaml", *args)
    assert code == 2 and reason in err


def test_findings_carry_title_fix_and_doc_link_and_docs_url_makes_it_absolute(repo, capsys):
    _, out, _ = scan(capsys, "network.yaml", "--format", "json")
    finding = json.loads(out)["findings"][0]
    control = load_catalog()[finding["control"]]
    assert finding["title"] == control.title and finding["remediation"] == control.remediation
    assert finding["help_uri"] == f"docs/controls.md#{control.id.lower()}"
    _, out, _ = scan(capsys, "network.yaml", "--format", "sarif")
    rules = json.loads(out)["runs"][0]["tool"]["driver"]["rules"]
    assert not any("helpUri" in rule for rule in rules)  # no public page: no dead link
    (repo / ".netguard.yaml").write_text("docs_url: https://docs.example.com/netguard/controls.html\n")
    _, out, _ = scan(capsys, "network.yaml", "--format", "sarif")
    sarif = json.loads(out)
    jsonschema.validate(sarif, SARIF_SCHEMA)
    rule = sarif["runs"][0]["tool"]["driver"]["rules"][0]
    assert rule["helpUri"] == f"https://docs.example.com/netguard/controls.html#{rule['id'].lower()}"
    _, out, _ = scan(capsys, "network.yaml")
    assert f"docs: https://docs.example.com/netguard/controls.html#{control.id.lower()}" in out


def test_quiet_shows_only_what_fails_and_the_summary(repo, capsys):
    (repo / "network.yaml").write_text(
        (repo / "network.yaml").read_text().replace("  Vpc:\n", "  Vpc:\n    Metadata: {}\n", 1)
    )
    code, out, _ = scan(capsys, "network.yaml", "--quiet")
    lines = out.rstrip().splitlines()
    assert code == 1 and lines[-1].startswith("netguard: 1 files scanned, 7 findings")
    assert not any(line.startswith(("notice:", "note:", "    fix:")) for line in lines)
    assert sum(1 for line in lines if line.startswith("network.yaml:")) == 7


def test_colour_only_on_a_terminal_and_never_with_no_color(repo):
    """A real pseudo-terminal: colour on, then NO_COLOR and a pipe switch it off."""
    import pty

    def run(env_extra: dict[str, str], tty: bool) -> bytes:
        env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"} | env_extra
        command = [sys.executable, "-m", "netguard", "scan", "network.yaml", "--jobs", "1"]
        if not tty:
            return subprocess.run(command, env=env, capture_output=True, check=False, timeout=120).stdout
        leader, follower = pty.openpty()
        proc = subprocess.Popen(command, env=env, stdout=follower, stderr=subprocess.DEVNULL)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=120)
        os.close(leader)
        return b"".join(chunks)

    assert b"\x1b[31mHIGH\x1b[0m" in run({"TERM": "xterm"}, tty=True)
    assert b"\x1b[" not in run({"TERM": "xterm", "NO_COLOR": "1"}, tty=True)
    assert b"\x1b[" not in run({"TERM": "xterm"}, tty=False)


# --- JUnit, flags ------------------------------------------------------------------------------------------


def test_junit_reports_an_unreadable_file_as_an_error_not_as_passes(repo, capsys):
    (repo / "broken.yaml").write_text("Resources:\n  Vpc: [unclosed\n")
    code, out, _ = scan(capsys, "broken.yaml", "network.yaml", "--format", "junit")
    assert code == 2
    suite = ET.fromstring(out).find("testsuite")
    assert suite is not None
    broken = [case for case in suite.iter("testcase") if case.get("classname", "").endswith("broken.yaml")]
    assert [case.get("name") for case in broken] == ["input"] and broken[0].find("error") is not None
    assert int(suite.get("errors")) == 1


@pytest.mark.parametrize("jobs", ["0", "-3", "two"])
def test_jobs_must_be_a_positive_number(repo, capsys, jobs):
    with pytest.raises(SystemExit) as exit_info:
        main(["scan", "network.yaml", "--jobs", jobs])
    assert exit_info.value.code == 2
    assert "--jobs" in capsys.readouterr().err


def test_a_mistyped_flag_gets_a_suggestion_and_abbreviations_are_not_guessed(repo, capsys):
    with pytest.raises(SystemExit):
        main(["scan", "network.yaml", "--skip-chek", "LOW"])
    assert "did you mean --skip-check?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["scan", "network.yaml", "--creat", "x.yaml"])
    assert "unrecognized arguments: --creat" in capsys.readouterr().err


# --- which config applies ------------------------------------------------------------------------------------


def test_the_config_is_the_scanned_repositorys_from_any_working_directory(tmp_path, capsys, monkeypatch):
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "infra").mkdir()
    shutil.copy(EXAMPLE, project / "infra" / "network.yaml")
    (project / ".netguard.yaml").write_text("controls:\n  NG-EIP-001: {enabled: false, reason: reserved}\n")
    (project / "infra" / ".netguard.yaml").write_text("controls:\n  NG-VPC-001: {enabled: false, reason: pr}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("NETGUARD_CONFIG", raising=False)
    code, out, _ = scan(capsys, str(project / "infra" / "network.yaml"), "--format", "json")
    report = json.loads(out)
    assert report["config"] == str(project / ".netguard.yaml")  # the root's, never the subfolder's
    assert {f["control"] for f in report["findings"]} >= {"NG-VPC-001"} and code == 1
    assert "NG-EIP-001" not in {f["control"] for f in report["findings"]}


def test_a_stray_config_beside_a_file_outside_any_repository_does_not_apply(tmp_path, capsys, monkeypatch):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    shutil.copy(EXAMPLE, downloads / "network.yaml")
    (downloads / ".netguard.yaml").write_text("controls:\n  NG-VPC-001: {enabled: false, reason: stray}\n")
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    monkeypatch.delenv("NETGUARD_CONFIG", raising=False)
    code, out, _ = scan(capsys, str(downloads / "network.yaml"), "--format", "json")
    report = json.loads(out)
    assert code == 1
    assert report["config"] is None and "NG-VPC-001" in {f["control"] for f in report["findings"]}


def test_paths_in_repositories_with_different_configs_are_an_error(tmp_path, capsys, monkeypatch):
    for name in ("one", "two"):
        (tmp_path / name / ".git").mkdir(parents=True)
        shutil.copy(EXAMPLE, tmp_path / name / "network.yaml")
        (tmp_path / name / ".netguard.yaml").write_text(
            f"approved_peer_accounts: ['{'1' * 12 if name == 'one' else '2' * 12}']\n"
        )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NETGUARD_CONFIG", raising=False)
    code, out, err = scan(capsys, str(tmp_path / "one"), str(tmp_path / "two"))
    assert code == 2 and out == "" and "different configs" in err
    code, _, _ = scan(
        capsys, str(tmp_path / "one"), str(tmp_path / "two"), "--config", str(tmp_path / "one" / ".netguard.yaml")
    )
    assert code == 1
