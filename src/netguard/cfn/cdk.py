"""CDK output: people know their constructs by path (`aws:cdk:path`), not by logical id."""

from __future__ import annotations

from netguard.cfn.template import Template
from netguard.scan.findings import Finding


def name_constructs(findings: list[Finding], template: Template) -> None:
    """Add the construct path of each finding's resource, when CDK wrote one, to its message."""
    for finding in findings:
        resource = template.resources.get(finding.resource)
        metadata = resource.node.get("Metadata") if resource is not None else None
        construct = metadata.get("aws:cdk:path") if isinstance(metadata, dict) else None
        if isinstance(construct, str):
            finding.message += f" (CDK construct {construct.removesuffix('/Resource')})"
