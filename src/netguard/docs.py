"""Generate docs/controls.md from the catalogue (`make docs`); a test fails when the file is stale."""

from __future__ import annotations

import sys

from netguard.catalog import Control, load_catalog

FRAMEWORKS = (  # (reports_on key, label, note)
    ("cloudformation", "CloudFormation", ""),
    ("terraform", "Terraform", ""),
    ("policy", "Policy files", " (the files `scp_paths` in `.netguard.yaml` names)"),
)
ENGINES = (("checkov", "Checkov"), ("cfn_lint", "cfn-lint"))


def enforcement_points(control: Control) -> dict[str, str]:
    """Where the control is enforced: in code review (scan), at the API (its SCP statement), on what is
    deployed (audit). Audit's list is the audit module's own, so the page cannot claim a check it lacks."""
    from netguard.audit.checks import AUDITED

    points = {}
    if control.resource_types("cloudformation") or control.resource_types("terraform"):
        points["IaC"] = "IaC (`netguard scan`, and the Checkov and cfn-lint plug-ins)"
    elif control.resource_types("policy"):
        points["IaC"] = "policy files (`netguard scan` of the committed SCP files)"
    if control.scp:
        points["SCP"] = f"SCP (`{control.scp['sid']}` in `policies/scp/{control.scp['policy']}.json`)"
    if control.id in AUDITED:
        points["audit"] = "audit of live accounts (`netguard audit`)"
    return points


def controls_markdown() -> str:
    catalog = load_catalog()
    out = [
        "# netguard controls",
        "",
        "Generated from `checks/catalog.yaml` by `make docs`. Do not edit by hand.",
        "",
        "| control | severity | title | IaC (scan) | SCP | audit |",
        "|---|---|---|---|---|---|",
    ]
    for c in catalog.values():
        points = enforcement_points(c)
        marks = ["yes" if key in points else "-" for key in ("IaC", "SCP", "audit")]
        if c.resource_types("policy"):
            marks[0] = "SCP files"
        out.append(f"| [{c.id}](#{c.id.lower()}) | {c.severity} | {c.title} | {' | '.join(marks)} |")
    for c in catalog.values():
        out += ["", f"## {c.id}", "", f"**{c.title}** (severity: {c.severity})", ""]
        out.append(f"- Enforcement points: {'; '.join(enforcement_points(c).values())}")
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
        if c.fix:
            out += [
                "",
                "`netguard audit` prints this fix for a live resource, its `{values}` filled in and shell-quoted"
                " (a step it cannot fill is left out; `<PLACEHOLDERS>` are yours):",
                "",
                "```sh",
                *c.fix,
                "```",
            ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(controls_markdown())
