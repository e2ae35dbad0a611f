"""cfn-lint plug-in: one CloudFormationLintRule per control, answering from netguard's own evaluation.

cfn-lint calls each rule with its decoded template. The first rule of the pack to see a template runs
netguard's per-file evaluation on the file (the same function `netguard scan` runs), and every rule
reports its control's findings on ["Resources", <logical id>], so cfn-lint supplies the lines.

Fail closed: when netguard cannot evaluate a template (it does not parse, or the config is invalid),
rule E9501 (NG-VPC-001, an error) reports why, once per template, and the other rules report nothing.

cfn-lint APIs used, all public: CloudFormationLintRule and its class attributes, RuleMatch,
`cfn.filename` and `cfn.template`.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch

from netguard.catalog import load_catalog
from netguard.engines import Cache, config_key, file_key, plugin_config, turned_off
from netguard.errors import NetguardError
from netguard.scan.findings import Finding

_results: Cache = Cache(64)


def _docs_url() -> str | None:
    """The config's `docs_url` (a published docs/controls.md), as `netguard scan` links to it; without
    one, rules carry no link rather than a guessed URL."""
    try:
        return plugin_config().docs_url
    except NetguardError:
        return None


def _evaluate(cfn: Any) -> tuple[list[Finding], list[str]]:
    """Unsuppressed findings and input errors for the template cfn-lint is linting."""
    from netguard.scan.run import scan_template

    path = str(getattr(cfn, "filename", "") or "")
    try:
        config = plugin_config()
    except NetguardError as exc:  # one error per template, naming the config (see NetguardRule.match)
        return [], [f"its config cannot be used, so no netguard rule ran: {exc}"]
    key = file_key(path)
    if key is None:  # standard input, or a file that is gone: evaluate cfn-lint's decoded template
        from netguard.cfn import rules as cfn_rules
        from netguard.cfn.template import Template
        from netguard.scan.run import ENGINE

        catalog = load_catalog()
        violations = cfn_rules.evaluate(Template(cfn.template), config)
        return [
            Finding(v.control, path, v.resource, 0, catalog[v.control].severity, v.message, [ENGINE])
            for v in violations
        ], []
    cache_key = (key, config_key(config))
    if cache_key not in _results:
        unit = scan_template(path, config)
        real = os.path.realpath(path)  # a nested stack's findings belong to its own file
        findings = [f for f in unit.findings if f.suppressed is None and os.path.realpath(f.file) == real]
        _results.remember(cache_key, (findings, [e.message for e in unit.errors]))
    return _results[cache_key]


class NetguardRule(CloudFormationLintRule):
    """Base for the pack's cfn-lint rules. Subclasses set only `control_id`."""

    control_id: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        control = load_catalog()[cls.control_id]
        cls.id = control.engines["cfn_lint"]
        cls.shortdesc = control.title
        cls.description = f"{control.id}: {control.rationale}"
        docs_url = _docs_url()
        if docs_url:
            cls.source_url = f"{docs_url}#{control.id.lower()}"
        cls.tags = ["netguard", control.id, *control.resource_types("cloudformation")]

    def match(self, cfn: Any) -> list[RuleMatch]:
        findings, errors = _evaluate(cfn)
        if not errors and turned_off(plugin_config(), self.control_id):
            return []
        matches = [
            RuleMatch(["Resources", f.resource], f"{self.control_id} {f.message}")
            for f in findings
            if f.control == self.control_id
        ]
        if errors and self.control_id == "NG-VPC-001":
            # netguard could not evaluate this file: say so once, never pass it silently.
            matches.extend(RuleMatch([], f"netguard could not evaluate this template: {e}") for e in errors)
        return matches
