"""The README's examples, checked against the code they describe.

The PySpark snippet under "Past one machine" is not run on Spark (the suite has no Spark). Its text is
compiled, every name it imports from netguard must exist, and it is executed unchanged with a stand-in
for `spark` that serves the fixture CloudTrail files from disk; each record must get the decision
`netguard policy simulate` gives it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pickle
import re
from pathlib import Path

import pytest

from netguard.cli import main
from netguard.policy import simulate as sim
from netguard.policy.facts import OrgFacts
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


def _spark_snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", _section("Past one machine"), re.S)
    assert len(blocks) == 1, "expected one python block under 'Past one machine'"
    return blocks[0]


def test_the_spark_snippet_compiles_and_imports_only_what_exists():
    tree = ast.parse(_spark_snippet())
    compile(tree, "README.md", "exec")
    imported = [
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if node.module and node.module.startswith("netguard")
    ]
    assert ("netguard.policy.replay", "evaluate_record") in imported
    for module, name in imported:
        assert hasattr(importlib.import_module(module), name), f"{module} has no {name}"


def test_the_readme_gives_evaluate_records_current_signature():
    params = []
    for p in inspect.signature(evaluate_record).parameters.values():
        if p.kind is p.KEYWORD_ONLY and "*" not in params:
            params.append("*")
        params.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
    text = " ".join(_section("Past one machine").split())
    assert f"evaluate_record({', '.join(params)})" in text


class _RDD:
    """The few RDD methods the snippet calls, with Spark's calling conventions, in one process."""

    def __init__(self, partitions: list[list]) -> None:
        self.partitions = partitions

    def flatMap(self, f):  # Spark's name
        return _RDD([[item for element in part for item in f(element)] for part in self.partitions])

    def mapPartitions(self, f):  # Spark's name
        return _RDD([list(f(iter(part))) for part in self.partitions])

    def collect(self) -> list:
        return [item for part in self.partitions for item in part]


class _SparkContext:
    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self.patterns: list[str] = []

    def binaryFiles(self, pattern: str) -> _RDD:  # Spark's name
        self.patterns.append(pattern)
        pairs = [(f"file:{path}", path.read_bytes()) for path in self.files]
        return _RDD([pairs[::2], pairs[1::2]])  # two partitions: the policies are compiled in each


class _Spark:
    def __init__(self, files: list[Path]) -> None:
        self.sparkContext = _SparkContext(files)


@pytest.fixture
def rendered_policies(tmp_path, monkeypatch) -> Path:
    """build/scp as the README renders it, in a working directory of its own."""
    render_to_dir(load_org_config(ORG), tmp_path / "build" / "scp")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "build" / "scp"


def test_the_spark_snippet_decides_each_record_as_simulate_does(rendered_policies):
    files = [TRAILS / "seed-events.json", TRAILS / "failed-calls.json", *sorted((TRAILS / "shapes").glob("*.json"))]
    spark = _Spark(files)
    namespace = {"__name__": "readme_snippet", "spark": spark}
    exec(compile(_spark_snippet(), "README.md", "exec"), namespace)  # the README's own text, unchanged

    assert spark.sparkContext.patterns and spark.sparkContext.patterns[0].startswith("s3://")
    pickle.dumps((namespace["levels"], namespace["facts"]))  # what the functions carry to the executors
    got = namespace["decisions"].collect()
    assert not [row for row in got if "error" in row]

    facts = namespace["facts"]
    assert isinstance(facts, OrgFacts)
    levels, errors = sim.load_policy_levels(rendered_policies)
    assert not errors
    outcome = sim.simulate(levels, files, facts=facts)
    assert not outcome.errors
    expected = [
        (r["eventID"], r["decision"], r["guardrail_decision"], r["action"], r["errorCode"]) for r in outcome.results
    ]
    # the stand-in's two partitions interleave the files; compare as multisets
    actual = [(r["eventID"], r["decision"], r["guardrail_decision"], r["action"], r["error_code"]) for r in got]
    assert sorted(actual, key=repr) == sorted(expected, key=repr)
    decisions = {row[1] for row in actual}
    assert {"Deny", "AlreadyFailing", "Allow"} <= decisions  # the fixtures exercise more than one outcome


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
