"""cfn-lint adapter: a CloudFormationLintRule base class whose subclasses are one control each.

All rules of the pack evaluate the template once (cached per cfn-lint Template object) through
netguard's rules and report on ["Resources", <logical id>], so cfn-lint supplies the line numbers.
"""

from __future__ import annotations

from typing import Any, ClassVar

from cfnlint.rules import CloudFormationLintRule, RuleMatch

from netguard.catalog import load_catalog
from netguard.cfn import rules as cfn_rules
from netguard.cfn.template import Template
from netguard.config import active_config
from netguard.violations import Violation

_last: dict[str, Any] = {"cfn": None, "config": None, "violations": []}
failures: dict[str, str] = {}  # template file name -> why netguard's rules failed (cfn-lint would drop it)


def _violations(cfn: Any) -> list[Violation]:
    """Evaluate the template once for all of the pack's rules (cfn-lint calls each rule in turn)."""
    config = active_config()
    if _last["cfn"] is not cfn or _last["config"] != config:
        try:
            violations = cfn_rules.evaluate(Template(cfn.template), config)
        except Exception as exc:
            failures[str(cfn.filename)] = f"{type(exc).__name__}: {exc}"
            raise
        _last.update(cfn=cfn, config=config, violations=violations)
    return _last["violations"]


class NetguardRule(CloudFormationLintRule):
    """Base for the pack's cfn-lint rules. Subclasses set only `control_id`."""

    control_id: ClassVar[str] = ""
    source_url = "https://github.com/netguard/netguard/blob/main/docs/controls.md"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        control = load_catalog()[cls.control_id]
        cls.id = control.engines["cfn_lint"]
        cls.shortdesc = control.title
        cls.description = f"{control.id}: {control.rationale}"
        cls.source_url = f"{NetguardRule.source_url}#{control.id.lower()}"
        cls.tags = ["netguard", control.id, *control.resource_types("cloudformation")]

    def match(self, cfn: Any) -> list[RuleMatch]:
        return [
            RuleMatch(["Resources", v.resource], f"{self.control_id} {v.message}")
            for v in _violations(cfn)
            if v.control == self.control_id
        ]
