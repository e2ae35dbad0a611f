"""The adoption examples, run as a new user runs them, and `make demo`'s install recipe.

Only the repository's URL changes: https://github.com/netguard/netguard becomes a temporary clone of
this checkout's HEAD, tagged there with the release the examples name (and the CI examples' /tmp/netguard
becomes a temporary folder). Everything else is the examples' own text:

- examples/pre-commit-config.yaml: a real `pre-commit run --all-files` in a throwaway git repository.
  pre-commit clones the repository at the example's `rev` and installs netguard with its dependencies
  into an environment of its own (a minute or two, from the package index).
- examples/ci/*.yml: the install commands, parsed out of the YAML and run for real into a fresh
  virtual environment, with pip resolving every dependency (about two minutes: checkov and its pins).
  Both examples install with the same commands, so they share that one environment. Then each
  example's scan command line runs as written in a repository holding a bad template.
- `make demo`: its install recipe, with a stand-in Python, keeps pip's output in a log (a real
  `make demo` in a clean clone takes minutes and is measured by hand).

The tests that need the release tag skip outside a git checkout (an unpacked source archive).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.test_precommit import BAD, GOOD, _git

UPSTREAM = "https://github.com/netguard/netguard"
EXAMPLES = ROOT / "examples"
PRE_COMMIT_EXAMPLE = EXAMPLES / "pre-commit-config.yaml"
GITHUB_EXAMPLE = EXAMPLES / "ci" / "github-actions.yml"
GITLAB_EXAMPLE = EXAMPLES / "ci" / "gitlab-ci.yml"
CI_VENV = "/tmp/netguard"  # where the CI examples put netguard's environment
BIN = Path(sys.executable).parent
# An Elastic IP nothing uses, in Terraform: NG-EIP-001 again, through the Terraform hook.
BAD_TF = 'resource "aws_eip" "spare" {\n  domain = "vpc"\n}\n'


def _in_git_checkout() -> bool:
    if shutil.which("git") is None:
        return False
    proc = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return proc.returncode == 0 and Path(proc.stdout.strip()).resolve() == ROOT


needs_git_checkout = pytest.mark.skipif(not _in_git_checkout(), reason="the release tag needs a git checkout")


def example_rev() -> str:
    """The netguard release the pre-commit example names."""
    config = yaml.safe_load(PRE_COMMIT_EXAMPLE.read_text())
    (entry,) = [r for r in config["repos"] if r["repo"] == UPSTREAM]
    return str(entry["rev"])


def _version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_every_install_path_names_the_release_tag():
    """The README and every example install the same release, `v<version>`, from something that exists:
    the repository at the tag. `pip install netguard` would ask PyPI, which has no netguard."""
    rev = example_rev()
    assert rev == f"v{_version()}"
    documents = [GITHUB_EXAMPLE, GITLAB_EXAMPLE, ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    texts = {p.name: p.read_text() for p in documents}
    # `netguard[extra] @ git+...` is a direct reference (PEP 508), not PyPI; the possessive `?+` keeps
    # the extras from being given back so the lookahead sees the `@`.
    from_pypi = re.compile(r"pip install\s+['\"]?netguard(?:\[[^\]]*\])?+(?!\s*@)(?![\w.-])")
    for name, text in texts.items():
        assert not from_pypi.search(text), f"{name} installs netguard from PyPI"
        releases = set(re.findall(re.escape(UPSTREAM) + r"@([\w.+-]+)", text))
        if name.endswith(".md") and name != "README.md" and not releases:
            continue  # a doc that installs nothing
        assert releases == {rev}, f"{name} names {releases}, the pre-commit example {rev}"
    readme = texts["README.md"]
    assert f"netguard-{_version()}-py3-none-any.whl" in readme  # the wheel the documented command writes


def _git_out(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


@needs_git_checkout
def test_the_release_tag_exists():
    """pre-commit and pip resolve the examples' rev in this repository: an annotated tag on a commit.

    A clone made without tags (CI clones main alone) cannot show the tag, so there it is skipped; the
    examples still run below against a stand-in upstream tagged the same way."""
    rev = example_rev()
    if not _git_out("tag", "--list").stdout.strip():
        pytest.skip("this clone carries no tags (cloned without them); the tag is checked where tags exist")
    commit = _git_out("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    assert commit.returncode == 0, f"no tag {rev} in {ROOT}: create it with git tag -a {rev}"
    assert _git_out("cat-file", "-t", rev).stdout.strip() == "tag", f"{rev} is not an annotated tag"
    tagged = _git_out("show", f"{rev}:pyproject.toml").stdout
    assert f'version = "{_version()}"' in tagged, f"{rev} carries another version than pyproject.toml"


@pytest.fixture(scope="module")
def release_clone(tmp_path_factory) -> Path:
    """A stand-in for the GitHub URL: a clone of this checkout's HEAD, tagged with the examples' rev,
    so the examples run against the code under test whether or not this clone has the tag."""
    if not _in_git_checkout():
        pytest.skip("the stand-in upstream needs a git checkout")
    clone = tmp_path_factory.mktemp("upstream") / "netguard"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, capture_output=True, timeout=300)
    who = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    tag = _git_out(*who, "tag", "-f", "-a", example_rev(), "-m", "stand-in release", "HEAD", cwd=clone)
    assert tag.returncode == 0, tag.stderr
    return clone


def _local(text: str, clone: Path, venv: Path | None = None) -> str:
    """An example's text with the repository's URL (and the CI environment's folder) made local."""
    assert UPSTREAM in text or CI_VENV in text, text
    text = text.replace(f"git+{UPSTREAM}", f"git+{clone.as_uri()}").replace(UPSTREAM, str(clone))
    return text.replace(CI_VENV, str(venv)) if venv is not None else text


@pytest.fixture(scope="module")
def user_env(tmp_path_factory):
    """A user's shell: no pytest or virtualenv variables, the project's tools on PATH (pre-commit,
    and a `python` as a CI image has), Checkov told not to download, and a pre-commit cache of its own
    (removed afterwards: each environment in it holds checkov, some 400 MB)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "VIRTUAL_ENV", "NETGUARD_"))}
    cache = tmp_path_factory.mktemp("pre-commit-home")
    env.update(
        PRE_COMMIT_HOME=str(cache),
        BC_SKIP_MAPPING="TRUE",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    yield env
    shutil.rmtree(cache, ignore_errors=True)


def _shell(command: str, cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """One command line as a CI runner runs it (GitHub Actions: bash -e; GitLab: sh)."""
    return subprocess.run(
        ["bash", "-e", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _project(root: Path, files: dict[str, str]) -> Path:
    """A user's repository, its files added to git."""
    root.mkdir(parents=True)
    _git(root, "init", "-q")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    _git(root, "add", "--", *files)
    return root


def test_precommit_example_blocks_a_bad_template(tmp_path, release_clone, user_env):
    """`pre-commit run --all-files` with the example config, as written but for the repository URL."""
    config = _local(PRE_COMMIT_EXAMPLE.read_text(), release_clone)
    project = _project(
        tmp_path / "project",
        {".pre-commit-config.yaml": config, "stack.yaml": BAD, "network/main.tf": BAD_TF},
    )
    run = [str(BIN / "pre-commit"), "run", "--all-files"]
    blocked = subprocess.run(run, cwd=project, env=user_env, capture_output=True, text=True, timeout=1500, check=False)
    out = blocked.stdout + blocked.stderr
    assert blocked.returncode == 1, out
    assert re.search(r"netguard scan \(CloudFormation\)\.+Failed", out), out
    assert re.search(r"netguard scan \(Terraform\)\.+Failed", out), out
    assert re.search(r"netguard policy validate\.+\(no files to check\)Skipped", out), out
    assert re.search(r"stack\.yaml:2: LOW NG-EIP-001", out) and "aws_eip.spare" in out, out

    (project / "stack.yaml").write_text(GOOD)
    (project / "network" / "main.tf").unlink()
    _git(project, "add", "-A")
    passed = subprocess.run(run, cwd=project, env=user_env, capture_output=True, text=True, timeout=600, check=False)
    assert passed.returncode == 0, passed.stdout + passed.stderr


def _github_commands() -> tuple[list[str], list[str]]:
    """The GitHub example's install lines and scan command lines."""
    steps = yaml.safe_load(GITHUB_EXAMPLE.read_text())["jobs"]["scan"]["steps"]
    runs = [step["run"] for step in steps if "run" in step]
    install = [line for run in runs if "pip install" in run for line in run.splitlines() if line.strip()]
    scans = [run.strip() for run in runs if "netguard scan" in run]
    return install, scans


def _gitlab_commands() -> tuple[list[str], list[str]]:
    script = yaml.safe_load(GITLAB_EXAMPLE.read_text())["netguard"]["script"]
    return [s for s in script if "netguard scan" not in s], [s for s in script if "netguard scan" in s]


@pytest.fixture(scope="module")
def ci_install(tmp_path_factory, release_clone, user_env):
    """The CI examples' install commands, run for real: a fresh virtual environment, then pip
    installing the release tag from the clone with all its dependencies (removed afterwards)."""
    github, gitlab = _github_commands()[0], _gitlab_commands()[0]
    assert github == gitlab, "the CI examples install differently: run both"
    assert any(f"git+{UPSTREAM}@{example_rev()}" in line for line in github), github
    venv = tmp_path_factory.mktemp("ci") / "netguard"
    for line in github:
        proc = _shell(_local(line, release_clone, venv), tmp_path_factory.mktemp("job"), user_env, timeout=1200)
        assert proc.returncode == 0, f"{line}\n{(proc.stdout + proc.stderr)[-4000:]}"
    yield venv
    shutil.rmtree(venv, ignore_errors=True)


def _run_scans(commands: list[str], project: Path, clone: Path, venv: Path, env) -> list[subprocess.CompletedProcess]:
    return [_shell(_local(command, clone, venv), project, env) for command in commands]


def test_github_actions_example_installs_and_scans(tmp_path, release_clone, ci_install, user_env):
    scans = _github_commands()[1]
    assert len(scans) == 1, scans
    project = _project(tmp_path / "checkout", {"stack.yaml": BAD})
    (scan,) = _run_scans(scans, project, release_clone, ci_install, user_env)
    assert scan.returncode == 1, scan.stdout + scan.stderr  # findings fail the step; SARIF upload runs anyway
    annotations = [line for line in scan.stdout.splitlines() if line.startswith("::warning file=stack.yaml,line=2,")]
    assert len(annotations) == 1 and "NG-EIP-001" in annotations[0], scan.stdout
    sarif = json.loads((project / "netguard.sarif").read_text())
    results = sarif["runs"][0]["results"]
    assert [(r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]) for r in results] == [
        ("NG-EIP-001", "stack.yaml")
    ]


