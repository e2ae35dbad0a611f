"""The benchmark corpus doubles as an end-to-end check: netguard finds exactly what was planted,
serially and with worker processes (timings live in bench/, not here)."""

from __future__ import annotations

import sys

import pytest

from netguard.config import DEFAULT_CONFIG
from netguard.scan.run import scan
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from corpus import generate


@pytest.mark.parametrize("jobs", [1, 2])
def test_scan_finds_exactly_the_planted_violations(tmp_path, monkeypatch, jobs):
    monkeypatch.setattr("netguard.scan.run.PARALLEL_THRESHOLD", 10)
    corpus = generate(tmp_path, cfn_files=30, tf_files=50, violation_share=0.5)
    assert len(corpus["planted"]) >= 10
    result = scan([str(tmp_path)], DEFAULT_CONFIG, jobs=jobs)
    assert result.errors == []
    assert {(f.file, f.control, f.resource) for f in result.findings} == set(corpus["planted"])
    assert len(result.files) == corpus["cloudformation"] + corpus["terraform"]
