"""`netguard controls`: the catalogue as users select from it, with the config's settings applied.

One list for every enforcement point: the ids `--check`, `--skip-check`, suppressions and the config
take, each control's engine ids (Checkov, cfn-lint), the CloudTrail events its SCP guards, and where it
is documented.
"""

from __future__ import annotations

import argparse
import json
import sys

from netguard.catalog import load_catalog
from netguard.errors import printable


def add_parser(sub: argparse._SubParsersAction) -> None:
    controls = sub.add_parser("controls", help="list the controls: ids, severities, titles, engines, events")
    controls.add_argument("--format", "-f", choices=("text", "json"), default="text")
    controls.add_argument(
        "--config", metavar="FILE", help="show this config's settings (default: the repository root's .netguard.yaml)"
    )
    controls.set_defaults(run=run)


def rows(config_path: str | None) -> tuple[list[dict], str | None]:
    """One dict per control with the config's severity and state applied, and the config used."""
    from netguard.scan.report import doc_link
    from netguard.scan.run import resolve_config

    config = resolve_config(config_path)
    settings = dict(config.controls)
    out = []
    for control in load_catalog().values():
        setting = settings.get(control.id)
        entry = {
            "id": control.id,
            "severity": (setting.severity if setting and setting.severity else control.severity),
            "catalog_severity": control.severity,
            "enabled": not (setting and not setting.enabled),
            "title": control.title,
            "engines": dict(control.engines),
            "reports_on": {k: list(v) for k, v in control.reports_on.items()},
            "cloudtrail_events": list(control.cloudtrail_events),
            "scp": control.scp,
            "remediation": control.remediation,
            "help_uri": doc_link(control.id, config.docs_url),
        }
        if setting:
            entry["config_reason"] = setting.reason
        out.append(entry)
    return out, config.source


def run(args: argparse.Namespace) -> int:
    """Print the list; exit 0, or 2 for a bad config."""
    entries, source = rows(args.config)
    if args.format == "json":
        print(json.dumps({"config": source, "controls": entries}, indent=2))
        return 0
    width = max(len(e["title"]) for e in entries)
    print(f"{'id':<12} {'severity':<9} {'title':<{width}}  engines / CloudTrail events")
    for e in entries:
        severity = e["severity"] + ("*" if e["severity"] != e["catalog_severity"] else "")
        engines = " ".join(e["engines"].values()) or "netguard scan only"
        events = ", ".join(e["cloudtrail_events"])
        state = "" if e["enabled"] else "  [disabled]"
        print(printable(f"{e['id']:<12} {severity:<9} {e['title']:<{width}}  {engines}; {events}{state}"))
    changed = [e for e in entries if "config_reason" in e]
    for e in changed:
        what = "disabled" if not e["enabled"] else f"severity {e['catalog_severity']} -> {e['severity']}"
        print(printable(f"note: {e['id']} {what} by {source}: {e['config_reason']}"))
    print(f"netguard: {len(entries)} controls; config {source or 'none (defaults)'}")
    return 0


if __name__ == "__main__":
    sys.exit(run(argparse.Namespace(format="text", config=None)))