def test_gitlab_example_installs_and_scans(tmp_path, release_clone, ci_install, user_env):
    scans = _gitlab_commands()[1]
    assert len(scans) == 1, scans
    project = _project(tmp_path / "checkout", {"stack.yaml": BAD})
    (scan,) = _run_scans(scans, project, release_clone, ci_install, user_env)
    assert scan.returncode == 1, scan.stdout + scan.stderr
    junit = ET.parse(project / "netguard.xml").getroot()
    failures = [f.get("message", "") + (f.text or "") for f in junit.iter("failure")]
    assert len(failures) == 1 and "NG-EIP-001" in failures[0], failures

    # The comment's adoption path for a repository with findings: a baseline, then only new ones fail.
    text = GITLAB_EXAMPLE.read_text()
    (create,) = re.findall(r"#\s+(netguard scan \. --create-baseline \S+)", text)
    (baseline,) = re.findall(r"add `(--baseline \S+)` below", text)
    made = _shell(f"{ci_install}/bin/{create}", project, user_env)
    assert made.returncode == 0, made.stdout + made.stderr
    (scan,) = _run_scans([f"{scans[0]} {baseline}"], project, release_clone, ci_install, user_env)
    assert scan.returncode == 0, scan.stdout + scan.stderr


# `make demo`: a stand-in for python3 whose `-m venv DIR` makes an environment with a noisy pip (300
# lines on each stream, exit $STUB_PIP_EXIT for the netguard install) and a netguard that reports one
# finding (exit $STUB_SCAN_EXIT).
STUB_PYTHON = """#!/bin/sh
[ "$1 $2" = "-m venv" ] || exit 3
mkdir -p "$3/bin"
cat > "$3/bin/python" <<'EOF'
#!/bin/sh
i=0
while [ $i -lt 300 ]; do echo "setuptools noise $i"; echo "warning noise $i" >&2; i=$((i+1)); done
case "$*" in *"install -e"*) exit "${STUB_PIP_EXIT:-0}";; esac
EOF
cat > "$3/bin/netguard" <<'EOF'
#!/bin/sh
echo "stack.yaml:3: LOW NG-EIP-001 Eip"
echo "netguard: 1 files scanned, 1 findings"
exit "${STUB_SCAN_EXIT:-1}"
EOF
chmod +x "$3/bin/python" "$3/bin/netguard"
"""


