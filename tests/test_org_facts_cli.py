"""Principal tags and the organization id from the command line: what CloudTrail never records,
supplied by the user, so that tag exemptions and aws:PrincipalOrgID get definite answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from netguard.cli import main
from tests.conftest import ROOT

TRAIL = ROOT / "fixtures" / "cloudtrail"
TAG_CONFIG = ROOT / "fixtures" / "org" / "org-tag.yaml"
TAGS = """\
principals:
  - arn: arn:aws:iam::*:role/network/NetworkAdmin
    tags: {netguard-exempt: "true"}
unlisted: untagged
"""


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def readme_org_yaml() -> str:
    """The org config the README shows, exactly as a user would copy it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    return next(b for b in blocks if b.startswith("management_account_id:"))


def render(capsys, config: Path, out: Path) -> Path:
    code, _, err = run(capsys, "policy", "render", "--config", str(config), "--out", str(out))
    assert code == 0, err
    return out


def simulate(capsys, policies: Path, *extra: str) -> tuple[int, list[dict], str]:
    code, out, err = run(
        capsys, "policy", "simulate", "--policies", str(policies), "--events", str(TRAIL), "--format", "json", *extra
    )
    return code, json.loads(out)["results"], err


def undecided_on_tags(results: list[dict]) -> list[dict]:
    return [
        r
        for r in results
        if r["decision"] == "Indeterminate" and any(k.startswith("aws:PrincipalTag/") for k in r["missing_keys"])
    ]


def test_the_readme_org_config_leaves_no_record_undecided_for_lack_of_principal_tags(tmp_path, capsys):
    config = tmp_path / "org.yaml"
    config.write_text(readme_org_yaml(), encoding="utf-8")
    policies = render(capsys, config, tmp_path / "scp")
    code, results, _ = simulate(capsys, policies, "--config", str(config))
    assert code == 0
    assert not undecided_on_tags(results)
    assert not [r for r in results if r["decision"] == "Indeterminate"]
    assert any(r["decision"] == "Deny" for r in results)


def test_a_tag_exemption_is_undecided_without_a_tags_file_and_says_how_to_decide_it(tmp_path, capsys):
    policies = render(capsys, TAG_CONFIG, tmp_path / "scp")
    _, results, _ = simulate(capsys, policies, "--config", str(TAG_CONFIG))
    undecided = undecided_on_tags(results)
    assert undecided
    code, out, _ = run(
        capsys, "policy", "simulate", "--policies", str(policies), "--events", str(TRAIL), "--config", str(TAG_CONFIG)
    )
    assert code == 0
    assert f"{len(undecided)} Indeterminate need principal tags" in out
    assert "--principal-tags" in out


@pytest.mark.parametrize("command", ["simulate", "replay"])
def test_a_tags_file_makes_tag_exemptions_definite(tmp_path, capsys, command):
    policies = render(capsys, TAG_CONFIG, tmp_path / "scp")
    tags = tmp_path / "principals.yaml"
    tags.write_text(TAGS, encoding="utf-8")
    _, before, _ = simulate(capsys, policies, "--config", str(TAG_CONFIG))
    if command == "simulate":
        code, after, _ = simulate(capsys, policies, "--config", str(TAG_CONFIG), "--principal-tags", str(tags))
        assert code == 0
        assert not undecided_on_tags(after)
        was = {r["eventID"] for r in undecided_on_tags(before)}
        # untagged principals lose the exemption: each record undecided for tags alone is now denied
        assert {r["eventID"] for r in after if r["decision"] == "Deny"} >= was
        return
    args = ["policy", "replay", "--policies", str(policies), "--source", str(TRAIL), "--config", str(TAG_CONFIG)]
    code, out, _ = run(capsys, *args, "--format", "json", "--jobs", "1")
    assert json.loads(out)["summary"]["indeterminate"] > 0
    code, out, _ = run(capsys, *args, "--format", "json", "--jobs", "1", "--principal-tags", str(tags))
    report = json.loads(out)
    assert code == 0
    assert report["summary"]["indeterminate"] == 0
    assert report["summary"]["would_be_denied"] >= len(undecided_on_tags(before)) - report["summary"]["already_failing"]


def test_a_tagged_principal_is_exempt_and_an_unlisted_one_stays_undecided_by_default(tmp_path, capsys):
    policies = render(capsys, TAG_CONFIG, tmp_path / "scp")
    tags = tmp_path / "principals.yaml"
    tags.write_text(
        "principals:\n  - arn: arn:aws:iam::123456789012:role/Developer\n    tags: {netguard-exempt: 'true'}\n",
        encoding="utf-8",
    )
    _, results, _ = simulate(capsys, policies, "--config", str(TAG_CONFIG), "--principal-tags", str(tags))
    developer = [r for r in results if r["principal"] == "arn:aws:iam::123456789012:role/Developer"]
    others = undecided_on_tags(results)
    assert developer and all(r["decision"] in ("Allow", "AlreadyFailing") for r in developer)
    assert others and all(r["principal"] != "arn:aws:iam::123456789012:role/Developer" for r in others)


@pytest.mark.parametrize("command", ["simulate", "replay"])
@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("principals: [{arn: nope, tags: {}}]\n", "invalid principal tags at principals/0/arn"),
        ("principals: [\n", "invalid YAML"),
        (None, "cannot read principal tags"),
    ],
)
def test_a_bad_tags_file_is_exit_2_naming_it(tmp_path, capsys, command, text, reason):
    tags = tmp_path / "principals.yaml"
    if text is not None:
        tags.write_text(text, encoding="utf-8")
    where = ["--events", str(TRAIL)] if command == "simulate" else ["--source", str(TRAIL)]
    code, out, err = run(
        capsys, "policy", command, "--policies", str(ROOT / "policies" / "scp"), *where, "--principal-tags", str(tags)
    )
    assert code == 2
    assert str(tags) in err and reason in err
    assert "Traceback" not in err and out == ""
