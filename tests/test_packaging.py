"""The pack as users load it: from an installed wheel, and inside plain checkov / cfn-lint runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netguard.catalog import load_catalog
from tests.annotations import expectations
from tests.conftest import FIXTURES, ROOT

BIN = Path(sys.executable).parent
CHECKOV_IDS = ",".join(c.engines["checkov"] for c in load_catalog().values())


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["BC_SKIP_MAPPING"] = "TRUE"
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """Build the wheel and install it (without dependencies) into a folder outside the repository."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(out.glob("netguard-*.whl"))
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def test_wheel_outside_the_repo_loads_every_check(installed_wheel, tmp_path):
    work = tmp_path / "project"
    shutil.copytree(FIXTURES, work / "fixtures")
    code = (
        "import json, sys, netguard, netguard.checks.checkov as ck, netguard.checks.cfnlint as cl\n"
        "from netguard.scan.checkov_engine import load_checks\n"
        "print(json.dumps({'netguard': netguard.__file__, 'checkov': load_checks(),"
        " 'cfnlint': sorted(r.id for r in [getattr(cl, n)() for n in cl.__all__])}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=work,
        env=_env(PYTHONPATH=str(installed_wheel)),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    assert loaded["netguard"].startswith(str(installed_wheel)), "the test must exercise the wheel, not the checkout"
    catalog = load_catalog().values()
    assert loaded["checkov"] == sorted(c.engines["checkov"] for c in catalog)
    assert loaded["cfnlint"] == sorted(c.engines["cfn_lint"] for c in catalog)

    scan = subprocess.run(
        [sys.executable, "-m", "netguard", "scan", "fixtures", "--format", "json"],
        cwd=work,
        env=_env(PYTHONPATH=str(installed_wheel)),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert scan.returncode == 1, scan.stderr
    report = json.loads(scan.stdout)
    assert report["errors"] == []
    by_kind = {(f["control"], f["file"].endswith(".tf")) for f in report["findings"]}
    for control in catalog:
        assert (control.id, False) in by_kind, f"{control.id} has no CloudFormation finding from the wheel"
        assert (control.id, True) in by_kind, f"{control.id} has no Terraform finding from the wheel"


def _checkov(folder: Path) -> set[tuple[str, str, str]]:
    proc = subprocess.run(
        [
            str(BIN / "checkov"),
            "-d",
            str(folder),
            "--external-checks-dir",
            str(ROOT / "checks" / "checkov"),
            "--check",
            CHECKOV_IDS,
            "-o",
            "json",
            "--quiet",
            "--compact",
        ],
        cwd=FIXTURES,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    return {
        (r["check_type"], rec["check_id"], rec["resource"]) for r in reports for rec in r["results"]["failed_checks"]
    }


def test_plain_checkov_with_external_checks_dir():
    failed = _checkov(FIXTURES / "cloudformation") | _checkov(FIXTURES / "terraform" / "eip")
    assert ("cloudformation", "CKV_NG_EIP_001", "AWS::EC2::EIP.EipNoProperties") in failed
    assert ("cloudformation", "CKV_NG_VPC_001", "AWS::EC2::VPC.VpcConditionalLog") in failed
    assert ("terraform", "CKV_NG_EIP_001", "aws_eip.spare[2]") in failed
    assert not any(rec_id == "CKV_NG_EIP_001" and res == "aws_eip.spare[0]" for _, rec_id, res in failed)


@pytest.mark.parametrize("rules", [str(ROOT / "checks" / "cfnlint"), "netguard.checks.cfnlint"])
def test_plain_cfnlint_with_the_pack(rules):
    template = FIXTURES / "cloudformation" / "eip.yaml"
    proc = subprocess.run(
        [str(BIN / "cfn-lint"), "-a", rules, "--format", "parseable", "--", str(template)],
        cwd=FIXTURES,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    ours = [line for line in proc.stdout.splitlines() if ":W9505:" in line]
    expected = {resource for control, resource in expectations(template).ruleid if control == "NG-EIP-001"}
    lines = template.read_text().splitlines()
    expected_lines = {str(i + 1) for i, text in enumerate(lines) if text.strip().rstrip(":") in expected}
    assert len(expected_lines) == len(expected) >= 5
    assert {line.split(":")[1] for line in ours} == expected_lines, proc.stdout
    assert all("NG-EIP-001" in line for line in ours)
