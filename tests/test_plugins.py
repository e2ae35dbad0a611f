"""The Checkov and cfn-lint plug-ins, proven by the real plain engines against netguard scan.

Teams that run `checkov --external-checks-dir` or `cfn-lint -a` must get exactly what `netguard scan`
reports: the same controls on the same resources, on the same lines. The expected plug-in ids come
from the catalogue, so a plug-in file that is deleted or misnamed fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netguard.catalog import control_for_engine_id, load_catalog
from netguard.scan.run import scan
from netguard.terraform.module import DATA_SOURCES
from tests.annotations import fixture_kind
from tests.conftest import FIXTURES, ROOT, fixture_config, fixture_files

BIN = Path(sys.executable).parent
CATALOG = load_catalog().values()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["BC_SKIP_MAPPING"] = "TRUE"
    env["CHECKOV_SKIP_PACKAGE_REGISTRY"] = "TRUE"
    env["NETGUARD_CONFIG"] = str(FIXTURES / ".netguard.yaml")  # plain engines have no --config
    return env


def _engine(command: list[str]) -> subprocess.CompletedProcess[str]:
    """A plain engine run from the fixtures folder, so the plug-ins find fixtures/.netguard.yaml."""
    return subprocess.run(command, cwd=FIXTURES, env=_env(), capture_output=True, text=True, timeout=900, check=False)


def _netguard(paths: list[Path]) -> set[tuple[str, str, str, int]]:
    result = scan([str(p) for p in paths], fixture_config())
    assert not result.errors, result.errors
    return {
        (f.control, str(Path(f.file).resolve()), f.resource, f.line) for f in result.findings if f.suppressed is None
    }


def _plain_checkov(folder: Path) -> tuple[set[tuple[str, str, str, int]], set[str]]:
    """Failed checks as (control, file, resource, line), and every resource Checkov presented."""
    ids = ",".join(c.engines["checkov"] for c in CATALOG if "checkov" in c.engines)
    proc = _engine(
        [
            str(BIN / "checkov"),
            "-d",
            str(folder),
            "--external-checks-dir",
            str(ROOT / "checks" / "checkov"),
            "--check",
            ids,
            "-o",
            "json",
            "--compact",
            "--skip-download",
        ],
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    reports = json.loads(proc.stdout)
    found, presented = set(), set()
    for report in reports if isinstance(reports, list) else [reports]:
        for record in report["results"]["passed_checks"]:
            presented.add(_resource(report["check_type"], record["resource"]))
        for record in report["results"]["failed_checks"]:
            control = control_for_engine_id("checkov", record["check_id"])
            assert control, record["check_id"]
            resource = _resource(report["check_type"], record["resource"])
            presented.add(resource)
            path = str(Path(record["file_abs_path"]).resolve())
            found.add((control.id, path, resource, record["file_line_range"][0]))
    return found, presented


def _resource(framework: str, name: str) -> str:
    """netguard's name for a resource in Checkov's report."""
    if framework == "cloudformation":
        return name.rsplit(".", 1)[-1]  # AWS::EC2::VPC.Vpc
    if name.split(".", 1)[0] in DATA_SOURCES:
        return f"data.{name}"  # Checkov names data sources without their prefix
    return name


def _plain_cfnlint(files: list[Path]) -> set[tuple[str, str, str, int]]:
    proc = _engine(
        [str(BIN / "cfn-lint"), "-a", str(ROOT / "checks" / "cfnlint"), "--format", "json", "--", *map(str, files)]
    )
    found = set()
    for match in json.loads(proc.stdout or "[]"):
        control = control_for_engine_id("cfn_lint", match["Rule"]["Id"])
        if control is None:
            continue  # cfn-lint's own rules
        path = match["Location"]["Path"]
        assert path[0] == "Resources", match
        found.add(
            (control.id, str(Path(match["Filename"]).resolve()), path[1], match["Location"]["Start"]["LineNumber"])
        )
    return found


def _diff(plain: set, ours: set) -> str:
    return f"only the plain engine: {sorted(plain - ours)}\nonly netguard scan: {sorted(ours - plain)}"


# Checkov never presents a Terraform block whose count is 0 under the variables' defaults, or whose count
# it cannot evaluate (length() of a variable without a default), so its plug-in cannot report on it;
# netguard judges both, since some input creates them. The README says so.
NOT_PRESENTED_BY_CHECKOV = {"aws_vpc.off_by_default", "aws_vpc.unknown_count"}
# Checkov does not expand Fn::ForEach: the resources it generates never reach the plug-in.
NOT_PRESENTED_BY_CHECKOV |= {"VpcBlue", "VpcGreen", "EipOne", "EipTwo"}
# Policy files (an identity policy committed as JSON) are netguard's own: no engine reads them.
NOT_PRESENTED_BY_CHECKOV |= {"network-cleanup.json"}
# Checkov 3.3.30 misnames the blocks of a .tf.json file (`resource.NAME`), so the plug-in cannot match
# them with netguard's and fails each as not evaluated (fail closed); they are compared apart below.
MISNAMED_BY_CHECKOV = ".tf.json"
# A Terraform state (`terraform show -json` of an applied configuration) is not read by Checkov.
NOT_READ_BY_CHECKOV = "dhcp_state.json"


def _as_checkov_addresses(ours: set, presented: set[str]) -> set:
    """netguard's findings, with instances of a block Checkov left unexpanded named by the block."""
    named = set()
    for control, path, resource, line in ours:
        base = resource.split("[", 1)[0]
        named.add(
            (
                control,
                path,
                base if "[" in resource and base in presented and resource not in presented else resource,
                line,
            )
        )
    return named