def _make_demo(work: Path, venv: str, **env: str) -> tuple[int, list[str]]:
    stub = work / "stub-python"
    if not stub.exists():
        stub.write_text(STUB_PYTHON)
        stub.chmod(0o755)
        (work / "pyproject.toml").write_text("")
    proc = subprocess.run(
        ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "demo", f"PYTHON={stub}", f"VENV={venv}"],
        cwd=work,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, (proc.stdout + proc.stderr).splitlines()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is needed")
def test_make_demo_keeps_the_install_output_in_a_log(tmp_path):
    """`make demo` once printed some 330 lines of setuptools warnings before its findings."""
    code, lines = _make_demo(tmp_path, "venv")
    assert code == 0, lines
    assert not any("noise" in line for line in lines), lines
    assert any("log: venv/install.log" in line for line in lines), lines
    assert lines[-2:] == ["stack.yaml:3: LOW NG-EIP-001 Eip", "netguard: 1 files scanned, 1 findings"], lines
    assert len(lines) <= 4, lines
    log = (tmp_path / "venv" / "install.log").read_text()
    assert log.count("setuptools noise") == 900 and log.count("warning noise") == 900  # pip up, install, check
    assert (tmp_path / "venv" / ".netguard-installed").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is needed")
def test_make_demo_shows_the_end_of_the_log_when_the_install_fails(tmp_path):
    code, lines = _make_demo(tmp_path, "venv", STUB_PIP_EXIT="1")
    assert code != 0, lines
    assert any("install failed" in line and "venv/install.log" in line for line in lines), lines
    assert "warning noise 299" in lines and "setuptools noise 0" not in lines, lines
    assert len(lines) <= 40, lines
    assert not (tmp_path / "venv" / ".netguard-installed").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is needed")
def test_make_demo_fails_when_the_scan_has_errors(tmp_path):
    """Exit 1 (findings) is the demo working; exit 2 (a file not evaluated) is not."""
    assert _make_demo(tmp_path, "venv")[0] == 0
    code, lines = _make_demo(tmp_path, "venv", STUB_SCAN_EXIT="2")
    assert code != 0, lines
