"""The fixture harness: every annotated expectation in fixtures/ holds, on the annotated line."""

from __future__ import annotations

from pathlib import Path

import pytest

from netguard.catalog import load_catalog
from tests.annotations import expectations, fixture_kind
from tests.conftest import FIXTURES, ROOT, fixture_files

FILES = fixture_files()


def check_fixture(findings, path: Path) -> None:
    """Compare a scan's findings for one fixture with its annotations; lines included."""
    expect = expectations(path)
    catalog = load_catalog()
    problems = list(expect.problems)
    unknown = sorted({control for control, _ in expect.ruleid | expect.ok if control not in catalog})
    if unknown:
        problems.append(f"annotations name controls the catalogue does not have: {unknown}")
    mine = [f for f in findings if Path(f.file).resolve() == path.resolve() and f.control in expect.scope]
    reported = {(f.control, f.resource) for f in mine}
    missing = expect.ruleid - reported
    wrongly = reported - expect.ruleid
    if missing:
        problems.append(f"missing findings: {sorted(missing)}")
    if wrongly:
        problems.append(f"unexpected findings: {sorted(wrongly)}")
    contradictions = expect.ruleid & expect.ok
    if contradictions:
        problems.append(f"annotated both ruleid and ok: {sorted(contradictions)}")
    for finding in mine:
        line = expect.lines.get(finding.resource)
        if (finding.control, finding.resource) in expect.ruleid and finding.line != line:
            problems.append(f"{finding.control} {finding.resource} reported on line {finding.line}, declared on {line}")
    assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems)


def test_fixtures_exist():
    assert len(FILES) >= 15


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fixture(fixture_scan, path):
    assert not fixture_scan.errors, fixture_scan.errors
    check_fixture(fixture_scan.findings, path)


def test_every_finding_has_a_line_and_message(fixture_scan):
    for finding in fixture_scan.findings:
        assert finding.line > 0, finding
        assert finding.message.startswith(finding.resource), finding


def test_fixtures_cover_layouts_that_move_lines():
    """4-space YAML and 4-space pretty-printed JSON put keys where a 2-space guess would not."""
    four_space_yaml = [p for p in FILES if p.suffix == ".yaml" and "\n    Vpc" in p.read_text()]
    four_space_json = [p for p in FILES if p.suffix == ".json" and '\n        "' in p.read_text()]
    assert four_space_yaml and four_space_json


def test_harness_catches_a_wrong_line(fixture_scan):
    """The harness itself fails when a finding's line is off by one."""
    path = next(p for p in FILES if p.suffix == ".yaml" and expectations(p).ruleid)
    import dataclasses

    shifted = [
        dataclasses.replace(f, line=f.line + 1) if Path(f.file).resolve() == path.resolve() else f
        for f in fixture_scan.findings
    ]
    with pytest.raises(AssertionError, match="reported on line"):
        check_fixture(shifted, path)


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
