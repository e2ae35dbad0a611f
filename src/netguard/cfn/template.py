"""A parsed CloudFormation template seen the way netguard's controls need it.

Works on netguard's marked parse and on any mapping the engines produce for their plug-ins (cfn-lint's
nodes, or plain dicts). Intrinsics are followed with the conditions under which each branch applies, so a
control can ask "is this always true whenever the resource exists?".
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from netguard.cfn.conditions import TRUE, ConditionSet, Expr, conj, neg
from netguard.cfn.marked import MarkedDict

NO_VALUE = object()
_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")
PSEUDO_PARAMETERS = {
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
}


def _keys(node: Mapping) -> list[str]:
    return [str(k) for k in node if not str(k).startswith("__")]


def intrinsic(node: Any) -> tuple[str, Any] | None:
    """(function name, argument) when node is a one-key intrinsic mapping such as {"Ref": "X"}."""
    if isinstance(node, Mapping):
        keys = _keys(node)
        if len(keys) == 1 and (keys[0] == "Ref" or keys[0].startswith("Fn::") or keys[0] == "Condition"):
            return keys[0], node[keys[0]]
    return None


@dataclass(frozen=True)
class Reference:
    """A Ref, GetAtt or Sub variable that points at a logical id, under a guard."""

    target: str
    attribute: str | None  # None for Ref
    guard: Expr


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    properties: Mapping[str, Any]
    guard: Expr
    node: Mapping[str, Any]


class Template:
    """Resources, parameters and conditions of one template."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        params = data.get("Parameters")
        conds = data.get("Conditions")
        self.parameters: Mapping[str, Any] = params if isinstance(params, Mapping) else {}
        self.conditions = ConditionSet(conds if isinstance(conds, Mapping) else {}, self.parameters)
        self.resources: dict[str, Resource] = {}
        raw = data.get("Resources")
        if isinstance(raw, Mapping):
            for name in _keys(raw):
                node = raw[name]
                if not isinstance(node, Mapping) or not isinstance(node.get("Type"), str):
                    continue
                props = node.get("Properties")
                guard = self.conditions.named(node["Condition"]) if "Condition" in node else TRUE
                self.resources[name] = Resource(
                    name, node["Type"], props if isinstance(props, Mapping) else {}, guard, node
                )

    def span_of(self, logical_id: str) -> tuple[int, int]:
        """First and last line of a resource as the parser recorded them ((0, 0) for unmarked data)."""
        raw = self.data.get("Resources")
        node = self.resources[logical_id].node
        first = raw.line_of(logical_id) if isinstance(raw, MarkedDict) else 0
        last = node.end if isinstance(node, MarkedDict) else first
        return first, max(first, last)

    def of_type(self, *types: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type in types]

    # --- values -------------------------------------------------------------------------------
    def leaves(self, value: Any, guard: Expr = TRUE) -> Iterator[tuple[Any, Expr]]:
        """Each concrete value `value` can take, with its guard. Fn::If splits; AWS::NoValue is NO_VALUE."""
        fn = intrinsic(value)
        if fn and fn[0] == "Fn::If" and isinstance(fn[1], list) and len(fn[1]) == 3:
            cond = self.conditions.named(fn[1][0])
            yield from self.leaves(fn[1][1], conj(guard, cond))
            yield from self.leaves(fn[1][2], conj(guard, neg(cond)))
            return
        if fn and fn[0] == "Ref" and fn[1] == "AWS::NoValue":
            yield NO_VALUE, guard
            return
        yield value, guard

    def list_items(self, value: Any, guard: Expr = TRUE) -> Iterator[tuple[Any, Expr]]:
        """Items of a list-valued property, following Fn::If at the list and at the item level."""
        for leaf, leaf_guard in self.leaves(value, guard):
            if isinstance(leaf, list):
                for item in leaf:
                    for item_leaf, item_guard in self.leaves(item, leaf_guard):
                        if item_leaf is not NO_VALUE:
                            yield item_leaf, item_guard
            elif leaf is not NO_VALUE:
                yield leaf, leaf_guard

    def references(self, value: Any, guard: Expr = TRUE) -> Iterator[Reference]:
        """Every Ref / GetAtt / Sub reference inside value, with the guard of its Fn::If branch."""
        fn = intrinsic(value)
        if fn:
            name, arg = fn
            if name == "Ref" and isinstance(arg, str):
                yield Reference(arg, None, guard)
                return
            if name == "Fn::GetAtt":
                target, attribute = _getatt_parts(arg)
                if target:
                    yield Reference(target, attribute, guard)
                    return
            if name == "Fn::Sub":
                yield from self._sub_references(arg, guard)
                return
            if name == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
                cond = self.conditions.named(arg[0])
                yield from self.references(arg[1], conj(guard, cond))
                yield from self.references(arg[2], conj(guard, neg(cond)))
                return
        if isinstance(value, Mapping):
            for key in _keys(value):
                yield from self.references(value[key], guard)
        elif isinstance(value, list):
            for item in value:
                yield from self.references(item, guard)

    def _sub_references(self, arg: Any, guard: Expr) -> Iterator[Reference]:
        text, variables = (arg, {}) if isinstance(arg, str) else (None, {})
        if isinstance(arg, list) and arg and isinstance(arg[0], str):
            text = arg[0]
            variables = arg[1] if len(arg) > 1 and isinstance(arg[1], Mapping) else {}
            for key in _keys(variables):
                yield from self.references(variables[key], guard)
        if text is None:
            return
        for match in _SUB_VAR.finditer(text):
            name = match.group(1).strip()
            if name in variables:
                continue
            target, _, attribute = name.partition(".")
            yield Reference(target, attribute or None, guard)

    def render_string(self, node: Any) -> str | None:
        """A best-effort literal rendering of a string-valued node (Sub, Join, Ref to a parameter).

        Unknown pieces render as "x", a value that can never be a wildcard, so "is this `*`?" is
        answered from the literal parts only. Returns None for nodes that are not string-like.
        """
        if isinstance(node, bool):
            return str(node).lower()
        if isinstance(node, (str, int, float)):
            return str(node)
        fn = intrinsic(node)
        if not fn:
            return None
        name, arg = fn
        if name == "Ref":
            spec = self.parameters.get(arg) if isinstance(arg, str) else None
            default = spec.get("Default") if isinstance(spec, Mapping) else None
            return str(default) if isinstance(default, (str, int)) else "x"
        if name == "Fn::Sub":
            text = arg if isinstance(arg, str) else (arg[0] if isinstance(arg, list) and arg else None)
            return _SUB_VAR.sub("x", text) if isinstance(text, str) else None
        if name == "Fn::Join" and isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list):
            sep = arg[0] if isinstance(arg[0], str) else ""
            return sep.join(self.render_string(p) or "x" for p in arg[1])
        return "x"

    def ref_values(self, node: Any) -> list[str] | None:
        """The values a `Ref` to a parameter can take (AllowedValues), or None when not pinned down."""
        fn = intrinsic(node)
        if fn and fn[0] == "Ref" and isinstance(fn[1], str):
            return self.parameter_values(fn[1])
        return None

    def parameter_values(self, name: str) -> list[str] | None:
        """The values a parameter can take when AllowedValues pins them down, else None."""
        spec = self.parameters.get(name)
        allowed = spec.get("AllowedValues") if isinstance(spec, Mapping) else None
        if isinstance(allowed, list) and allowed:
            return [str(v) for v in allowed]
        return None


def _getatt_parts(arg: Any) -> tuple[str | None, str | None]:
    if isinstance(arg, str) and "." in arg:
        target, _, attribute = arg.partition(".")
        return target, attribute
    if isinstance(arg, list) and len(arg) >= 2 and isinstance(arg[0], str):
        return arg[0], arg[1] if isinstance(arg[1], str) else None
    return None, None
