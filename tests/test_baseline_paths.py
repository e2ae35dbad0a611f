"""Baselines match wherever the scan runs from: paths are stored relative to the repository root, so a
baseline made at the root matches a scan from a subfolder, from outside, or with absolute paths. Old
(version 1, working-directory relative) baselines keep working from the folder that made them, and a
baseline that matches nothing says so instead of failing every finding silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netguard.cli import main

LEGACY = "Resources:\n  Old:\n    Type: AWS::EC2::EIP\n  Older:\n    Type: AWS::EC2::EIP\n"
ROOT_TF = 'module "net" {\n  source = "./modules/net"\n}\n'
CHILD_TF = 'resource "aws_eip" "nat" {\n  domain = "vpc"\n}\n'
BASELINE = ".netguard-baseline.json"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository (a `.git` folder is what marks its root) with CloudFormation and a Terraform
    root module calling a child, so one finding comes `via` a module block."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "infra" / "cfn").mkdir(parents=True)
    (root / "infra" / "cfn" / "legacy.yaml").write_text(LEGACY)
    (root / "infra" / "tf" / "modules" / "net").mkdir(parents=True)
    (root / "infra" / "tf" / "main.tf").write_text(ROOT_TF)
    (root / "infra" / "tf" / "modules" / "net" / "main.tf").write_text(CHILD_TF)
    (tmp_path / "elsewhere").mkdir()
    return root


def _scan(capsys, *args: str) -> tuple[int, dict, str]:
    capsys.readouterr()
    code = main(["scan", *args, "--format", "json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def _create(capsys, monkeypatch, cwd: Path, *args: str) -> None:
    monkeypatch.chdir(cwd)
    assert main(["scan", *args]) == 0
    capsys.readouterr()


def test_the_baseline_stores_paths_from_the_repository_root(repo, capsys, monkeypatch):
    _create(capsys, monkeypatch, repo / "infra", ".", "--create-baseline", f"../{BASELINE}")
    stored = json.loads((repo / BASELINE).read_text())
    assert stored["version"] == 2
    assert {(e["file"], e["resource"], e.get("via")) for e in stored["findings"]} == {
        ("infra/cfn/legacy.yaml", "Old", None),
        ("infra/cfn/legacy.yaml", "Older", None),
        ("infra/tf/modules/net/main.tf", "aws_eip.nat", None),
        ("infra/tf/modules/net/main.tf", "module.net.aws_eip.nat", "infra/tf/main.tf:1"),
    }


@pytest.mark.parametrize(
    ("cwd", "target", "baseline", "expected"),
    [
        (".", ".", BASELINE, 4),
        ("infra", ".", f"../{BASELINE}", 4),
        ("infra/cfn", ".", f"../../{BASELINE}", 2),
        ("infra/tf", "modules/net", f"../../{BASELINE}", 1),
        ("..", "repo", f"repo/{BASELINE}", 4),
        ("../elsewhere", "{repo}", f"{{repo}}/{BASELINE}", 4),
        ("../elsewhere", "{repo}/infra/cfn/legacy.yaml", f"{{repo}}/{BASELINE}", 2),
        ("infra/tf", "{repo}/infra/tf", f"{{repo}}/{BASELINE}", 2),
    ],
)
def test_a_baseline_made_at_the_root_matches_from_anywhere(repo, capsys, monkeypatch, cwd, target, baseline, expected):
    _create(capsys, monkeypatch, repo, ".", "--create-baseline", BASELINE)
    monkeypatch.chdir((repo / cwd).resolve())
    code, report, err = _scan(capsys, target.format(repo=repo), "--baseline", baseline.format(repo=repo))
    assert (code, report["summary"]["findings"], report["summary"]["baselined"]) == (0, 0, expected)
    assert all(f["baselined"] for f in report["findings"])
    assert not [n for n in report["notices"] if "baseline" in n]
    assert "warning" not in err  # entries for files this run did not scan are not stale


def test_a_baseline_made_with_absolute_paths_from_outside_matches_a_relative_scan(repo, capsys, monkeypatch):
    _create(capsys, monkeypatch, repo.parent / "elsewhere", str(repo), "--create-baseline", str(repo / BASELINE))
    assert json.loads((repo / BASELINE).read_text())["findings"][0]["file"] == "infra/cfn/legacy.yaml"
    monkeypatch.chdir(repo / "infra")
    code, report, _ = _scan(capsys, "cfn", "--baseline", f"../{BASELINE}")
    assert (code, report["summary"]["baselined"]) == (0, 2)


def test_a_working_directory_reached_through_a_symlink(repo, capsys, monkeypatch):
    _create(capsys, monkeypatch, repo, ".", "--create-baseline", BASELINE)
    link = repo.parent / "link"
    link.symlink_to(repo, target_is_directory=True)
    monkeypatch.chdir(link)
    code, report, _ = _scan(capsys, str(link / "infra"), "--baseline", BASELINE)
    assert (code, report["summary"]["baselined"]) == (0, 4)


def test_new_findings_still_fail_from_a_subfolder(repo, capsys, monkeypatch):
    _create(capsys, monkeypatch, repo, ".", "--create-baseline", BASELINE)
    (repo / "infra" / "cfn" / "legacy.yaml").write_text(LEGACY + "  New:\n    Type: AWS::EC2::EIP\n")
    monkeypatch.chdir(repo / "infra" / "cfn")
    code, report, _ = _scan(capsys, str(repo / "infra" / "cfn" / "legacy.yaml"), "--baseline", f"../../{BASELINE}")
    assert code == 1
    assert {(f["resource"], f.get("baselined", False)) for f in report["findings"]} == {
        ("Old", True),
        ("Older", True),
        ("New", False),
    }


def test_outside_a_repository_paths_are_relative_to_the_baseline_file(tmp_path, capsys, monkeypatch):
    project = tmp_path / "plain"  # no .git anywhere above
    (project / "cfn").mkdir(parents=True)
    (project / "cfn" / "legacy.yaml").write_text(LEGACY)
    _create(capsys, monkeypatch, project, ".", "--create-baseline", "b.json")
    assert {e["file"] for e in json.loads((project / "b.json").read_text())["findings"]} == {"cfn/legacy.yaml"}
    monkeypatch.chdir(tmp_path)
    code, report, _ = _scan(capsys, str(project / "cfn"), "--baseline", str(project / "b.json"))
    assert (code, report["summary"]["baselined"]) == (0, 2)


def _v1(repo: Path, folder: str, entries: list[tuple[str, str]]) -> Path:
    path = repo / folder / "old-baseline.json"
    findings = [{"control": "NG-EIP-001", "file": file, "resource": resource} for file, resource in entries]
    path.write_text(json.dumps({"version": 1, "findings": findings}))
    return path


def test_a_version_1_baseline_still_works_from_the_folder_that_made_it(repo, capsys, monkeypatch):
    """Version 1 paths are relative to the working directory of `--create-baseline`: here infra/."""
    _v1(repo, "infra", [("cfn/legacy.yaml", "Old"), ("cfn/legacy.yaml", "Older")])
    monkeypatch.chdir(repo / "infra")
    code, report, err = _scan(capsys, "cfn", "--baseline", "old-baseline.json")
    assert (code, report["summary"]["baselined"]) == (0, 2)
    code, report, err = _scan(capsys, str(repo / "infra" / "cfn"), "--baseline", "old-baseline.json")
    assert (code, report["summary"]["baselined"]) == (0, 2)
    assert "warning" not in err


def test_a_version_1_baseline_made_at_the_root_works_from_anywhere(repo, capsys, monkeypatch):
    """Made at the root, version 1 paths are already the repository-root form."""
    baseline = _v1(repo, ".", [("infra/cfn/legacy.yaml", "Old"), ("infra/cfn/legacy.yaml", "Older")])
    monkeypatch.chdir(repo / "infra" / "cfn")
    code, report, _ = _scan(capsys, ".", "--baseline", str(baseline))
    assert (code, report["summary"]["baselined"]) == (0, 2)


def test_a_version_1_baseline_from_elsewhere_matches_nothing_and_says_why(repo, capsys, monkeypatch):
    baseline = _v1(repo, "infra", [("cfn/legacy.yaml", "Old"), ("cfn/legacy.yaml", "Older")])
    monkeypatch.chdir(repo.parent / "elsewhere")
    code, report, _ = _scan(capsys, str(repo / "infra" / "cfn"), "--baseline", str(baseline))
    assert (code, report["summary"]["findings"], report["summary"]["baselined"]) == (1, 2, 0)
    [notice] = [n for n in report["notices"] if "baseline" in n]
    assert str(baseline) in notice
    assert "none of its 2 entries" in notice and "version 1" in notice and "folder it was created in" in notice


def test_a_baseline_for_another_tree_gives_a_notice_naming_the_file(repo, capsys, monkeypatch):
    other = repo / "other.json"
    other.write_text(
        json.dumps(
            {"version": 2, "findings": [{"control": "NG-EIP-001", "file": "cfn/legacy.yaml", "resource": "Old"}]}
        )
    )
    monkeypatch.chdir(repo)
    code, report, _ = _scan(capsys, "infra/cfn", "--baseline", "other.json")
    assert code == 1
    [notice] = [n for n in report["notices"] if "baseline" in n]
    assert notice.startswith("baseline other.json: none of its 1 entries matches")
    assert "another repository or folder" in notice
    capsys.readouterr()
    main(["scan", "infra/cfn", "--baseline", "other.json"])
    assert "notice: baseline other.json: none of its 1 entries" in capsys.readouterr().out


def test_an_entry_that_matches_nothing_is_a_warning(repo, capsys, monkeypatch):
    _create(capsys, monkeypatch, repo, ".", "--create-baseline", BASELINE)
    (repo / "infra" / "cfn" / "legacy.yaml").write_text("Resources:\n  Old:\n    Type: AWS::EC2::EIP\n")  # Older fixed
    code, report, err = _scan(capsys, ".", "--baseline", BASELINE)
    assert (code, report["summary"]["baselined"]) == (0, 3)
    assert err.count("warning") == 1
    assert "baseline entry NG-EIP-001 infra/cfn/legacy.yaml Older matches no finding" in err
    assert not [n for n in report["notices"] if "baseline" in n]  # the baseline as a whole still matches


def test_many_stale_entries_are_counted_not_listed(repo, capsys, monkeypatch):
    entries = [("infra/cfn/legacy.yaml", "Old")] + [("infra/cfn/legacy.yaml", f"Gone{i}") for i in range(15)]
    _v1(repo, ".", entries)
    monkeypatch.chdir(repo)
    _, _, err = _scan(capsys, ".", "--baseline", "old-baseline.json")
    assert err.count("matches no finding") == 10
    assert "5 more baseline entries match no finding" in err


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("[]", "an object with a findings list"),
        ('{"version": 3, "findings": []}', "unsupported baseline version 3"),
        ('{"version": 2, "findings": [{"control": "NG-EIP-001", "file": 1, "resource": "x"}]}', "findings/0"),
        ("{", "invalid JSON"),
    ],
)
def test_a_broken_baseline_is_a_usage_error(repo, capsys, monkeypatch, content, problem):
    (repo / "bad.json").write_text(content)
    monkeypatch.chdir(repo)
    capsys.readouterr()
    assert main(["scan", ".", "--baseline", "bad.json"]) == 2
    err = capsys.readouterr().err
    assert "bad.json: not a netguard baseline" in err and problem in err
