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


def implies(target: Any, covers: list[Any]) -> tuple[bool | None, dict[str, Any]]:
    """(True, {}) when every scenario that creates target creates a cover; (False, scenario) for a
    counterexample; (None, {}) when netguard cannot decide (too many scenarios, or unreadable).

    Only the root module's variables are free: a called module's variables are what the call passes
    (evaluated from the root's, scenario by scenario) or their defaults.
    """
    blocks = [target, *covers]
    expressions = [b.count_raw for b in blocks if b.count_raw is not None]
    # A local both sides read in one module (`local.nat_gateway_count`) is left uninterpreted: it takes
    # every value of a small domain freely, which can only add scenarios, so a proof stays a proof,
    # and the variables behind it need no enumeration.
    one_frame = all(b.module_path == target.module_path for b in covers)
    shared = (
        _direct_locals(target.count_raw) & set().union(*(_direct_locals(c.count_raw) for c in covers))
        if one_frame
        else set()
    )
    names: set[str] = set()
    for block in blocks:
        if block.count_raw is not None:
            names |= _root_variables(block.scope, [block.count_raw], shared if one_frame else set())
    names_sorted = sorted(names)
    root = _root_scope(target.scope)
    literals = [text for raw in expressions if isinstance(raw, str) for text in _STRING.findall(raw)]
    numbers = {int(n) for raw in expressions if isinstance(raw, str) for n in _NUMBER.findall(raw)}
    defaults = expr.Bindings(variables=dict(target.scope.variables), local_values=target.scope.local_values)
    free = sorted(shared)
    domains = [_domain(root.variables.get(name, expr.UNKNOWN), literals, numbers) for name in names_sorted]
    domains += [_domain(defaults.lookup("local", [name]), literals, numbers) for name in free]
    size = 1
    for domain in domains:
        size *= len(domain)
    if size > MAX_SCENARIOS:
        return None, {}
    decided = 0
    for values in itertools.product(*domains):
        scenario = dict(zip(names_sorted, values[: len(names_sorted)], strict=True))
        pinned = {name: _literal(value) for name, value in zip(free, values[len(names_sorted) :], strict=True)}
        frames: dict[int, Any] = {}  # one scenario's bindings per module instance

        def count_of(
            block: Any, scenario: dict[str, Any] = scenario, pinned: dict[str, Any] = pinned, frames: dict = frames
        ) -> int | None:
            same_frame = block.module_path == target.module_path
            return _how_many(block, _scenario_scope(block.scope, scenario, pinned if same_frame else {}, frames))

        count = count_of(target)
        if count is None:
            continue  # not a scenario Terraform accepts (a free value of the wrong type), or unknowable
        decided += 1
        if count == 0:
            continue  # the target does not exist here
        if not any((count_of(cover) or 0) > 0 for cover in covers):
            return False, {
                **scenario,
                **{f"local.{name}": value for name, value in zip(free, values[len(names_sorted) :], strict=True)},
            }
    return (True, {}) if decided else (None, {})


def _root_scope(scope: Any) -> Any:
    while getattr(scope, "inputs", None) is not None:
        scope = scope.inputs.caller
    return scope


def _root_variables(scope: Any, expressions: list[Any], opaque: set[str]) -> set[str]:
    """The root module's variables that expressions of this module read, through locals and the
    inputs of every call on the way down."""
    names = _inputs(scope.local_values, expressions, opaque)
    inputs = getattr(scope, "inputs", None)
    if inputs is None:
        return names
    passed = [inputs.raws[name] for name in names if name in inputs.raws]
    return _root_variables(inputs.caller, passed, set()) if passed else set()


def _scenario_scope(scope: Any, scenario: dict[str, Any], pinned: dict[str, Any], frames: dict[int, Any]) -> Any:
    """The bindings of one module in one scenario: the root's variables from the scenario, a called
    module's from its call, evaluated in the caller's scenario bindings."""
    key = id(scope)
    if key not in frames:
        inputs = getattr(scope, "inputs", None)
        if inputs is None:
            variables = {**scope.variables, **scenario}
        else:
            caller = _scenario_scope(inputs.caller, scenario, {}, frames)
            variables = dict(inputs.defaults)
            variables.update({name: expr.evaluate(raw, caller) for name, raw in inputs.raws.items()})
        frames[key] = expr.Bindings(variables=variables, local_values={**scope.local_values, **pinned})
    return frames[key]


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
        return "with the inputs as given"
    return "when " + " and ".join(
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
