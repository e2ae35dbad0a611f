"""The pre-commit hooks, run for real by `pre-commit try-repo` in a throwaway git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PRE_COMMIT = Path(sys.executable).parent / "pre-commit"
BAD = "Resources:\n  Eip:\n    Type: AWS::EC2::EIP\n"
GOOD = "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture(scope="module")
def hook_env(tmp_path_factory) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "VIRTUAL_ENV"))}
    env["PRE_COMMIT_HOME"] = str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "netguard-pre-commit")
    env["BC_SKIP_MAPPING"] = "TRUE"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    return env


def _try_repo(repo: Path, hook: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PRE_COMMIT), "try-repo", str(ROOT), hook, "--verbose"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed for pre-commit")
def test_cloudformation_hook_blocks_a_bad_template_and_passes_a_good_one(tmp_path, hook_env):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "stack.yaml").write_text(BAD)
    _git(repo, "add", "stack.yaml")
    blocked = _try_repo(repo, "netguard-scan", hook_env)
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    assert "NG-EIP-001" in blocked.stdout and "stack.yaml" in blocked.stdout
    (repo / "stack.yaml").write_text(GOOD)
    _git(repo, "add", "stack.yaml")
    passed = _try_repo(repo, "netguard-scan", hook_env)
    assert passed.returncode == 0, passed.stdout + passed.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed for pre-commit")
def test_terraform_hook_scans_the_module_of_the_changed_file(tmp_path, hook_env):
    repo = tmp_path / "repo"
    (repo / "network").mkdir(parents=True)
    _git(repo, "init", "-q")
    # The flow log lives in a file that is not part of the commit: only the module scan sees it.
    (repo / "network" / "logs.tf").write_text(
        'resource "aws_flow_log" "main" {\n  vpc_id       = aws_vpc.main.id\n  traffic_type = "ALL"\n}\n'
    )
    _git(repo, "add", "network/logs.tf")
    _git(repo, "commit", "-qm", "logs")
    (repo / "network" / "vpc.tf").write_text(
        'resource "aws_vpc" "main" {\n  cidr_block = "10.0.0.0/16"\n}\n'
        'resource "aws_vpc_dhcp_options" "corp" {\n  domain_name_servers = ["AmazonProvidedDNS"]\n}\n'
        'resource "aws_vpc_dhcp_options_association" "corp" {\n  vpc_id          = aws_vpc.main.id\n'
        "  dhcp_options_id = aws_vpc_dhcp_options.corp.id\n}\n"
    )
    _git(repo, "add", "network/vpc.tf")
    result = _try_repo(repo, "netguard-scan-terraform", hook_env)
    assert result.returncode == 0, result.stdout + result.stderr
    (repo / "network" / "eip.tf").write_text('resource "aws_eip" "spare" {\n  domain = "vpc"\n}\n')
    _git(repo, "add", "network/eip.tf")
    result = _try_repo(repo, "netguard-scan-terraform", hook_env)
    assert result.returncode == 1 and "aws_eip.spare" in result.stdout, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed for pre-commit")
def test_a_file_named_like_an_option_cannot_hijack_the_hook(tmp_path, hook_env):
    """pre-commit appends file names; `--create-baseline=notes.yaml` once turned the run into baseline
    creation and the commit passed. The hook's `--` keeps it a file name."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "--create-baseline=notes.yaml").write_text(BAD)
    (repo / "stack.yaml").write_text(BAD)
    _git(repo, "add", "--", "--create-baseline=notes.yaml", "stack.yaml")
    blocked = _try_repo(repo, "netguard-scan", hook_env)
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    assert "baselined" not in blocked.stdout
    assert not (repo / "notes.yaml").exists()
    assert blocked.stdout.count("LOW NG-EIP-001") == 2, blocked.stdout
