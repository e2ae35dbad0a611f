"""The evaluator and the request-context builder against decisions recorded before they were optimised
(issue 18): bench/evaluate.py's varied records, decided against the repository's guardrails and a
third-party-style SCP set, must give exactly the golden results and contexts, field by field."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import evaluate as bench


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(bench.GOLDEN.read_text())


@pytest.fixture(scope="module")
def now() -> dict:
    return bench.golden()


def test_the_golden_file_covers_every_decision_and_principal_kind(recorded):
    for name, table in recorded["sets"].items():
        decisions = {json.loads(v) for v in table["values"]["guardrail_decision"]}
        assert {"Allow", "Deny"} <= decisions, name
    third = recorded["sets"]["third-party"]["values"]
    assert '"Indeterminate"' in third["guardrail_decision"]
    assert len(third["missing_keys"]) > 2  # several distinct sets of keys a record cannot supply


@pytest.mark.parametrize("name", ["repository", "third-party"])
def test_decisions_are_the_golden_ones(recorded, now, name):
    want, got = recorded["sets"][name], now["sets"][name]
    assert got["fields"] == want["fields"]
    fields = want["fields"]
    differences = [
        (i, field, json.loads(want["values"][field][w]), json.loads(got["values"][field][g]))
        for i, (w_row, g_row) in enumerate(zip(want["rows"], got["rows"], strict=True))
        for field, w, g in zip(fields, w_row, g_row, strict=True)
        if want["values"][field][w] != got["values"][field][g]
    ]
    assert differences == []


@pytest.mark.parametrize("name", ["repository", "third-party"])
def test_request_contexts_are_the_golden_ones(recorded, now, name):
    want, got = recorded["contexts"][name], now["contexts"][name]
    assert [i for i, (w, g) in enumerate(zip(want, got, strict=True)) if w != g] == []
