"""The pack as users load it: from an installed wheel, and cfn-lint by module path (the plain-engine
parity over every fixture is tests/test_plugins.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netguard.catalog import load_catalog
from tests.annotations import expectations
from tests.conftest import FIXTURES, ROOT

BIN = Path(sys.executable).parent


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
        "import importlib, json, pkgutil, netguard, netguard.checks.checkov as ck, netguard.checks.cfnlint as cl\n"
        "mods = [importlib.import_module(f'{ck.__name__}.{m.name}') for m in pkgutil.iter_modules(ck.__path__)]\n"
        "ids = sorted({c.id for m in mods for c in getattr(m, 'checks', [])})\n"
        "print(json.dumps({'netguard': netguard.__file__, 'checkov': ids,"
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
    assert loaded["checkov"] == sorted(c.engines["checkov"] for c in catalog if "checkov" in c.engines)
    assert loaded["cfnlint"] == sorted(c.engines["cfn_lint"] for c in catalog if "cfn_lint" in c.engines)

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
        if control.resource_types("cloudformation") or control.resource_types("policy"):
            assert (control.id, False) in by_kind, f"{control.id} has no CloudFormation or policy file finding"
        if control.resource_types("terraform"):
            assert (control.id, True) in by_kind, f"{control.id} has no Terraform finding from the wheel"


def test_plain_cfnlint_loads_the_pack_by_module_path():
    """`cfn-lint -a netguard.checks.cfnlint` (an installed module, not a folder) runs the pack."""
    template = FIXTURES / "cloudformation" / "eip.yaml"
    proc = subprocess.run(
        [str(BIN / "cfn-lint"), "-a", "netguard.checks.cfnlint", "--format", "parseable", "--", str(template)],
        cwd=FIXTURES,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    reported = {line.split(":")[1] for line in proc.stdout.splitlines() if ":W9505:" in line}
    expect = expectations(template)
    expected = {str(expect.lines[r]) for control, r in expect.ruleid if control == "NG-EIP-001"}
    assert len(expected) >= 5 and reported == expected, proc.stdout


def test_the_readme_wheel_command_builds_the_wheel_it_names(tmp_path):
    """The README's wheel command, as written, in a clean clone: it writes the wheel the README installs."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("a clean clone needs a git checkout")
    readme = (ROOT / "README.md").read_text()
    (command,) = re.findall(r"^(python -m pip wheel [^#\n]*?)\s*#", readme, re.M)
    (wheel,) = set(re.findall(r"pip install (dist/netguard-\S+\.whl)", readme))
    clone = tmp_path / "netguard"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, capture_output=True, timeout=300)
    env = _env(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")  # `python`: this environment's
    proc = subprocess.run(
        ["bash", "-e", "-c", command], cwd=clone, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [p.relative_to(clone).as_posix() for p in (clone / "dist").iterdir()] == [wheel]
