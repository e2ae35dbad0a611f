"""Generate docs/controls.md from the catalogue (`make docs`); a test fails when the file is stale."""

from __future__ import annotations

import sys

from netguard.catalog import load_catalog

FRAMEWORKS = (  # (reports_on key, label, note)
    ("cloudformation", "CloudFormation", ""),
    ("terraform", "Terraform", ""),
    ("policy", "Policy files", " (the files `scp_paths` in `.netguard.yaml` names)"),
)
ENGINES = (("checkov", "Checkov"), ("cfn_lint", "cfn-lint"))


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
        for framework, label, note in FRAMEWORKS:
            types = c.resource_types(framework)
            if types:
                out.append(f"- {label}: reported on {', '.join(f'`{t}`' for t in types)}{note}")
        out.append(f"- CloudTrail events: {', '.join(f'`{e}`' for e in c.cloudtrail_events)}")
        engines = [f"{name} `{c.engines[key]}`" for key, name in ENGINES if key in c.engines]
        out.append(f"- Engine ids: {', '.join(engines) or 'none (only `netguard scan` evaluates these files)'}")
        if c.scp:
            out.append(f"- Matching SCP statement: `{c.scp['sid']}` in `policies/scp/{c.scp['policy']}.json`")
        elif c.resource_types("policy"):
            out.append("- Matching SCP statement: none (the control judges policy files themselves)")
        else:
            out.append("- Matching SCP statement: none (a configuration control with no API call to deny)")
        if c.actions:
            out.append(f"- Actions: {', '.join(f'`{a}`' for a in c.actions)}")
        out += ["", f"Why: {c.rationale}", "", f"Fix: {c.remediation}"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(controls_markdown())
