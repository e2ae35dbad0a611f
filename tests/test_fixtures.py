"""The fixture harness: every annotated expectation in fixtures/ holds, for every engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from netguard.catalog import load_catalog
from tests.annotations import expectations, fixture_kind
from tests.conftest import ROOT, fixture_files

FILES = fixture_files()


def _reported(result, path: Path, scope: set[str]) -> set[tuple[str, str]]:
    return {(f.control, f.resource) for f in result.findings if Path(f.file).resolve() == path and f.control in scope}


def _check(result, path: Path) -> None:
    expect = expectations(path)
    reported = _reported(result, path, expect.scope)
    missing = expect.ruleid - reported
    wrongly = reported - expect.ruleid
    problems = []
    if missing:
        problems.append(f"missing findings: {sorted(missing)}")
    if wrongly:
        problems.append(f"unexpected findings: {sorted(wrongly)}")
    contradictions = expect.ruleid & expect.ok
    if contradictions:
        problems.append(f"annotated both ruleid and ok: {sorted(contradictions)}")
    assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems)


def test_fixtures_exist():
    assert len(FILES) >= 15


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT / "fixtures")))
def test_fixture_all_engines(fixture_scans, path):
    assert not fixture_scans["all"].errors, fixture_scans["all"].errors
    _check(fixture_scans["all"], path)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT / "fixtures")))
def test_fixture_checkov_alone(fixture_scans, path):
    _check(fixture_scans["checkov"], path)


CFN_FILES = [p for p in FILES if fixture_kind(p) != "terraform"]


@pytest.mark.parametrize("path", CFN_FILES, ids=lambda p: str(p.relative_to(ROOT / "fixtures")))
def test_fixture_cfnlint_alone(fixture_scans, path):
    _check(fixture_scans["cfn-lint"], path)


@pytest.mark.parametrize("path", CFN_FILES, ids=lambda p: str(p.relative_to(ROOT / "fixtures")))
def test_engines_agree(fixture_scans, path):
    """Checkov and cfn-lint give identical (resource, control) findings on every template."""

    def keys(result):
        return {(f.control, f.resource) for f in result.findings if Path(f.file).resolve() == path}

    checkov, cfnlint = keys(fixture_scans["checkov"]), keys(fixture_scans["cfn-lint"])
    assert checkov == cfnlint, (
        f"engines disagree on {path.name}: only checkov {sorted(checkov - cfnlint)}, "
        f"only cfn-lint {sorted(cfnlint - checkov)}"
    )


def test_every_finding_has_a_line_and_message(fixture_scans):
    for finding in fixture_scans["all"].findings:
        assert finding.line > 0, finding
        assert finding.resource in finding.message or finding.message.startswith(finding.resource.split("[")[0]), (
            finding
        )


def test_every_control_has_failing_and_passing_fixtures_in_each_format():
    """Meta-test: a control without a ruleid and an ok case in CFN YAML, CFN JSON and Terraform fails."""
    coverage: dict[tuple[str, str, str], int] = {}
    for path in FILES:
        expect = expectations(path)
        kind = fixture_kind(path)
        for verdict, pairs in (("ruleid", expect.ruleid), ("ok", expect.ok)):
            for control, _ in pairs:
                coverage[(control, kind, verdict)] = coverage.get((control, kind, verdict), 0) + 1
    gaps = [
        f"{control.id} lacks a {verdict} case in {kind}"
        for control in load_catalog().values()
        for kind in ("cfn-yaml", "cfn-json", "terraform")
        for verdict in ("ruleid", "ok")
        if control.resource_types("terraform" if kind == "terraform" else "cloudformation")
        and not coverage.get((control.id, kind, verdict))
    ]
    assert not gaps, "\n".join(gaps)
