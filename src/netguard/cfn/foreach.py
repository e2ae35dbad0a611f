"""`Fn::ForEach` (the AWS::LanguageExtensions transform), expanded as CloudFormation expands it.

`Fn::ForEach::Subnets: [Name, [A, B], {"Subnet${Name}": {...}}]` in Resources becomes SubnetA and
SubnetB, with `${Name}` and `&{Name}` replaced in keys and strings and `Ref: Name` by the value.
Collections come from lists, parameters (their Default; CommaDelimitedList is split) and
Fn::FindInMap; loops nest. A collection netguard cannot resolve is reported, never guessed. A
generated resource is placed on the line of its output key inside the ForEach block, as cfn-lint does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from netguard.cfn.marked import MarkedDict

PREFIX = "Fn::ForEach::"
MAX_EXPANDED = 5_000  # resources one template may expand to; CloudFormation allows 500


def has_foreach(data: Mapping[str, Any]) -> bool:
    resources = data.get("Resources")
    return isinstance(resources, Mapping) and any(str(k).startswith(PREFIX) for k in resources)


def expand_resources(data: dict[str, Any]) -> list[str]:
    """Replace ForEach loops in data["Resources"] by what they generate; returns the problems."""
    resources = data.get("Resources")
    if not isinstance(resources, Mapping):
        return []
    problems: list[str] = []
    expanded = MarkedDict()
    if isinstance(resources, MarkedDict):
        expanded.start, expanded.end = resources.start, resources.end
    for key, value in resources.items():
        line = resources.line_of(key) if isinstance(resources, MarkedDict) else 0
        if str(key).startswith(PREFIX):
            for name, resource, output_line in _expand(data, str(key), value, {}, problems):
                _add(expanded, name, resource, output_line or line, problems)
        else:
            _add(expanded, key, value, line, problems)
        if len(expanded) > MAX_EXPANDED:
            problems.append(f"Fn::ForEach expands to more than {MAX_EXPANDED} resources")
            break
    data["Resources"] = expanded
    return problems


def _add(target: MarkedDict, name: Any, resource: Any, line: int, problems: list[str]) -> None:
    if name in target:
        problems.append(f"Fn::ForEach generates {name}, which is already defined")
        return
    target[name] = resource
    target.key_lines[name] = line


def _expand(
    data: dict[str, Any], key: str, loop: Any, bound: dict[str, str], problems: list[str]
) -> list[tuple[str, Any, int]]:
    """(logical id, resource, line of its output key) for every resource a loop generates."""
    if not (isinstance(loop, list) and len(loop) == 3 and isinstance(loop[0], str) and isinstance(loop[2], Mapping)):
        problems.append(f"{key}: expected [Identifier, Collection, {{OutputKey: ...}}]")
        return []
    identifier, collection, outputs = loop
    values = _collection(data, _substitute(collection, bound))
    if values is None:
        problems.append(
            f"{key}: netguard cannot resolve the collection it loops over, so it cannot check what it makes"
        )
        return []
    generated: list[tuple[str, Any, int]] = []
    for value in values:
        scope = {**bound, identifier: value}
        for output_key, body in outputs.items():
            if str(output_key).startswith(PREFIX):
                generated.extend(_expand(data, str(output_key), body, scope, problems))
            else:
                line = outputs.line_of(output_key) if isinstance(outputs, MarkedDict) else 0
                generated.append((_substitute(str(output_key), scope), _substitute(body, scope), line))
    return generated


def _collection(data: dict[str, Any], node: Any) -> list[str] | None:
    """The values of a ForEach collection, or None when they are not known from the template."""
    if isinstance(node, list):
        return [str(v) for v in node] if all(isinstance(v, (str, int, float)) for v in node) else None
    if isinstance(node, Mapping) and len(node) == 1:
        ((name, arg),) = node.items()
        if name == "Ref" and isinstance(arg, str):
            spec = (data.get("Parameters") or {}).get(arg)
            default = spec.get("Default") if isinstance(spec, Mapping) else None
            if isinstance(default, list) and default:
                return [str(v) for v in default]
            if isinstance(default, str) and default:
                return [part.strip() for part in default.split(",")]
            if isinstance(spec, Mapping):
                # Empty by default, or no default: whatever is passed, each item makes the loop body once,
                # so the body is judged once under a placeholder name rather than never.
                return [f"{arg}Item"]
            return None
        if name == "Fn::FindInMap" and isinstance(arg, list) and len(arg) >= 3:
            return _find_in_map(data, arg[:3])
    return None


def _find_in_map(data: dict[str, Any], keys: list[Any]) -> list[str] | None:
    """A FindInMap collection. A key that is a parameter with no single value (no Default) takes each
    value it can have (its AllowedValues, else every key the mapping has there): the loop then makes
    the union of what every deployment could make, so nothing is left unchecked and nothing guessed."""
    level: list[Any] = [data.get("Mappings") or {}]
    for key in keys:
        options = _key_options(data, key)
        level = [
            node.get(option)
            for node in level
            if isinstance(node, Mapping)
            for option in (options if options is not None else list(node))
            if option in node
        ]
    values: list[str] = []
    for found in level:
        items = _collection(data, found)
        if items is None:
            return None
        values.extend(v for v in items if v not in values)
    return values if level else None


def _key_options(data: dict[str, Any], node: Any) -> list[str] | None:
    """The keys a FindInMap argument can be (a parameter: every allowed value, not only its Default);
    None for "any key the mapping has"."""
    if isinstance(node, Mapping) and set(node) == {"Ref"}:
        spec = (data.get("Parameters") or {}).get(node["Ref"])
        allowed = spec.get("AllowedValues") if isinstance(spec, Mapping) else None
        if isinstance(allowed, list) and allowed:
            return [str(v) for v in allowed]
        if isinstance(spec, Mapping) and "Default" in spec:
            return None  # a default, but any value can be passed: every key the mapping has
    literal = _literal_key(data, node)
    return [literal] if literal is not None else None


def _literal_key(data: dict[str, Any], node: Any) -> str | None:
    if isinstance(node, (str, int)):
        return str(node)
    if isinstance(node, Mapping) and set(node) == {"Ref"}:
        spec = (data.get("Parameters") or {}).get(node["Ref"])
        default = spec.get("Default") if isinstance(spec, Mapping) else None
        return str(default) if isinstance(default, (str, int)) else None
    return None


_PLACEHOLDER = re.compile(r"([$&])\{([A-Za-z0-9_]+)\}")


def _substitute(node: Any, bound: dict[str, str]) -> Any:
    """${Id} and &{Id} (the value without non-alphanumerics) in strings and keys; Ref: Id as the value."""
    if not bound:
        return node
    if isinstance(node, str):
        return _PLACEHOLDER.sub(lambda m: _placeholder(m, bound), node)
    if isinstance(node, list):
        return [_substitute(v, bound) for v in node]
    if isinstance(node, Mapping):
        if set(node) == {"Ref"} and isinstance(node["Ref"], str) and node["Ref"] in bound:
            return bound[node["Ref"]]
        if set(node) == {"Ref"} and isinstance(node["Ref"], Mapping) and set(node["Ref"]) == {"Fn::Sub"}:
            name = _substitute(node["Ref"]["Fn::Sub"], bound)  # the extensions allow Ref: !Sub "Vpc${Name}"
            if isinstance(name, str) and "${" not in name:
                return MarkedDict({"Ref": name})
        copy = MarkedDict()
        for key, value in node.items():
            new_key = _substitute(key, bound) if isinstance(key, str) else key
            copy[new_key] = _substitute(value, bound)
            if isinstance(node, MarkedDict):
                copy.key_lines[new_key] = node.key_lines.get(key, node.start)
        if isinstance(node, MarkedDict):
            copy.start, copy.end = node.start, node.end
        return copy
    return node


def _placeholder(match: re.Match[str], bound: dict[str, str]) -> str:
    name = match.group(2)
    if name not in bound:
        return match.group(0)
    value = bound[name]
    return value if match.group(1) == "$" else re.sub(r"[^A-Za-z0-9]", "", value)
