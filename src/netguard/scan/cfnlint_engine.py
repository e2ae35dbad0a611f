"""Run the pack's cfn-lint rules in-process: rules built once, templates decoded by cfn-lint."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from netguard.catalog import control_for_engine_id
from netguard.engines.cfnlint_adapter import failures
from netguard.errors import InputError
from netguard.scan.findings import Finding, ScanResult

ENGINE = "cfn-lint"


@cache
def _rules_and_config() -> tuple[Any, Any]:
    from cfnlint.config import ConfigMixIn
    from cfnlint.rules import Rules

    rules = Rules.create_from_module("netguard.checks.cfnlint")
    return rules, ConfigMixIn([], regions=["us-east-1"])


def _lint(name: str, template: Any, config: Any, rules: Any) -> list[Any]:
    """cfn-lint's template run without its Metadata ignore_checks filter: netguard applies suppressions
    itself, the same for both engines, and reports suppressed findings instead of dropping them."""
    from cfnlint.template import Template

    config.set_template_args(template)
    cfn = Template(name, template, config.regions, config.parameters)
    problems = cfn.transform()
    if problems:
        return list(problems)
    if config.build_graph:
        cfn.build_graph()
    return list(rules.run(filename=name, cfn=cfn, config=config))


def run_cfnlint(templates: list[tuple[Path, Any]], result: ScanResult, *, debug: bool = False) -> None:
    """Lint each template with only the pack's rules; a cfn-lint failure is an error for that file."""
    if not templates:
        return
    from cfnlint.decode.decode import decode

    rules, config = _rules_and_config()
    for path, _data in templates:
        name = str(path)
        try:
            template, problems = decode(name)
            if problems:
                for problem in problems:
                    result.errors.append(
                        InputError(
                            name,
                            f"cfn-lint could not parse this template: {problem.message}",
                            problem.linenumber or None,
                        )
                    )
                continue
            matches = _lint(name, template, config, rules)
            failure = failures.pop(name, None)
            if failure:
                raise RuntimeError(failure)
        except Exception as exc:
            if debug:
                raise
            result.errors.append(InputError(name, f"cfn-lint failed on this file: {type(exc).__name__}: {exc}"))
            continue
        for match in matches:
            control = control_for_engine_id("cfn_lint", match.rule.id)
            if control is None:
                result.errors.append(InputError(name, f"cfn-lint {match.rule.id}: {match.message}", match.linenumber))
                continue
            path_parts = list(getattr(match, "path", None) or [])
            resource = str(path_parts[1]) if len(path_parts) > 1 and path_parts[0] == "Resources" else "?"
            message = match.message.removeprefix(f"{control.id} ")
            result.add(
                Finding(
                    control=control.id,
                    file=name,
                    resource=resource,
                    line=match.linenumber,
                    severity=control.severity,
                    message=message,
                    engines=[ENGINE],
                )
            )
