"""`policy replay --format html`: the page's numbers are the JSON report's, it loads nothing, and input
cannot inject markup. Checked in headless Chromium (Debian's `chromium`) with no network: the DOM after
load is compared with the JSON report, Chromium's own net log shows no request the page made, and a
screenshot is kept (copied to $NETGUARD_HTML_SCREENSHOTS, a folder, when set).

Outside CI a machine without Chromium skips the browser tests; under CI=true it fails them, since
.ci/run installs Chromium.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import struct
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from netguard.cli import main
from netguard.policy import html_report
from netguard.policy import replay as rp
from netguard.policy.simulate import load_policy_levels
from tests.conftest import FIXTURES

TRAILS = FIXTURES / "cloudtrail"
HOSTILE_PRINCIPAL = (
    'arn:aws:iam::123456789012:role/x"><script>document.title="pwned"</script><img src=x onerror=alert(1)>'
)
HOSTILE_SID = "Deny'\"><script>alert('sid')</script>"


# --------------------------------------------------------------------------------------------- helpers


class Dom(HTMLParser):
    """Every start tag's attributes, and the text of elements with an id (for the few checks of text)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text_parts: list[str] = []
        self.feed(text)
        self.text = "".join(self.text_parts)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)

    def value(self, **where: str) -> int:
        [found] = [int(a["data-value"] or 0) for _, a in self.tags if all(a.get(k) == v for k, v in where.items())]
        return found

    def all(self, **where: str) -> list[dict[str, str | None]]:
        return [a for _, a in self.tags if all(a.get(k) == v for k, v in where.items())]


def _render(capsys, policies: Path, events: Path, config: Path, fmt: str, *extra: str) -> str:
    argv = ["policy", "replay", "--policies", str(policies), "--events", str(events), "--config", str(config)]
    code = main([*argv, "--format", fmt, "--jobs", "2", *extra])
    out = capsys.readouterr().out
    assert code == 0
    return out


@pytest.fixture(scope="module")
def scps(tmp_path_factory) -> dict[str, Path]:
    """The guardrails of org.yaml (they deny) and org-tag.yaml (tag exemptions: Indeterminate)."""
    folders = {}
    for name in ("org", "org-tag"):
        out = tmp_path_factory.mktemp("scp") / name
        assert main(["policy", "render", "--config", str(FIXTURES / "org" / f"{name}.yaml"), "-o", str(out)]) == 0
        folders[name] = out
    return folders


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail("CI: chromium is missing, and .ci/run should have installed it (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")


def _browser(chromium: str, page: Path, work: Path, *what: str) -> subprocess.CompletedProcess[str]:
    """Chromium headless with no network at all: every name resolves to nothing and a dead proxy takes
    what is left; its own net log records every request anything attempted."""
    argv = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={work / 'profile'}",
        f"--log-net-log={work / 'netlog.json'}",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-dev-shm-usage",  # containers often have a 64 MB /dev/shm
        "--hide-scrollbars",
        *what,
        page.resolve().as_uri(),
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, check=True)


