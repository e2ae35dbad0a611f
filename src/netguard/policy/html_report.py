"""`policy replay --format html`: one self-contained page people look at before a Deny goes out.

The page is rendered from the very dict `replay.to_json` produces (parsed back from its text), so the
page and the JSON report cannot disagree. It loads nothing: no CDN, fonts, images or chart library.
The charts are SVG drawn here, every number is text in the HTML (a `data-value` attribute carries it
unformatted), and a Content-Security-Policy admits only this module's own style and script by hash, so
even a value that slipped past escaping could neither run nor fetch anything. Everything from the
logs and policies (principal ARNs, eventIDs, Sids, error messages) is untrusted and escaped.

A large run keeps only the top groups (TOP_GROUPS, by records) in the page, with a line counting the
rest; the summaries, the top principals, accounts and actions, and the timeline are computed over all
groups first, so the cut-off never changes a total.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import math
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

from netguard.errors import printable

TOP_GROUPS = 200  # groups listed in the page; the rest are counted in one line
TOP_ENTITIES = 15  # rows in the top principals, accounts and actions tables
TOP_ERRORS = 200
MAX_SERIES = 9  # statements with a colour of their own in the timeline; the rest are "other statements"
SAMPLES_SHOWN = 5

DENY, INDETERMINATE = "Deny", "Indeterminate"
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
OTHER_COLOUR, UNDECIDED_COLOUR = "#79706e", "#9aa3ad"

# What makes an Indeterminate definite: keys CloudTrail never records, and who can supply them.
_SUPPLIERS = (
    ("aws:principaltag/", "--principal-tags FILE: the principals' tags (CloudTrail does not record them)"),
    ("aws:principalorgid", "organization_id in the org config (--config)"),
    ("aws:principalorgpaths", "an organization snapshot (--org): the OU path of the caller's account"),
    ("aws:resourcetag/", "not in CloudTrail records: the resource's tags must be known to decide"),
    ("aws:requesttag/", "the request's tags: present only when the call carried them"),
)


def _e(value: Any) -> str:
    """Text from input, control characters made visible (printable) and HTML-escaped, quotes too."""
    return html.escape(printable(str(value)), quote=True)


def _n(value: int) -> str:
    return f"{value:,}"


def _count(value: int, noun: str) -> str:
    return f"{value:,} {noun}{'' if value == 1 else 's'}"


def supplier(key: str) -> str:
    """Who can supply a condition key a record lacked, so an Indeterminate can become definite."""
    lowered = key.lower()
    for prefix, what in _SUPPLIERS:
        if lowered.startswith(prefix):
            return what
    return "not in the CloudTrail record: decide by hand, or narrow the condition"


def statement_name(policy: str | None, sid: str | None, decision: str = DENY) -> str:
    """A guardrail statement as people name it: policy / Sid, the policy alone without a Sid."""
    if decision == INDETERMINATE:
        return "Indeterminate (missing keys)"
    if not policy:
        return "implicit deny (a level without an Allow)"
    return f"{policy} / {sid}" if sid else policy


# ---------------------------------------------------------------------------------------------- data


def _top(rows: Iterable[Mapping[str, Any]], field: str, organization: bool) -> tuple[list[dict[str, Any]], int, int]:
    """Records per value of FIELD over all groups (deny, indeterminate, newly denied), the largest first;
    also how many values and records are left out beyond TOP_ENTITIES."""
    table: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = row.get(field) or "(none)"
        entry = table.setdefault(
            name, {"name": name, "records": 0, "deny": 0, "indeterminate": 0, "new": 0, "groups": 0}
        )
        entry["records"] += row["count"]
        entry["groups"] += 1
        if row["decision"] == DENY:
            entry["deny"] += row["count"]
        elif row["decision"] == INDETERMINATE:
            entry["indeterminate"] += row["count"]
        if organization and row.get("impact") == "new":
            entry["new"] += row["count"]
    ordered = sorted(table.values(), key=lambda e: (-e["records"], e["name"]))
    rest = ordered[TOP_ENTITIES:]
    return ordered[:TOP_ENTITIES], len(rest), sum(e["records"] for e in rest)


def _bucket(days: list[date]) -> tuple[str, Any]:
    """The chart's unit: a day up to 400 days, then weeks, months, years, so that a run of any span
    (or a record dated in year 1) stays a few hundred bars."""
    span = (max(days) - min(days)).days + 1
    if span <= 400:
        return "day", lambda d: d
    if span <= 2800:
        return "week", lambda d: d - timedelta(days=d.weekday())
    if span <= 400 * 31:
        return "month", lambda d: d.replace(day=1)
    return "year", lambda d: d.replace(month=1, day=1)


def _next(unit: str, d: date) -> date:
    if unit == "day":
        return d + timedelta(days=1)
    if unit == "week":
        return d + timedelta(days=7)
    if unit == "month":
        return date(d.year + d.month // 12, d.month % 12 + 1, 1)
    return date(d.year + 1, 1, 1)


def _series(timeline: list[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The timeline's series: one per denying statement (the largest MAX_SERIES, then "other
    statements"), then Indeterminate; and the records whose day is missing or not a date."""
    totals: dict[str, int] = {}
    undated = 0
    for entry in timeline:
        if entry["decision"] not in (DENY, INDETERMINATE):
            continue
        if _day(entry["day"]) is None:
            undated += entry["count"]
        name = statement_name(entry["policy"], entry["sid"], entry["decision"])
        if entry["decision"] == DENY:
            totals[name] = totals.get(name, 0) + entry["count"]
    ordered = sorted(totals, key=lambda name: (-totals[name], name))
    series = [{"name": name, "colour": PALETTE[i], "members": {name}} for i, name in enumerate(ordered[:MAX_SERIES])]
    if len(ordered) > MAX_SERIES:
        rest = ordered[MAX_SERIES:]
        series.append({"name": f"{len(rest)} other statements", "colour": OTHER_COLOUR, "members": set(rest)})
    series.append(
        {"name": statement_name(None, None, INDETERMINATE), "colour": UNDECIDED_COLOUR, "members": set(), "hatch": True}
    )
    return series, undated


