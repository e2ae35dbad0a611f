"""CloudFormation conditions as boolean expressions, with an exact implication test.

Atoms are `Fn::Equals` of a parameter and a literal, so one parameter can only equal one literal at
a time; anything else becomes an opaque boolean. Implication is decided by enumerating the atoms the
two expressions use. Past a bound the answer is "unknown", which callers treat as a finding:
netguard would rather report than guess.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Expr = tuple

TRUE: Expr = ("T",)
FALSE: Expr = ("F",)
_OTHER = "\x00other"
MAX_ASSIGNMENTS = 1 << 14
MAX_NESTING = 100  # conditions referring to conditions; deeper chains become opaque (unknown) atoms


def _unique(parts: tuple[Expr, ...]) -> list[Expr]:
    """Parts without repeats (by identity first, so shared sub-expressions are never compared deeply)."""
    seen: dict[int, Expr] = {}
    for part in parts:
        seen.setdefault(id(part), part)
    return list(seen.values())


def conj(*parts: Expr) -> Expr:
    items = [p for p in _unique(parts) if p != TRUE]
    if any(p == FALSE for p in items):
        return FALSE
    if not items:
        return TRUE
    return items[0] if len(items) == 1 else ("and", *items)


def disj(*parts: Expr) -> Expr:
    items = [p for p in _unique(parts) if p != FALSE]
    if any(p == TRUE for p in items):
        return TRUE
    if not items:
        return FALSE
    return items[0] if len(items) == 1 else ("or", *items)


def neg(expr: Expr) -> Expr:
    if expr == TRUE:
        return FALSE
    if expr == FALSE:
        return TRUE
    if expr[0] == "not":
        return expr[1]
    return ("not", expr)


def _plain(node: Any) -> Any:
    """Strip engine node types and line markers so values compare and serialise simply."""
    if isinstance(node, Mapping):
        return {str(k): _plain(v) for k, v in node.items() if not str(k).startswith("__")}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool):
        return str(node).lower()
    if isinstance(node, (int, float)):
        return str(node)
    if isinstance(node, str):
        return str(node)
    return node


@dataclass
class ConditionSet:
    """The Conditions and Parameters of one template, compiled on demand."""

    conditions: Mapping[str, Any]
    parameters: Mapping[str, Any]

    def __post_init__(self) -> None:
        self._compiled: dict[str, Expr] = {}
        self._compiling: set[str] = set()

    def named(self, name: Any) -> Expr:
        """Expression for a condition name; unknown or circular names are opaque atoms."""
        if not isinstance(name, str):
            return ("atom", json.dumps(_plain(name), sort_keys=True))
        if name in self._compiled:
            return self._compiled[name]
        if name not in self.conditions or name in self._compiling or len(self._compiling) >= MAX_NESTING:
            return ("atom", f"condition:{name}")
        self._compiling.add(name)
        try:
            expr = self.compile(self.conditions[name])
        finally:
            self._compiling.discard(name)
        self._compiled[name] = expr
        return expr

    def compile(self, node: Any) -> Expr:
        if isinstance(node, Mapping) and len([k for k in node if not str(k).startswith("__")]) == 1:
            key = next(str(k) for k in node if not str(k).startswith("__"))
            args = node[key]
            if key == "Condition":
                return self.named(args)
            if key == "Fn::Not" and isinstance(args, list) and len(args) == 1:
                return neg(self.compile(args[0]))
            if key == "Fn::And" and isinstance(args, list) and args:
                return conj(*(self.compile(a) for a in args))
            if key == "Fn::Or" and isinstance(args, list) and args:
                return disj(*(self.compile(a) for a in args))
            if key == "Fn::Equals" and isinstance(args, list) and len(args) == 2:
                return self._equals(args[0], args[1])
        return ("atom", json.dumps(_plain(node), sort_keys=True))

    def _equals(self, left: Any, right: Any) -> Expr:
        left, right = _plain(left), _plain(right)
        if left == right:
            return TRUE
        if isinstance(left, str) and isinstance(right, str):
            return FALSE
        for ref, lit in ((left, right), (right, left)):
            if isinstance(lit, str) and isinstance(ref, dict) and set(ref) == {"Ref"}:
                param = ref["Ref"]
                if isinstance(param, str) and param in self.parameters:
                    return ("eq", param, lit)
        return ("atom", json.dumps(sorted([json.dumps(left, sort_keys=True), json.dumps(right, sort_keys=True)])))

    def _domain(self, param: str, literals: set[str]) -> list[str]:
        spec = self.parameters.get(param)
        allowed = spec.get("AllowedValues") if isinstance(spec, Mapping) else None
        if isinstance(allowed, list) and allowed:
            return sorted({str(_plain(v)) for v in allowed})
        return [*sorted(literals), _OTHER]

    def implies(self, premise: Expr, conclusion: Expr) -> tuple[bool | None, dict[str, Any]]:
        """(True, {}) when premise implies conclusion; (False, counterexample); (None, {}) if too big."""
        return self._search(conj(premise, neg(conclusion)))

    def satisfiable(self, expr: Expr) -> bool:
        """Whether some scenario makes expr true; an undecidable size counts as satisfiable."""
        none_found, _ = self._search(expr)
        return none_found is not True

    def _search(self, expr: Expr) -> tuple[bool | None, dict[str, Any]]:
        """Look for an assignment making expr true. (True, {}) means none exists."""
        if expr == FALSE:
            return True, {}
        params: dict[str, set[str]] = {}
        atoms: set[str] = set()
        _collect(expr, params, atoms)
        domains = {p: self._domain(p, lits) for p, lits in params.items()}
        size = 1 << len(atoms)
        for values in domains.values():
            size *= len(values)
        if size > MAX_ASSIGNMENTS:
            return None, {}
        names = list(domains)
        atom_names = sorted(atoms)
        for param_values in itertools.product(*(domains[n] for n in names)):
            env = dict(zip(names, param_values, strict=True))
            for atom_values in itertools.product((False, True), repeat=len(atom_names)):
                truth = dict(zip(atom_names, atom_values, strict=True))
                if _evaluate(expr, env, truth):
                    return False, {"parameters": env, "atoms": truth}
        return True, {}

    def describe(self, scenario: dict[str, Any]) -> str:
        """Human wording for a counterexample scenario."""
        parts = []
        for param, value in scenario.get("parameters", {}).items():
            if value == _OTHER:
                parts.append(f"parameter {param} has another value")
            else:
                parts.append(f"parameter {param} is '{value}'")
        for atom, value in scenario.get("atoms", {}).items():
            label = atom.removeprefix("condition:")
            parts.append(f"{label} is {'true' if value else 'false'}")
        return " and ".join(parts) if parts else "in every scenario"


def _collect(expr: Expr, params: dict[str, set[str]], atoms: set[str], seen: set[int] | None = None) -> None:
    """Parameters and atoms of an expression, visiting each shared sub-expression once.

    Conditions refer to conditions, so an expression is a graph: `C2 = And[C1, C1]` forty deep is a
    2 KB template whose tree has 2^40 nodes, but only forty distinct ones.
    """
    seen = set() if seen is None else seen
    if id(expr) in seen:
        return
    seen.add(id(expr))
    tag = expr[0]
    if tag == "eq":
        params.setdefault(expr[1], set()).add(expr[2])
    elif tag == "atom":
        atoms.add(expr[1])
    elif tag in ("and", "or", "not"):
        for part in expr[1:]:
            _collect(part, params, atoms, seen)


def _evaluate(expr: Expr, env: dict[str, str], truth: dict[str, bool], memo: dict[int, bool] | None = None) -> bool:
    """The value of expr in one scenario, each shared sub-expression evaluated once."""
    memo = {} if memo is None else memo
    key = id(expr)
    if key in memo:
        return memo[key]
    tag = expr[0]
    if tag == "T":
        value = True
    elif tag == "F":
        value = False
    elif tag == "eq":
        value = env[expr[1]] == expr[2]
    elif tag == "atom":
        value = truth[expr[1]]
    elif tag == "not":
        value = not _evaluate(expr[1], env, truth, memo)
    elif tag == "and":
        value = all(_evaluate(p, env, truth, memo) for p in expr[1:])
    else:
        value = any(_evaluate(p, env, truth, memo) for p in expr[1:])
    memo[key] = value
    return value