def page_requests(netlog: Path) -> list[str]:
    """The URLs the page itself asked for (its network isolation key is the file:// page), apart from
    Chromium's own background calls, which the dead proxy refuses anyway."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start and "file://" in event.get("params", {}).get("network_isolation_key", "")
    ]


def _dump(chromium: str, page: Path, work: Path) -> tuple[str, list[str], float]:
    """The DOM after load, the requests the page made, and the seconds Chromium took."""
    began = time.monotonic()
    dom = _browser(chromium, page, work, "--dump-dom").stdout
    return dom, page_requests(work / "netlog.json"), time.monotonic() - began


def _screenshot(chromium: str, page: Path, work: Path, name: str) -> Path:
    shot = work / f"{name}.png"
    _browser(chromium, page, work, f"--screenshot={shot}", "--window-size=1280,2000")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1280, 2000)  # IHDR: the window asked for
    assert len(data) > 40_000, "an almost empty screenshot: the page did not render"
    if os.environ.get("NETGUARD_HTML_SCREENSHOTS"):
        keep = Path(os.environ["NETGUARD_HTML_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / shot.name)
    return shot


def assert_page_matches_report(dom: Dom, report: dict) -> None:
    """Every number the page shows against the JSON report of the same run."""
    summary = report["summary"]
    for key in ("files", "records", "evaluated", "would_be_denied", "indeterminate", "already_failing", "errors"):
        assert dom.value(id=f"summary-{key}") == summary[key], key
    groups = report["groups"]
    shown = min(len(groups), html_report.TOP_GROUPS)
    assert dom.value(id="groups-total") == len(groups)
    assert dom.value(id="groups-shown") == shown
    rows = dom.all(**{"data-col": "count"})
    assert [int(r["data-value"] or 0) for r in rows][:shown] == [g["count"] for g in groups[:shown]]
    rest = groups[shown:]
    more = dom.all(id="groups-more")
    if rest:
        assert int(more[0]["data-groups"] or 0) == len(rest)
        assert int(more[0]["data-records"] or 0) == sum(g["count"] for g in rest)
    else:
        assert not more
    # the timeline: the legend's totals per statement, and the table under the chart
    legend = {a["data-series"]: int(a["data-value"] or 0) for a in dom.all() if "data-series" in a}
    by_statement: dict[str, int] = {}
    for entry in report["timeline"]:
        if entry["decision"] == "Deny":
            name = html_report.statement_name(entry["policy"], entry["sid"])
            by_statement[name] = by_statement.get(name, 0) + entry["count"]
    assert {k: v for k, v in legend.items() if not k.startswith("Indeterminate")} == by_statement
    assert sum(by_statement.values()) == summary["would_be_denied"]
    assert legend.get("Indeterminate (missing keys)", 0) == summary["indeterminate"]
    # the top principals, accounts and actions: the largest first, and with the rest, every record
    for field in ("principal", "account", "action"):
        per: dict[str, int] = {}
        for group in groups:
            per[group[field] or "(none)"] = per.get(group[field] or "(none)", 0) + group["count"]
        top = [int(a["data-records"] or 0) for a in dom.all(**{"data-top": field})]
        assert top == sorted(per.values(), reverse=True)[: html_report.TOP_ENTITIES], field
        rest = sum(int(a["data-records"] or 0) for a in dom.all(**{"data-top-more": field}))
        assert sum(top) + rest == summary["would_be_denied"] + summary["indeterminate"], field


# ----------------------------------------------------------------------------------------- no browser


def _hostile_report() -> dict:
    """A report whose principal, Sid, eventID and error message are markup and quotes."""
    totals = rp.Totals(files=1, records=3, evaluated=3)
    key = ("Deny", HOSTILE_PRINCIPAL, "ec2:CreateVpc", "123456789012", "p<b>.json", HOSTILE_SID, (), "explicit deny")
    key += ("Deny", None, None, None)
    totals.groups[key] = {
        "count": 2,
        "first_seen": "2026-11-02T12:00:00Z",
        "last_seen": "2026-11-02T13:00:00Z",
        "samples": [("2026-11-02T12:00:00Z", '"><iframe src="https://evil.example/">')],
    }
    undecided = ("Indeterminate", "arn:aws:iam::123456789012:role/B", "ec2:CreateVpc", "123456789012", None, None)
    undecided += (("aws:PrincipalTag/<x>",), "condition keys missing", "Indeterminate", None, None, None)
    totals.groups[undecided] = {"count": 1, "first_seen": "", "last_seen": "", "samples": []}
    totals.daily[("Deny", "p<b>.json", HOSTILE_SID, "2026-11-02", None)] = 2
    totals.daily[("Indeterminate", None, None, "<script>", None)] = 1
    from netguard.errors import InputError

    totals.errors.append(InputError("<img src=x onerror=alert(2)>.json", "bad </script><script>alert(3)</script>"))
    return json.loads(rp.to_json(totals, ["warning <b>bold</b>"]))


def test_input_is_escaped_everywhere():
    page = html_report.render(_hostile_report(), {"events": "<logs>"})
    assert page.count("<script") == 1  # only the page's own
    for raw in ("<img", "<iframe", "<b>", "</script><script>", 'x"><'):
        assert raw not in page.replace("<script>" + html_report._JS, ""), raw
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;" in page
    assert "Deny&#x27;&quot;&gt;&lt;script&gt;" in page  # the Sid, quotes and all
    assert page.isascii()


def test_a_large_run_keeps_the_top_groups_and_counts_the_rest():
    totals = rp.Totals(files=1, records=0, evaluated=0)
    for n in range(260):
        key = ("Deny", f"arn:aws:iam::123456789012:role/r{n}", "ec2:CreateVpc", "123456789012", "p.json", "S", ())
        totals.groups[(*key, "explicit deny", "Deny", None, None, None)] = {
            "count": 1000 - n,
            "first_seen": "2026-01-01T00:00:00Z",
            "last_seen": "2026-01-01T00:00:00Z",
            "samples": [],
        }
        totals.records += 1000 - n
    totals.daily[("Deny", "p.json", "S", "2026-01-01", None)] = totals.records
    report = json.loads(rp.to_json(totals))
    dom = Dom(html_report.render(report, top=200))
    assert dom.value(id="groups-shown") == 200 and dom.value(id="groups-total") == 260
    [more] = dom.all(id="groups-more")
    assert (int(more["data-groups"] or 0), int(more["data-records"] or 0)) == (
        60,
        sum(1000 - n for n in range(200, 260)),
    )
    assert "and 60 more groups (" in dom.text
    assert len(dom.all(**{"data-col": "count"})) == 200
    assert "and 245 more principals" in dom.text  # the top table counts what it leaves out too


@pytest.mark.parametrize(("days", "unit"), [(1, "day"), (365, "day"), (900, "week"), (40_000, "year")])
def test_the_timeline_reads_for_one_day_and_for_a_year(days, unit):
    from datetime import date, timedelta

    first = date(2026, 1, 1) - timedelta(days=days - 1)
    timeline = [
        {"day": (first + timedelta(days=d)).isoformat(), "decision": "Deny", "policy": "p.json", "sid": s, "count": 1}
        for d in range(days)
        for s in ("A", "B")
        if d % 7 == 0 or d == days - 1
    ]
    chart, table = html_report.timeline_svg(timeline)
    dom = Dom(chart)
    [svg] = dom.all(id="timeline-chart")
    assert svg["data-unit"] == unit and int(svg["data-buckets"] or 0) <= 400
    assert "records per " + unit in dom.text and "p.json / A" in dom.text
    legend = {a["data-series"]: int(a["data-value"] or 0) for a in dom.all() if "data-series" in a}
    assert legend == {"p.json / A": len(timeline) // 2, "p.json / B": len(timeline) // 2}
    assert len(chart) + len(table) < 200_000


def test_dates_at_the_ends_of_the_calendar_still_chart():
    """eventTime comes from the logs: year 1 and year 9999 make a chart of years, not an exception."""
    timeline = [
        {"day": day, "decision": "Deny", "policy": "p.json", "sid": "S", "count": 1}
        for day in ("0001-01-01", "2026-11-02", "9999-12-31", "", "2026-13-45")
    ]
    chart, table = html_report.timeline_svg(timeline)
    [svg] = Dom(chart).all(id="timeline-chart")
    assert svg["data-unit"] == "year" and svg["data-buckets"] == "9999"
    assert "2 records have no usable eventTime" in chart and "9999-01-01" in table


def test_organization_mode_shows_new_against_already_denied(tmp_path, capsys):
    from tests import test_org_chain as oc

    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(oc.SNAPSHOT))
    records = [
        oc._record(oc.PROD_ACCOUNT, "DeleteDhcpOptions", oc.DHCP, n=1),
        oc._record(oc.PROD_ACCOUNT, "DeleteVpcPeeringConnection", oc.PEERING, n=2),
        oc._record(oc.PROD_ACCOUNT, "CreateVpc", oc.VPC, n=3),
        oc._record(oc.LEGACY_ACCOUNT, "CreateVpc", oc.VPC, n=6),
    ]
    events = tmp_path / "trail.json"
    events.write_text(json.dumps({"Records": records}))
    argv = ["policy", "replay", "--org", str(snapshot), "--config", str(oc.ORG_YAML), "--events", str(events)]
    pages = {}
    for fmt in ("json", "html"):
        assert main([*argv, "--jobs", "1", "--format", fmt]) == 0
        pages[fmt] = capsys.readouterr().out
    report, dom = json.loads(pages["json"]), Dom(pages["html"])
    assert report["summary"]["newly_denied"] == 2 and report["summary"]["already_denied"] == 2
    assert dom.value(id="summary-newly_denied") == 2 and dom.value(id="summary-already_denied") == 2
    assert dom.value(**{"data-impact": "new-deny"}) == 2 and dom.value(**{"data-impact": "existing-any"}) == 2
    assert "rollout --stage all" in dom.text and "/Workloads/Prod" in dom.text
    without = {k: v for k, v in report["summary"].items() if k not in ("newly_denied", "already_denied")}
    assert not Dom(html_report.render({**report, "organization": None, "summary": without})).all(id="h-impact")


# -------------------------------------------------------------------------------------------- browser


@pytest.mark.parametrize("config", ["org", "org-tag"])
def test_fixture_report_in_chromium(tmp_path, capsys, scps, chromium, config):
    org_yaml = FIXTURES / "org" / f"{config}.yaml"
    report = json.loads(_render(capsys, scps[config], TRAILS, org_yaml, "json"))
    page = tmp_path / "report.html"
    page.write_text(_render(capsys, scps[config], TRAILS, org_yaml, "html"))
    dom_text, requests, _ = _dump(chromium, page, tmp_path)
    assert requests == []
    dom = Dom(dom_text)
    assert_page_matches_report(dom, report)
    assert report["summary"]["would_be_denied" if config == "org" else "indeterminate"] > 0
    if config == "org-tag":  # Indeterminate: the keys, and what supplies them
        assert "aws:PrincipalTag/netguard-exempt" in dom.text and "--principal-tags FILE" in dom.text
    assert not any(
        (a.get("src") or a.get("href") or "").startswith(("http:", "https:", "//")) for _, a in dom.tags
    )  # nothing to load from outside, and no link either
    assert "groups shown" in dom.text  # the script ran (and only it: the CSP admits it by its hash)
    _screenshot(chromium, page, tmp_path, f"replay-{config}")


def test_sorting_and_filtering_work_in_chromium(tmp_path, capsys, scps, chromium):
    """The page's script, driven by a test script (the copy drops the CSP that would refuse it): a
    click on "records" sorts the groups ascending, and the filters hide what they do not match."""
    org_yaml = FIXTURES / "org" / "org.yaml"
    text = _render(capsys, scps["org"], TRAILS, org_yaml, "html")
    start = text.index('<meta http-equiv="Content-Security-Policy"')
    text = text[:start] + text[text.index(">", start) + 1 :]
    driver = (
        "<script>var b=document.querySelectorAll('#groups-table th button');b[2].click();"
        "var q=document.querySelector('#groups-controls input');q.value='DeleteFlowLogs';"
        "q.dispatchEvent(new Event('input'));</script></body>"
    )
    page = tmp_path / "driven.html"
    page.write_text(text.replace("</body>", driver))
    dom_text, requests, _ = _dump(chromium, page, tmp_path)
    assert requests == []
    dom = Dom(dom_text)
    assert len(dom.all(type="button")) == 8  # every column header became a sort button
    counts = [int(a["data-value"] or 0) for a in dom.all(**{"data-col": "count"})]
    assert counts == sorted(counts) and counts[0] < counts[-1]
    groups = json.loads(_render(capsys, scps["org"], TRAILS, org_yaml, "json"))["groups"]
    matching = sum(1 for g in groups if g["action"] == "ec2:DeleteFlowLogs")
    hidden = [a for tag, a in dom.tags if tag == "tr" and "data-decision" in a and "hidden" in a]
    assert 0 < matching < len(groups) and len(hidden) == len(groups) - matching
    assert f"{matching} of {len(groups)} groups shown" in dom.text


def test_a_probe_page_that_loads_from_outside_is_caught(tmp_path, chromium):
    """The request check can fail: a page with an external image shows up in the net log."""
    page = tmp_path / "probe.html"
    page.write_text('<!DOCTYPE html><html lang="en"><title>p</title><img src="https://example.invalid/x.png" alt="">')
    _, requests, _ = _dump(chromium, page, tmp_path)
    assert requests == ["https://example.invalid/x.png"]


def test_hostile_input_runs_nothing_in_chromium(tmp_path, chromium):
    page = tmp_path / "hostile.html"
    page.write_text(html_report.render(_hostile_report()))
    dom_text, requests, _ = _dump(chromium, page, tmp_path)
    assert requests == []
    dom = Dom(dom_text)
    assert [tag for tag, _ in dom.tags].count("script") == 1
    assert not [a for tag, a in dom.tags if tag in ("img", "iframe")]
    assert "<title>netguard replay: 2 would be denied</title>" in dom_text  # not "pwned"
    assert HOSTILE_PRINCIPAL in dom.text and HOSTILE_SID in dom.text  # shown as text


def _large_trail(root: Path, records: int = 15_000) -> None:
    """A year of denied calls as a rollout meets them: weekdays busier than weekends, a growing trend,
    a week of VPC building, a few busy roles and accounts and a long tail (deterministic), in daily
    gzip files named as CloudTrail names its folders."""
    import copy
    import random
    from datetime import date, timedelta

    rng = random.Random(18)
    seed = json.loads((TRAILS / "seed-events.json").read_text())["Records"]
    templates = {
        r["eventName"]: r
        for r in seed
        if r["netguard-expect"]["decision"] == "Deny" and r["userIdentity"]["type"] == "AssumedRole"
    }
    names = sorted(templates)
    weights = []
    for d in range(365):
        day = date(2025, 12, 1) + timedelta(days=d)
        weights.append((0.25 if day.weekday() >= 5 else 1.0) * (1 + d / 200) * (5 if 200 <= d < 207 else 1))
    scale = records / sum(weights)
    made = 0
    for d, weight in enumerate(weights):
        day = date(2025, 12, 1) + timedelta(days=d)
        count = records - made if d == 364 else round(weight * scale)
        batch = []
        for _ in range(count):
            event = "CreateVpc" if 200 <= d < 207 and rng.random() < 0.7 else rng.choice(names)
            account = f"{100000000000 + int(20 * rng.random() ** 2):012d}"
            role = f"team-{int(400 * rng.random() ** 3)}"
            record = copy.deepcopy(templates[event])
            identity = record["userIdentity"]
            identity.update(arn=f"arn:aws:sts::{account}:assumed-role/{role}/s", accountId=account)
            identity["sessionContext"]["sessionIssuer"].update(
                arn=f"arn:aws:iam::{account}:role/{role}", accountId=account
            )
            record.update(recipientAccountId=account, eventID=f"ev-{made:08d}")
            record["eventTime"] = f"{day.isoformat()}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z"
            batch.append(record)
            made += 1
        folder = root / f"AWSLogs/{day.strftime('%Y/%m/%d')}"
        folder.mkdir(parents=True)
        (folder / "part.json.gz").write_bytes(gzip.compress(json.dumps({"Records": batch}).encode()))


def test_large_report_in_chromium(tmp_path, scps, chromium):
    logs = tmp_path / "logs"
    logs.mkdir()
    _large_trail(logs)
    levels, _ = load_policy_levels(scps["org"])
    totals = rp.replay(rp.compile_policies(levels), rp.Source(str(logs)), rp.Filters(), jobs=2)
    report = json.loads(rp.to_json(totals))
    assert len(report["groups"]) > 1000 and report["summary"]["would_be_denied"] == 15_000
    began = time.monotonic()
    text = html_report.render(report, {"events": str(logs), "policies": str(scps["org"])})
    rendered = time.monotonic() - began
    page = tmp_path / "large.html"
    page.write_text(text)
    size = page.stat().st_size
    assert size < 600_000, f"{size} bytes: the cut-off should keep the page small"
    dom_text, requests, loaded = _dump(chromium, page, tmp_path)
    assert requests == []
    dom = Dom(dom_text)
    assert_page_matches_report(dom, report)
    assert dom.all(id="timeline-chart")[0]["data-unit"] == "day"
    assert int(dom.all(id="timeline-chart")[0]["data-buckets"] or 0) == 365
    assert rendered < 5 and loaded < 60
    print(
        f"large report: {len(report['groups'])} groups, {size:,} bytes, render {rendered:.3f}s, chromium {loaded:.1f}s"
    )
    _screenshot(chromium, page, tmp_path, "replay-large")