def test_plain_checkov_reports_exactly_what_netguard_scan_reports():
    ours = _netguard(
        [FIXTURES / "cloudformation", FIXTURES / "cdk", FIXTURES / "terraform", FIXTURES / "terraform_plans"]
    )
    plain, presented = _plain_checkov(FIXTURES)
    ours = _as_checkov_addresses(ours, presented)
    misnamed = {f for f in plain if f[1].endswith(MISNAMED_BY_CHECKOV)}
    ours_misnamed = {f for f in ours if f[1].endswith(MISNAMED_BY_CHECKOV)}
    assert misnamed and {(c, line) for c, _, _, line in ours_misnamed} <= {(c, line) for c, _, _, line in misnamed}
    plain, ours = plain - misnamed, ours - ours_misnamed
    unread = {f for f in ours if f[1].endswith(NOT_READ_BY_CHECKOV)}
    assert unread and not any(f[1].endswith(NOT_READ_BY_CHECKOV) for f in plain)
    ours -= unread
    unseen = {f for f in ours if f[2] not in presented}
    assert {f[2] for f in unseen} == NOT_PRESENTED_BY_CHECKOV
    assert plain == ours - unseen, _diff(plain, ours - unseen)


def test_plain_cfnlint_reports_exactly_what_netguard_scan_reports():
    templates = [p for p in fixture_files() if fixture_kind(p) != "terraform"]
    ours = _netguard(templates)
    plain = _plain_cfnlint(templates)
    assert plain == ours, _diff(plain, ours)