def _day(text: Any) -> date | None:
    try:
        return date.fromisoformat(text) if isinstance(text, str) and len(text) == 10 else None
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------- charts


def _nice_ticks(top: int) -> list[int]:
    """Round y-axis ticks (1, 2, 5 x 10^n) from 0 up past TOP, four to six of them."""
    if top <= 0:
        return [0, 1]
    raw = top / 5
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(1, int(step))
    return list(range(0, math.ceil(top / step) * step + 1, step))


def timeline_svg(timeline: list[Mapping[str, Any]]) -> tuple[str, str]:
    """The would-be denials over time as stacked bars (SVG), and a data table of the same numbers.

    Returns (chart and legend, table rows): the chart for the eye, the table for screen readers and
    for copying; both carry the same counts."""
    series, undated = _series(timeline)
    member_of = {name: s for s in series for name in s["members"]}
    undecided = series[-1]
    counts: dict[tuple[date, int], int] = {}
    days = [d for d in (_day(e["day"]) for e in timeline if e["decision"] in (DENY, INDETERMINATE)) if d]
    if not days:
        note = "No would-be denial or Indeterminate has a date: nothing to chart."
        return f'<p class="empty" id="timeline-empty">{_e(note)}</p>', ""
    unit, bucket_of = _bucket(days)
    for entry in timeline:
        day = _day(entry["day"])
        if day is None or entry["decision"] not in (DENY, INDETERMINATE):
            continue
        if entry["decision"] == DENY:
            owner = member_of[statement_name(entry["policy"], entry["sid"], DENY)]
        else:
            owner = undecided
        key = (bucket_of(day), series.index(owner))
        counts[key] = counts.get(key, 0) + entry["count"]
    buckets = []
    current, last = bucket_of(min(days)), bucket_of(max(days))
    while current < last:  # not past the last: the day after 9999-12-31 is no date
        buckets.append(current)
        current = _next(unit, current)
    buckets.append(last)
    stack_top = max(sum(counts.get((b, i), 0) for i in range(len(series))) for b in buckets)
    ticks = _nice_ticks(stack_top)
    y_max = ticks[-1]
    width, height, left, right, top, bottom = 1100, 320, 64, 16, 16, 56
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / len(buckets)
    bar = min(48.0, slot * 0.8 if slot >= 3 else slot)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="timeline-title timeline-desc"'
        f' xmlns="http://www.w3.org/2000/svg" id="timeline-chart" data-buckets="{len(buckets)}" data-unit="{unit}">',
        '<title id="timeline-title">Would-be denials per ' + unit + " and statement</title>",
        f'<desc id="timeline-desc">Stacked bars: records per {unit} from {buckets[0].isoformat()} to '
        f"{buckets[-1].isoformat()}, coloured by the statement that denies them; Indeterminate hatched.</desc>",
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<rect width="6" height="6" fill="#e6e9ed"/><rect width="3" height="6" fill="{UNDECIDED_COLOUR}"/>'
        "</pattern></defs>",
    ]
    for tick in ticks:  # horizontal grid lines and the y-axis numbers
        y = top + plot_h - plot_h * tick / y_max
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 8}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_n(tick)}</text>'
        )
    # bars: one path per series (a sub-path per bar) keeps a year of days small; a title per bar
    # when there are few bars, so hovering names the day, the statement and the count
    # few bars: a rect each, with a title naming the day, the statement and the count on hover; many
    # (a year of days): each series one stepped area, seamless and a few kilobytes whatever the span
    few = len(buckets) <= 62
    lower = [float(top + plot_h)] * len(buckets)
    for number, one in enumerate(series):
        fill = "url(#hatch)" if one.get("hatch") else one["colour"]
        upper = []
        for index, bucket in enumerate(buckets):
            value = counts.get((bucket, number), 0)
            upper.append(lower[index] - plot_h * value / y_max)
            if few and value:
                x, h = left + slot * index + (slot - bar) / 2, lower[index] - upper[index]
                parts.append(
                    f'<rect x="{x:.1f}" y="{upper[index]:.1f}" width="{bar:.1f}" height="{h:.1f}"'
                    f' fill="{fill}"><title>{bucket.isoformat()}: {_e(one["name"])}: {_n(value)}</title></rect>'
                )
        if not few and any(u != v for u, v in zip(upper, lower, strict=True)):
            edge = [f"M{left:.1f} {upper[0]:.1f}", *_steps(upper, left, slot)]
            edge += _steps(lower[::-1], left + slot * len(buckets), -slot, turn=True)
            parts.append(f'<path d="{"".join(edge)}Z" fill="{fill}"><title>{_e(one["name"])}</title></path>')
        lower = upper
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" class="axis"/>'
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}" class="axis"/>'
    )
    for index, bucket in _x_labels(buckets, unit):
        x = left + slot * index + slot / 2
        text = bucket.isoformat() if unit in ("day", "week") else bucket.isoformat()[: 7 if unit == "month" else 4]
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" class="axis"/>'
            f'<text x="{x:.1f}" y="{top + plot_h + 18}" class="tick" text-anchor="middle">{text}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 8}" class="label" text-anchor="middle">'
        f"{unit} (UTC, eventTime){'' if unit == 'day' else f' - one bar per {unit}'}</text>"
        f'<text transform="translate(16 {top + plot_h / 2:.0f}) rotate(-90)" class="label" text-anchor="middle">'
        f"records per {unit}</text></svg>"
    )
    totals = [sum(counts.get((b, i), 0) for b in buckets) for i in range(len(series))]
    legend = ['<ul class="legend" id="timeline-legend">']
    for one, total in zip(series, totals, strict=True):
        if not total and one.get("hatch"):
            continue
        fill = "url(#hatch)" if one.get("hatch") else one["colour"]
        legend.append(
            f'<li data-series="{_e(one["name"])}" data-value="{total}"><svg class="swatch" width="14" height="14" '
            f'aria-hidden="true"><rect width="14" height="14" fill="{fill}"/>'
            f'</svg><span class="name">{_e(one["name"])}</span> <span class="num">{_n(total)}</span></li>'
        )
    legend.append("</ul>")
    if undated:
        some = f"{_n(undated)} record has" if undated == 1 else f"{_n(undated)} records have"
        legend.append(f'<p class="note">{some} no usable eventTime, and are not charted.</p>')
    rows = []
    for bucket in buckets:
        values = [counts.get((bucket, i), 0) for i in range(len(series))]
        if any(values):
            cells = "".join(f'<td class="num" data-value="{v}">{_n(v)}</td>' for v in values)
            rows.append(f'<tr><th scope="row">{bucket.isoformat()}</th>{cells}</tr>')
    head = "".join(f'<th scope="col">{_e(one["name"])}</th>' for one in series)
    table = (
        f'<table class="data" id="timeline-table"><caption>Records per {unit} and statement</caption>'
        f'<thead><tr><th scope="col">{unit}</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )
    return "".join(parts) + "".join(legend), table


def _steps(heights: list[float], start: float, width: float, turn: bool = False) -> list[str]:
    """A stepped edge through HEIGHTS, one bucket WIDTH apart from START (negative: right to left); a
    run of equal heights is one line, so a sparse or flat span costs a few bytes. TURN first goes to
    the first height (the way back along the lower edge)."""
    out = [f"V{heights[0]:.1f}"] if turn else []
    for index, height in enumerate(heights):
        last = index + 1 == len(heights)
        if last or heights[index + 1] != height:
            out.append(f"H{start + width * (index + 1):.1f}")
            if not last:
                out.append(f"V{heights[index + 1]:.1f}")
    return out


def _x_labels(buckets: list[date], unit: str) -> list[tuple[int, date]]:
    """At most about twelve x-axis labels: every k-th bar, or each month's first day for long runs."""
    if len(buckets) <= 12:
        return list(enumerate(buckets))
    if unit == "day" and len(buckets) > 62:
        firsts = [(i, b) for i, b in enumerate(buckets) if b.day == 1]
        step = max(1, math.ceil(len(firsts) / 12))
        return firsts[::step]
    step = math.ceil(len(buckets) / 12)
    return list(enumerate(buckets))[::step]


def _bar(value: int, largest: int, colour: str = PALETTE[2], undecided: int = 0) -> str:
    """A small bar of VALUE against LARGEST (decorative: the numbers are in the cells beside it), the
    UNDECIDED part of it grey."""
    width = 0 if not largest else max(1, round(120 * value / largest))
    grey = 0 if not value else round(width * undecided / value)
    return (
        f'<svg class="bar" width="120" height="10" aria-hidden="true"><rect width="120" height="10" fill="#eef0f3"/>'
        f'<rect width="{width - grey}" height="10" fill="{colour}"/>'
        f'<rect x="{width - grey}" width="{grey}" height="10" fill="{UNDECIDED_COLOUR}"/></svg>'
    )


# --------------------------------------------------------------------------------------------- page


def _metric(key: str, label: str, value: int, tone: str = "") -> str:
    return (
        f'<div class="card {tone}"><div class="num" id="summary-{key}" data-metric="{key}" data-value="{value}">'
        f'{_n(value)}</div><div class="what">{_e(label)}</div></div>'
    )


def _summary(report: Mapping[str, Any], context: Mapping[str, str]) -> str:
    summary = report["summary"]
    org = report.get("organization")
    cards = [
        _metric("files", "files read", summary["files"]),
        _metric("records", "records", summary["records"]),
        _metric("evaluated", "evaluated", summary["evaluated"]),
        _metric(
            "would_be_denied",
            "would be denied",
            summary["would_be_denied"],
            "deny" if summary["would_be_denied"] else "",
        ),
        _metric(
            "indeterminate", "indeterminate", summary["indeterminate"], "undecided" if summary["indeterminate"] else ""
        ),
        _metric("already_failing", "already failing", summary["already_failing"]),
        _metric("errors", "errors", summary["errors"], "error" if summary["errors"] else ""),
    ]
    if summary.get("newly_denied") is not None:
        tone = "deny" if summary["newly_denied"] else ""
        cards.insert(4, _metric("newly_denied", "newly denied by the rollout", summary["newly_denied"], tone))
        cards.insert(5, _metric("already_denied", "already denied today", summary["already_denied"]))
    facts = [(k, v) for k, v in context.items() if v]
    if org:
        facts.append(("organization", f"{org.get('snapshot')} (exported {org.get('exported_at')}, "
                      f"{org.get('accounts')} accounts), rollout --stage {org.get('stage')}"))  # fmt: skip
    rows = "".join(f'<tr><th scope="row">{_e(k)}</th><td>{_e(v)}</td></tr>' for k, v in facts)
    listing = f'<table class="facts" id="run-facts">{rows}</table>' if rows else ""
    return f'<section id="summary" aria-labelledby="h-summary"><h2 id="h-summary">Summary</h2>' \
        f'<div class="cards">{"".join(cards)}</div>{listing}</section>'  # fmt: skip


def _impact(report: Mapping[str, Any]) -> str:
    """New against already denied (--org only): what the rollout changes, what today's SCPs already do."""
    summary = report["summary"]
    if summary.get("newly_denied") is None:
        return ""
    groups = report["groups"]
    kinds = [
        ("new", DENY, "newly denied", "allowed today, denied after the rollout", PALETTE[2]),
        ("new", INDETERMINATE, "newly undecided", "allowed today, then up to keys the records lack", UNDECIDED_COLOUR),
        ("existing", None, "already denied", "today's SCPs deny it already: the rollout changes nothing", PALETTE[0]),
        ("undetermined", None, "undecided today", "today's SCPs depend on keys the records lack", "#bab0ac"),
    ]
    rows = []
    total = sum(g["count"] for g in groups) or 1
    for impact, decision, label, meaning, colour in kinds:
        chosen = [g for g in groups if g.get("impact") == impact and decision in (None, g["decision"])]
        records = sum(g["count"] for g in chosen)
        key = f"{impact}-{(decision or 'any').lower()}"
        rows.append(
            f'<tr><th scope="row">{label}</th><td>{_e(meaning)}</td>'
            f'<td class="num" data-impact="{key}" data-value="{records}">{_n(records)}</td>'
            f'<td class="num" data-impact-groups="{key}" data-value="{len(chosen)}">{_n(len(chosen))}</td>'
            f"<td>{_bar(records, total, colour)}</td></tr>"
        )
    org = report.get("organization") or {}
    changes = "".join(f"<li>{_e(c)}</li>" for c in org.get("rollout") or [])
    notes = "".join(f"<li>{_e(n)}</li>" for n in org.get("notes") or [])
    extra = f'<h3>The rollout</h3><ul class="plain">{changes}</ul>' if changes else ""
    extra += f'<h3>Notes</h3><ul class="plain">{notes}</ul>' if notes else ""
    return (
        '<section id="impact" aria-labelledby="h-impact"><h2 id="h-impact">New against already denied</h2>'
        '<table class="data"><thead><tr><th scope="col">impact</th><th scope="col">meaning</th>'
        '<th scope="col" class="num">records</th><th scope="col" class="num">groups</th><th scope="col">share</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>{extra}</section>"
    )


def _tops(report: Mapping[str, Any]) -> str:
    organization = report["summary"].get("newly_denied") is not None
    out = ['<section id="top" aria-labelledby="h-top"><h2 id="h-top">Who and what would be blocked</h2>']
    out.append('<div class="tops">')
    for field, title in (("principal", "principals"), ("account", "accounts"), ("action", "actions")):
        entries, more, more_records = _top(report["groups"], field, organization)
        largest = max((e["records"] for e in entries), default=0)
        wrap = field == "principal"
        head = '<th scope="col" class="num">new</th>' if organization else ""
        rows = []
        for e in entries:
            new = f'<td class="num" data-value="{e["new"]}">{_n(e["new"])}</td>' if organization else ""
            rows.append(
                f'<tr data-top="{field}" data-records="{e["records"]}"><td class="{"name" if wrap else "nowrap"}">'
                f"{_e(e['name'])}</td>"
                f'<td class="num" data-col="deny" data-value="{e["deny"]}">{_n(e["deny"])}</td>'
                f'<td class="num" data-col="indeterminate" data-value="{e["indeterminate"]}">{_n(e["indeterminate"])}'
                f"</td>{new}<td>{_bar(e['records'], largest, undecided=e['indeterminate'])}</td></tr>"
            )
        if not rows:
            rows.append(f'<tr><td colspan="{4 + organization}" class="empty">none</td></tr>')
        if more:
            rows.append(
                f'<tr class="more" data-top-more="{field}" data-count="{more}" data-records="{more_records}">'
                f'<td colspan="{4 + organization}">and {_n(more)} more {title} '
                f"({_n(more_records)} records)</td></tr>"
            )
        out.append(
            f'<div class="top{" wide" if field == "principal" else ""}"><table class="data" id="top-{field}s">'
            f"<caption>Top {title}</caption>"
            f'<thead><tr><th scope="col">{field}</th><th scope="col" class="num">denied</th>'
            f'<th scope="col" class="num">indeterminate</th>{head}<th scope="col">records</th></tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )
    out.append("</div></section>")
    return "".join(out)


def _indeterminate(report: Mapping[str, Any]) -> str:
    """Indeterminate groups by the keys they lack, with what would supply each key."""
    undecided = [g for g in report["groups"] if g["decision"] == INDETERMINATE]
    if not undecided:
        return ""
    by_keys: dict[tuple[str, ...], list[int]] = {}
    for group in undecided:
        entry = by_keys.setdefault(tuple(group["missing_keys"]), [0, 0])
        entry[0] += group["count"]
        entry[1] += 1
    rows = []
    for keys, (records, groups) in sorted(by_keys.items(), key=lambda item: (-item[1][0], item[0])):
        listed = "".join(f"<li><code>{_e(k)}</code>: {_e(supplier(k))}</li>" for k in keys) or "<li>(none named)</li>"
        rows.append(
            f'<tr><td><ul class="plain">{listed}</ul></td><td class="num" data-value="{records}">{_n(records)}</td>'
            f'<td class="num" data-value="{groups}">{_n(groups)}</td></tr>'
        )
    return (
        '<section id="indeterminate" aria-labelledby="h-indeterminate"><h2 id="h-indeterminate">Indeterminate: '
        "what the records lack</h2><p>A guardrail's condition reads a key these records do not carry, so the "
        "decision is up to it. Supply the key and replay again to make the answer definite.</p>"
        '<table class="data"><thead><tr><th scope="col">missing keys, and what supplies them</th>'
        '<th scope="col" class="num">records</th><th scope="col" class="num">groups</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _group_rows(groups: list[Mapping[str, Any]], failing: bool = False) -> str:
    """One row per group: the decision (with --org its impact, for a failed call its errorCode and the
    guardrails' decision), records, principal and account, action, statement, when, samples."""
    rows = []
    for number, g in enumerate(groups, 1):
        if g["policy"]:
            why = _e(statement_name(g["policy"], g["sid"]))
            if g.get("attached_at"):
                why += f' <span class="sub">at {_e(g["attached_at"])}</span>'
        elif g["missing_keys"]:
            why = "missing " + ", ".join(f"<code>{_e(k)}</code>" for k in g["missing_keys"])
        else:
            why = _e(g["reason"])
        samples = g["samples"][:SAMPLES_SHOWN]
        more = len(g["samples"]) - len(samples)
        shown = "".join(f"<li><code>{_e(s)}</code></li>" for s in samples) + (f"<li>+{more}</li>" if more else "")
        decision = g["guardrail_decision"] if failing else g["decision"]
        extra = f"errorCode {g.get('error_code') or ''}" if failing else g.get("impact") or ""
        extra = f'<span class="sub impact-{_e(extra)}">{_e(extra)}</span>' if extra else ""
        account = f'<span class="sub">account {_e(g["account"])}</span>' if g["account"] else ""
        rows.append(
            f'<tr class="d-{_e(decision).lower()}" data-decision="{_e(decision)}"><td class="num">{number}</td>'
            f'<td class="decision">{_e(decision)}{extra}</td>'
            f'<td class="num" data-col="{"failing-count" if failing else "count"}" data-value="{g["count"]}">'
            f'{_n(g["count"])}</td><td class="name">{_e(g["principal"])}{account}</td><td>{_e(g["action"])}</td>'
            f'<td class="why">{why}</td><td class="when">{_e(g["first_seen"])}<br>{_e(g["last_seen"])}</td>'
            f'<td><ul class="samples">{shown}</ul></td></tr>'
        )
    return "".join(rows)


_GROUP_HEAD = (
    '<tr><th scope="col" class="num">#</th><th scope="col">{decision}</th><th scope="col" class="num">records</th>'
    '<th scope="col">principal</th><th scope="col">action</th><th scope="col">statement or reason</th>'
    '<th scope="col">first / last seen</th><th scope="col">sample eventIDs</th></tr>'
)


def _groups(report: Mapping[str, Any], top: int) -> str:
    organization = report["summary"].get("newly_denied") is not None
    groups = report["groups"]
    shown, rest = groups[:top], groups[top:]
    head = _GROUP_HEAD.format(decision="decision, impact" if organization else "decision")
    cut = (
        f'<p class="more" id="groups-more" data-groups="{len(rest)}" data-records="{sum(g["count"] for g in rest)}">'
        f"and {_n(len(rest))} more groups ({_n(sum(g['count'] for g in rest))} records), left out of this page: "
        "the JSON report (--format json) lists every group.</p>"
        if rest
        else ""
    )
    return (
        f'<section id="groups" aria-labelledby="h-groups"><h2 id="h-groups">Groups</h2><p class="note">'
        f'The top <span id="groups-shown" data-value="{len(shown)}">{_n(len(shown))}</span> of '
        f'<span id="groups-total" data-value="{len(groups)}">{_n(len(groups))}</span> groups by records '
        f"(cut-off: {top}). A group is one principal, action, account and statement; its samples are its "
        f'earliest records.</p><div class="controls" id="groups-controls" hidden></div>'
        '<div class="scroll"><table class="data sortable" id="groups-table" aria-labelledby="h-groups">'
        f"<thead>{head}</thead>"
        f"<tbody>{_group_rows(shown)}</tbody></table></div>{cut}</section>"
    )


def _failing(report: Mapping[str, Any], top: int) -> str:
    failing = report["already_failing"]
    if not failing:
        return ""
    shown, rest = failing[:top], failing[top:]
    head = _GROUP_HEAD.format(decision="guardrails, errorCode")
    more = f'<p class="more">and {_n(len(rest))} more groups ({_n(sum(g["count"] for g in rest))} records)</p>'
    return (
        '<section id="failing" aria-labelledby="h-failing"><h2 id="h-failing">Already failing</h2>'
        "<p>Calls CloudTrail recorded as failed (errorCode) that the guardrails would deny too: not counted as "
        'impact.</p><div class="scroll"><table class="data" id="failing-table" aria-labelledby="h-failing">'
        f"<thead>{head}</thead>"
        f"<tbody>{_group_rows(shown, failing=True)}</tbody></table></div>{more if rest else ''}</section>"
    )


def _problems(report: Mapping[str, Any]) -> str:
    errors, warnings = report["errors"], report["warnings"]
    if not errors and not warnings:
        return '<section id="problems"><h2>Errors and warnings</h2><p class="empty">None.</p></section>'
    items = []
    for warning in warnings:
        items.append(f'<li class="warning"><strong>warning</strong> {_e(warning)}</li>')
    for error in errors[:TOP_ERRORS]:
        where = _e(error.get("file", "")) + (f":{_e(error['line'])}" if error.get("line") is not None else "")
        items.append(
            f'<li class="error"><strong>error</strong> <code>{where}</code> {_e(error.get("message", ""))}</li>'
        )
    if len(errors) > TOP_ERRORS:
        items.append(f'<li class="more">and {_n(len(errors) - TOP_ERRORS)} more errors (see --format json)</li>')
    return (
        '<section id="problems" aria-labelledby="h-problems"><h2 id="h-problems">Errors and warnings</h2>'
        f'<ul class="problems" id="problem-list">{"".join(items)}</ul></section>'
    )


_CSS = """
:root{--ink:#1f2933;--muted:#5f6b7a;--line:#d9dee5;--deny:#c0392b;--undecided:#6b7785;--bg:#f6f7f9}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--ink);background:#fff}
header{background:#1f2a37;color:#fff;padding:18px 20px}
header h1{margin:0;font-size:22px;font-weight:600}
header p{margin:4px 0 0;color:#c8d1dc}
main{max-width:1400px;margin:0 auto;padding:8px 20px 40px}
h2{font-size:18px;margin:28px 0 10px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:15px;margin:16px 0 6px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(118px,1fr));gap:10px}
.card{background:var(--bg);border:1px solid var(--line);border-left:4px solid #8896a6;border-radius:6px;
padding:10px 12px}
.card .num{font-size:26px;font-weight:650;font-variant-numeric:tabular-nums;text-align:left}
.card .what{color:var(--muted)}
.card.deny{border-left-color:var(--deny)}.card.deny .num{color:var(--deny)}
.card.undecided{border-left-color:var(--undecided)}.card.undecided .num{color:#4b5563}
.card.error{border-left-color:#e67e22}.card.error .num{color:#b35900}
table{border-collapse:collapse}
table.facts{margin-top:12px}
table.facts th{text-align:left;color:var(--muted);font-weight:500;padding:2px 14px 2px 0;vertical-align:top}
table.facts td{padding:2px 0;word-break:break-all}
table.data{width:100%;font-size:13px}
table.data caption{text-align:left;font-weight:600;padding:4px 0}
table.data th,table.data td{border-bottom:1px solid var(--line);padding:5px 6px;text-align:left;vertical-align:top}
table.data thead th{background:var(--bg);position:sticky;top:0}
table.data tbody tr:nth-child(even){background:#fbfcfd}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.name{overflow-wrap:anywhere;min-width:11em}
table.data td.nowrap{white-space:nowrap}
td.when{white-space:nowrap;color:var(--muted);font-size:11px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
ul.samples code{font-size:11px;white-space:nowrap}
tr.d-deny td:nth-child(2){color:var(--deny);font-weight:600}
tr.d-indeterminate td:nth-child(2){color:var(--undecided);font-weight:600}
ul.samples,ul.plain{margin:0;padding:0;list-style:none}
.tops{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:18px}
.top.wide{grid-column:1/-1}
svg.chart{width:100%;height:auto;display:block}
svg.chart .grid{stroke:#e5e8ec}svg.chart .axis{stroke:#5f6b7a}
svg.chart .tick{font-size:11px;fill:#5f6b7a}svg.chart .label{font-size:12px;fill:#1f2933}
ul.legend{list-style:none;padding:0;margin:8px 0;display:flex;flex-wrap:wrap;gap:6px 18px}
ul.legend li{display:flex;align-items:center;gap:6px}
ul.legend .num{color:var(--muted)}
.note,.empty{color:var(--muted)}
p.more,tr.more td{font-style:italic;color:var(--muted)}
.scroll{overflow-x:auto}
.controls{display:flex;gap:12px;align-items:center;margin:6px 0}
.controls input,.controls select{font:inherit;padding:3px 6px}
th button{font:inherit;font-weight:600;border:0;background:none;padding:0;cursor:pointer;color:inherit}
ul.problems{padding-left:18px}
li.error strong{color:#b35900}li.warning strong{color:#8a6d00}
details{margin-top:8px}
.sub{display:block;color:var(--muted);font-size:12px;font-weight:400}
.impact-new{color:var(--deny)!important;font-weight:600!important}
td.why{min-width:13em;overflow-wrap:break-word}td.why code{overflow-wrap:break-word}

footer{color:var(--muted);font-size:12px;border-top:1px solid var(--line);margin-top:30px;padding-top:8px}
@media print{header{background:none;color:#000;padding:0}header p{color:#333}main{max-width:none;padding:0}
.controls{display:none!important}table.data thead th{position:static}.scroll{overflow:visible}
section{break-inside:auto}tr{break-inside:avoid}*{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""

# Sorting by a column and filtering the groups table; the page reads the same without it.
_JS = """
(function(){
var table=document.getElementById('groups-table');if(!table)return;
var body=table.tBodies[0],box=document.getElementById('groups-controls');
box.hidden=false;
var text=document.createElement('input');text.type='search';text.placeholder='filter: principal, action, Sid...';
text.setAttribute('aria-label','filter the groups');
var pick=document.createElement('select');pick.setAttribute('aria-label','decision');
['all decisions','Deny','Indeterminate'].forEach(function(v){var o=document.createElement('option');
o.textContent=v;o.value=v==='all decisions'?'':v;pick.appendChild(o);});
var shown=document.createElement('span');shown.className='note';
box.appendChild(text);box.appendChild(pick);box.appendChild(shown);
function apply(){var q=text.value.toLowerCase(),d=pick.value,n=0;
Array.prototype.forEach.call(body.rows,function(r){var ok=(!d||r.getAttribute('data-decision')===d)&&
(!q||r.textContent.toLowerCase().indexOf(q)>=0);r.hidden=!ok;if(ok)n++;});
shown.textContent=n+' of '+body.rows.length+' groups shown';}
text.addEventListener('input',apply);pick.addEventListener('change',apply);apply();
Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
var b=document.createElement('button');b.type='button';b.textContent=th.textContent;th.textContent='';
th.appendChild(b);var up=false;
b.addEventListener('click',function(){up=!up;var rows=Array.prototype.slice.call(body.rows);
rows.sort(function(x,y){var a=x.cells[i],c=y.cells[i];
var p=a.getAttribute('data-value'),q2=c.getAttribute('data-value');
var k=(p!==null&&q2!==null)?(+p)-(+q2):(i===0?(+a.textContent)-(+c.textContent):
a.textContent.localeCompare(c.textContent));return up?k:-k;});
rows.forEach(function(r){body.appendChild(r);});
Array.prototype.forEach.call(table.tHead.rows[0].cells,function(o){o.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',up?'ascending':'descending');});});
})();
"""


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def render(report: Mapping[str, Any], context: Mapping[str, str] | None = None, top: int = TOP_GROUPS) -> str:
    """The page for a replay report: REPORT is the dict `replay.to_json` produces, CONTEXT what the run
    read (policies, events, filters) as label -> text. ASCII only (other characters as references), so
    it survives any stdout encoding."""
    context = dict(context or {})
    chart, table = timeline_svg(report["timeline"])
    timeline = (
        '<section id="timeline" aria-labelledby="h-timeline"><h2 id="h-timeline">Would-be denials over time</h2>'
        f"{chart}"
        + (f"<details><summary>The numbers behind the chart</summary>{table}</details>" if table else "")
        + "</section>"
    )
    summary = report["summary"]
    denied = summary["would_be_denied"]
    subtitle = f"{_count(denied, 'record')} would be denied, {_n(summary['indeterminate'])} indeterminate"
    if summary.get("newly_denied") is not None:
        subtitle += f"; {_n(summary['newly_denied'])} newly denied by the rollout"
    impact = [g for g in report["groups"] if g.get("impact") != "existing"]
    if impact:  # the first question before a rollout: how many people and accounts, over what time
        seen = sorted(t for g in impact for t in (g["first_seen"], g["last_seen"]) if t)
        principals, accounts = len({g["principal"] for g in impact}), len({g["account"] for g in impact})
        subtitle += f", affecting {_count(principals, 'principal')} in {_count(accounts, 'account')}"
        subtitle += f", {_e(seen[0][:10])} to {_e(seen[-1][:10])}" if seen else ""
    body = "".join(
        [
            _summary(report, context),
            _impact(report),
            timeline,
            _tops(report),
            _indeterminate(report),
            _groups(report, top),
            _failing(report, top),
            _problems(report),
        ]
    )
    csp = f"default-src 'none'; style-src {_hash(_CSS)}; script-src {_hash(_JS)}; form-action 'none'"
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>netguard replay: {_n(denied)} would be denied</title><style>{_CSS}</style></head><body>"
        f"<header><h1>netguard replay report</h1><p>{subtitle}</p></header><main>{body}"
        "<footer>Rendered by netguard from the same data as <code>policy replay --format json</code>; "
        "this file loads nothing from the network.</footer></main>"
        f"<script>{_JS}</script></body></html>\n"
    )
    return page.encode("ascii", "xmlcharrefreplace").decode("ascii")


def page_from_cli(report_json: str, args: argparse.Namespace, filters: str) -> str:
    """The page for `policy replay --format html`, from to_json's text and what the command line read."""
    context = {
        "events": getattr(args, "events", None),
        "policies": getattr(args, "policies", None),
        "org config": getattr(args, "config", None),
        "filters": filters or "none",
        "engine": getattr(args, "engine", None),
    }
    return render(json.loads(report_json), {k: str(v) for k, v in context.items() if v})
