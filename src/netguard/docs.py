"""Generate docs/controls.md from the catalogue (`make docs`); a test fails when the file is stale."""

from __future__ import annotations

import sys

from netguard.catalog import load_catalog


def controls_markdown() -> str:
    catalog = load_catalog()
    out = [
        "# netguard controls",
        "",
        "Generated from `checks/catalog.yaml` by `make docs`. Do not edit by hand.",
        "",
        "| control | severity | title |",
        "|---|---|---|",
    ]
    out += [f"| [{c.id}](#{c.id.lower()}) | {c.severity} | {c.title} |" for c in catalog.values()]
    for c in catalog.values():
        out += ["", f"## {c.id}", "", f"**{c.title}** (severity: {c.severity})", ""]
        for framework, label in (("cloudformation", "CloudFormation"), ("terraform", "Terraform")):
            types = c.resource_types(framework)
            if types:
                out.append(f"- {label}: reported on {', '.join(f'`{t}`' for t in types)}")
        out.append(f"- CloudTrail events: {', '.join(f'`{e}`' for e in c.cloudtrail_events)}")
        engines = [f"Checkov `{c.engines['checkov']}`"]
        if "cfn_lint" in c.engines:
            engines.append(f"cfn-lint `{c.engines['cfn_lint']}`")
        out.append(f"- Engine ids: {', '.join(engines)}")
        if c.scp:
            out.append(f"- Matching SCP statement: `{c.scp['sid']}` in `policies/scp/{c.scp['policy']}.json`")
        else:
            out.append("- Matching SCP statement: none (a configuration control with no API call to deny)")
        if c.actions:
            out.append(f"- Actions: {', '.join(f'`{a}`' for a in c.actions)}")
        out += ["", f"Why: {c.rationale}", "", f"Fix: {c.remediation}"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(controls_markdown())