def _checkov_ids_loaded() -> set[str]:
    """What Checkov registers from the external checks folder, loaded the way Checkov loads it."""
    code = (
        "import json, sys\n"
        "from checkov.cloudformation.checks.resource.registry import cfn_registry\n"
        "from checkov.terraform.checks.resource.registry import resource_registry\n"
        "from checkov.terraform.checks.data.registry import data_registry\n"
        "for registry in (cfn_registry, resource_registry, data_registry):\n"
        "    registry.load_external_checks(sys.argv[1])\n"
        "ids = {r: sorted({c.id for checks in reg.checks.values() for c in checks if c.id.startswith('CKV_NG')})\n"
        "       for r, reg in (('cloudformation', cfn_registry), ('terraform', resource_registry),\n"
        "                      ('terraform-data', data_registry))}\n"
        "print(json.dumps(ids))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "checks" / "checkov")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_control_has_its_checkov_checks():
    loaded = _checkov_ids_loaded()
    expected_cfn = sorted(c.engines["checkov"] for c in CATALOG if c.resource_types("cloudformation"))
    expected_tf = sorted(
        c.engines["checkov"]
        for c in CATALOG
        if any(t != "aws_iam_policy_document" for t in c.resource_types("terraform"))
    )
    assert loaded["cloudformation"] == expected_cfn
    assert loaded["terraform"] == expected_tf


def test_every_control_has_its_cfnlint_rule():
    proc = subprocess.run(
        [str(BIN / "cfn-lint"), "-a", str(ROOT / "checks" / "cfnlint"), "--list-rules"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    listed = {line.split(":")[0] for line in proc.stdout.splitlines() if line[:1] in "EW"}
    for control in CATALOG:
        if control.resource_types("cloudformation"):
            assert control.engines["cfn_lint"] in listed, f"{control.id}: cfn-lint rule missing"
    assert listed >= {c.engines["cfn_lint"] for c in CATALOG if "cfn_lint" in c.engines}


@pytest.mark.parametrize("engine", ["checkov", "cfn_lint"])
def test_plugin_files_are_named_after_their_controls(engine):
    folder = ROOT / "checks" / ("checkov" if engine == "checkov" else "cfnlint")
    names = {p.stem for p in folder.glob("ng_*.py")}
    assert names == {c.id.lower().replace("-", "_") for c in CATALOG if engine in c.engines}


# A config the plug-ins cannot use: a misspelt key, and YAML that does not parse.
BAD_CONFIGS = {
    "typo": ('aproved_peer_accounts: ["111122223333"]\n', "invalid config"),
    "yaml": ("approved_peer_accounts: [\n", "invalid YAML"),
}


def _project_with_bad_config(tmp_path: Path, config: str) -> Path:
    """A git repository holding the examples and a root .netguard.yaml the plug-ins must refuse."""
    project = tmp_path / "project"
    for kind in ("cloudformation", "terraform"):
        shutil.copytree(ROOT / "examples" / kind, project / kind)
    (project / ".git").mkdir()  # the repository root, for the config lookup
    (project / ".netguard.yaml").write_text(config)
    return project


def _in(project: Path, command: list[str]) -> subprocess.CompletedProcess[str]:
    env = _env()
    del env["NETGUARD_CONFIG"]  # the plug-ins find the repository's .netguard.yaml, as for a user
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=900, check=False)


def _checkov_in(project: Path) -> subprocess.CompletedProcess[str]:
    checks = str(ROOT / "checks" / "checkov")
    return _in(project, [str(BIN / "checkov"), "-d", ".", "--external-checks-dir", checks, "-o", "json"])


def _netguard_records(stdout: str) -> dict[str, set[tuple[str, str, str]]]:
    """netguard's checks in Checkov's JSON report, (framework, check, resource) by outcome."""
    reports = json.loads(stdout)
    records: dict[str, set[tuple[str, str, str]]] = {"passed": set(), "failed": set()}
    for report in reports if isinstance(reports, list) else [reports]:
        for outcome, found in records.items():
            for record in report["results"][f"{outcome}_checks"]:
                if record["check_id"].startswith("CKV_NG_"):
                    found.add((report["check_type"], record["check_id"], record["resource"]))
    return records


@pytest.fixture(scope="module")
def checkov_with_a_good_config(tmp_path_factory) -> dict[str, set[tuple[str, str, str]]]:
    proc = _checkov_in(_project_with_bad_config(tmp_path_factory.mktemp("good"), "approved_peer_accounts: []\n"))
    assert proc.returncode == 1, proc.stderr[-3000:]
    return _netguard_records(proc.stdout)


@pytest.mark.parametrize("problem", sorted(BAD_CONFIGS))
def test_plain_checkov_fails_closed_on_a_bad_config(tmp_path, problem, checkov_with_a_good_config):
    """Once, a check raising on a bad config made Checkov print a traceback per resource, drop the
    framework's report and exit 0. Now every netguard check fails every resource it is given (those it
    passes or fails with a good config), with the reason, and the error naming the config is said once
    though Checkov runs CloudFormation and Terraform in separate processes."""
    config, reason = BAD_CONFIGS[problem]
    project = _project_with_bad_config(tmp_path, config)
    proc = _checkov_in(project)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    config_path = str((project / ".netguard.yaml").resolve())
    said = [line for line in proc.stderr.splitlines() if config_path in line]
    assert len(said) == 1 and reason in said[0], proc.stderr[-3000:]
    records = _netguard_records(proc.stdout)
    good = checkov_with_a_good_config
    assert records["passed"] == set(), records["passed"]
    assert records["failed"] == good["passed"] | good["failed"]
    assert {framework for framework, _, _ in records["failed"]} == {"cloudformation", "terraform"}
    for report in json.loads(proc.stdout):
        if report["check_type"] == "terraform":  # Checkov reports a check's details for Terraform only
            for record in report["results"]["failed_checks"]:
                if record["check_id"].startswith("CKV_NG_"):
                    assert config_path in record["details"][0] and reason in record["details"][0], record


@pytest.mark.parametrize("problem", sorted(BAD_CONFIGS))
def test_plain_cfnlint_fails_closed_on_a_bad_config(tmp_path, problem):
    """One error per template names the config; no netguard rule reports anything else."""
    config, reason = BAD_CONFIGS[problem]
    project = _project_with_bad_config(tmp_path, config)
    shutil.copy(project / "cloudformation" / "network.yaml", project / "second.yaml")
    templates = ["cloudformation/network.yaml", "second.yaml"]
    proc = _in(
        project, [str(BIN / "cfn-lint"), "-a", str(ROOT / "checks" / "cfnlint"), "--format", "json", "--", *templates]
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    ours = [m for m in json.loads(proc.stdout) if control_for_engine_id("cfn_lint", m["Rule"]["Id"])]
    assert sorted(m["Filename"] for m in ours) == sorted(templates), ours
    config_path = str((project / ".netguard.yaml").resolve())
    for match in ours:
        assert match["Rule"]["Id"] == "E9501" and match["Level"] == "Error", match
        assert config_path in match["Message"] and reason in match["Message"], match


OFF = "controls:\n  NG-VPC-003: {enabled: false, reason: DHCP options come from the shared-services VPC}\n"


def test_plain_checkov_skips_a_control_the_config_turns_off(tmp_path, checkov_with_a_good_config):
    """`controls:` in .netguard.yaml is one switch for every engine: under plain Checkov the control's
    checks are skipped (not passed) with the config's reason, and every other check answers as before."""
    proc = _checkov_in(_project_with_bad_config(tmp_path, "approved_peer_accounts: []\n" + OFF))
    assert proc.returncode == 1, proc.stderr[-3000:]
    records = _netguard_records(proc.stdout)
    good = checkov_with_a_good_config
    vpc_003 = {r for r in good["passed"] | good["failed"] if r[1] == "CKV_NG_VPC_003"}
    assert vpc_003 and any(r in good["failed"] for r in vpc_003)  # the example has a finding to lose
    assert records["failed"] == good["failed"] - vpc_003
    assert records["passed"] == good["passed"] - vpc_003
    skipped = {
        (report["check_type"], r["check_id"], r["resource"])
        for report in json.loads(proc.stdout)
        for r in report["results"]["skipped_checks"]
        if r["check_id"].startswith("CKV_NG_")
    }
    assert skipped == vpc_003


def test_plain_cfnlint_drops_a_control_the_config_turns_off(tmp_path):
    """Under plain cfn-lint the rule of a control the config turns off reports nothing; the rest stay."""
    project = _project_with_bad_config(tmp_path, "approved_peer_accounts: []\n")
    command = [str(BIN / "cfn-lint"), "-a", str(ROOT / "checks" / "cfnlint"), "--format", "json"]
    command += ["--", "cloudformation/network.yaml"]
    before = {m["Rule"]["Id"] for m in json.loads(_in(project, command).stdout)}
    assert "E9504" in before, before  # NG-DHCP-001 fires on the example without the switch
    (project / ".netguard.yaml").write_text(
        "controls:\n  NG-DHCP-001: {enabled: false, reason: the resolvers are checked by the DNS team}\n"
    )
    after = {m["Rule"]["Id"] for m in json.loads(_in(project, command).stdout)}
    assert after == before - {"E9504"}, (before, after)
