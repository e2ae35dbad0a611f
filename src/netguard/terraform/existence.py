"""Whether a block's existence implies that one of its covers exists, over the inputs that decide them.

`count = var.on ? 1 : 0` on a flow log and `count = local.create_vpc ? 1 : 0` on its VPC are different
texts, yet one may imply the other. As the CloudFormation side does with conditions, netguard decides
it exactly: it collects the variables both `count`/`for_each` expressions read (through locals),
gives each the values that matter (both booleans, the default, the constants the expressions compare
with, empty and non-empty collections), and evaluates both expressions in every combination. Past a
budget of scenarios, or where an expression cannot be evaluated, the answer is "not proven", which the
rules report: netguard would rather report than guess.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Any

from netguard.terraform import expressions as expr

MAX_SCENARIOS = 4096
_STRING = re.compile(r'"((?:[^"\\$]|\\.)*)"')
_NUMBER = re.compile(r"(?<![\w.])(\d+)(?![\w.])")


def implies(module: Any, target: Any, covers: list[Any]) -> tuple[bool | None, dict[str, Any]]:
    """(True, {}) when every scenario that creates target creates a cover; (False, scenario) for a
    counterexample; (None, {}) when netguard cannot decide (too many scenarios, or unreadable)."""
    if any(cover.module_path != target.module_path for cover in covers):
        return None, {}  # inputs of different module instances: not enumerated together
    frame_variables = dict(target.scope.variables)
    frame_locals = target.scope.local_values
    inputs = getattr(target.scope, "inputs", None)
    fixed = set(inputs.raws) if inputs is not None else set()  # set by the call: not free
    expressions = [b.count_raw for b in (target, *covers) if b.count_raw is not None]
    # A local both sides read (`local.nat_gateway_count`) is left uninterpreted: it takes every value
    # of a small domain freely, which can only add scenarios, so a proof stays a proof, and the
    # variables behind it need no enumeration.
    shared = _direct_locals(target.count_raw) & set().union(*(_direct_locals(c.count_raw) for c in covers))
    names = sorted(_inputs(frame_locals, expressions, opaque=shared) - fixed)
    literals = [text for raw in expressions if isinstance(raw, str) for text in _STRING.findall(raw)]
    numbers = {int(n) for raw in expressions if isinstance(raw, str) for n in _NUMBER.findall(raw)}
    defaults = expr.Bindings(variables=frame_variables, local_values=frame_locals)
    free = sorted(shared)
    domains = [_domain(frame_variables.get(name, expr.UNKNOWN), literals, numbers) for name in names]
    domains += [_domain(defaults.lookup("local", [name]), literals, numbers) for name in free]
    size = 1
    for domain in domains:
        size *= len(domain)
    if size > MAX_SCENARIOS:
        return None, {}
    for values in itertools.product(*domains):
        scenario = dict(zip(names, values[: len(names)], strict=True))
        pinned = dict(zip(free, values[len(names) :], strict=True))
        scope = expr.Bindings(
            variables={**frame_variables, **scenario},
            local_values={**frame_locals, **{name: _literal(value) for name, value in pinned.items()}},
        )
        if _how_many(target, scope) == 0:
            continue  # the target does not exist here
        if not any((_how_many(cover, scope) or 0) > 0 for cover in covers):
            return False, {**scenario, **{f"local.{name}": value for name, value in pinned.items()}}
    return True, {}


def _direct_locals(raw: Any) -> set[str]:
    if raw is None:
        return set()
    return {
        ref.parts[0]
        for ref in expr.references(raw)
        if ref.root == "local" and ref.parts and isinstance(ref.parts[0], str)
    }


def _literal(value: Any) -> Any:
    """A value as a raw hcl2 value that evaluates to itself (strings cannot start an interpolation)."""
    if isinstance(value, str):
        return value.replace("${", "$${")
    return value


def describe(scenario: dict[str, Any]) -> str:
    """Human wording for a counterexample."""
    if not scenario:
        return "with the defaults"
    return " and ".join(
        f"{name if name.startswith('local.') else 'var.' + name} = {_shown(value)}" for name, value in scenario.items()
    )


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _how_many(block: Any, scope: Any) -> int | None:
    """Instances of the block in a scenario; None when it cannot be told."""
    if block.count_raw is None:
        return 1
    value = expr.evaluate(block.count_raw, scope)
    if block.count_kind == "count":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return max(int(value), 0)
    if isinstance(value, (list, dict)):
        return len(value)
    return None


def _inputs(locals_raw: Any, expressions: Iterable[Any], opaque: set[str]) -> set[str]:
    """The variables the expressions read, directly or through locals other than the opaque ones."""
    found: set[str] = set()
    seen: set[str] = set(opaque)
    pending = list(expressions)
    while pending:
        for ref in expr.references(pending.pop()):
            name = ref.parts[0] if ref.parts and isinstance(ref.parts[0], str) else None
            if name is None:
                continue
            if ref.root == "var":
                found.add(name)
            elif ref.root == "local" and name not in seen and name in locals_raw:
                seen.add(name)
                pending.append(locals_raw[name])
    return found


def _domain(default: Any, literals: list[str], numbers: set[int]) -> list[Any]:
    """The values of one variable worth trying: its default first, then the ones that can flip an
    expression (the other boolean, compared constants, empty and non-empty collections)."""
    if isinstance(default, bool):
        candidates: list[Any] = [default, not default]
    elif isinstance(default, (int, float)):
        candidates = [default, 0, 1, 2, *sorted(numbers)]
    elif isinstance(default, str):
        candidates = [default, "", *literals]
    elif isinstance(default, list):
        candidates = [default, [], ["a"], ["a", "b"]]
    elif isinstance(default, dict):
        candidates = [default, {}, {"a": "a"}]
    elif default is None:
        candidates = [None, True, False, 1, "a", ["a"]]
    else:  # no default: any type
        candidates = [True, False, 0, 1, 2, "", "a", *literals, [], ["a"], ["a", "b"]]
    unique: list[Any] = []
    for value in candidates:
        if not any(type(value) is type(seen) and value == seen for seen in unique):
            unique.append(value)
    return unique
