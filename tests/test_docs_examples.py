"""The README's examples, checked against the code they describe. (The Spark path the README
describes is run for real in tests/test_spark.py.)"""

from __future__ import annotations

import inspect
import json
import re

from netguard.cli import main
from netguard.policy.orgconfig import load_org_config
from netguard.policy.render import render_to_dir
from netguard.policy.replay import evaluate_record
from tests.conftest import FIXTURES, ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
ORG = FIXTURES / "org" / "org.yaml"
TRAILS = FIXTURES / "cloudtrail"


def _section(title: str) -> str:
    start = README.index(f"\n### {title}\n")
    end = README.index("\n## ", start)
    return README[start:end]


def _section_h2(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.index("\n## ", start + 1)
    return README[start:end]


def test_the_readme_gives_evaluate_records_current_signature():
    params = []
    for p in inspect.signature(evaluate_record).parameters.values():
        if p.kind is p.KEYWORD_ONLY and "*" not in params:
            params.append("*")
        params.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    text = " ".join(_section("Past one machine").split())
    assert f"evaluate_record({', '.join(params)})" in text


def test_the_replay_json_fields_the_readme_names_are_the_ones_written(tmp_path, capsys):
    render_to_dir(load_org_config(ORG), tmp_path)
    argv = ["policy", "replay", "--policies", str(tmp_path), "--source", str(TRAILS), "--config", str(ORG)]
    assert main([*argv, "--format", "json", "--jobs", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    text = " ".join(_section_h2("Impact analysis: replaying CloudTrail before rollout").split())
    assert set(report) == {"groups", "already_failing", "timeline", "organization", "errors", "warnings", "summary"}
    for field in report:
        assert f'"{field}"' in text, f"the README does not name the top-level field {field}"
    described = re.search(r'"summary": \{(.*?)\}', text)
    assert described, "the README should spell out the summary fields"
    assert re.findall(r'"(\w+)"', described.group(1)) == list(report["summary"])
    for field in report["already_failing"][0]:
        assert f"`{field}`" in text, f"the README does not name the group field {field}"
