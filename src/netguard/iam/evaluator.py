"""The policy evaluator: a pure function of (policies, request) that follows AWS's documented logic.

For service control policies: an explicit Deny in any policy wins; otherwise every level from the
root to the account needs a statement that allows the request. A statement whose applicability
depends on a key the request cannot supply makes the answer Indeterminate, never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from netguard.iam.actions import action_matches, actions_regex, resource_matcher, resource_matches
from netguard.iam.conditions import RequestContext, Truth, any_of, compile_condition, substitute

ALLOW, DENY, INDETERMINATE = "Allow", "Deny", "Indeterminate"
FULL_AWS_ACCESS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass(frozen=True)
class Request:
    action: str
    context: RequestContext
    resources: tuple[str, ...] | None = None  # None when the record does not say which resource


@dataclass(frozen=True)
class Policy:
    name: str
    document: Mapping[str, Any]

    def statements(self) -> list[Mapping[str, Any]]:
        raw = self.document.get("Statement", [])
        items = raw if isinstance(raw, list) else [raw]
        return [s for s in items if isinstance(s, Mapping)]

    @cached_property
    def compiled(self) -> tuple[CompiledStatement, ...]:
        """The statements compiled once per policy (a policy's document is not changed once evaluated)."""
        return tuple(CompiledStatement(statement) for statement in self.statements())

    def for_action(self, action: str) -> tuple[CompiledStatement, ...]:
        """The compiled statements whose Action (or NotAction) covers action, remembered per action:
        a trail repeats a few hundred actions millions of times."""
        by_action = self.__dict__.get("_by_action")
        if by_action is None:
            by_action = self.__dict__["_by_action"] = {}
        found = by_action.get(action)
        if found is None:
            found = tuple(s for s in self.compiled if s.matches_action(action))
            if len(by_action) < 10_000:
                by_action[action] = found
        return found


@dataclass
class Decision:
    decision: str
    policy: str | None = None
    sid: str | None = None
    reason: str = ""
    missing: list[str] = field(default_factory=list)
    denied_by: list[tuple[str, str | None]] = field(default_factory=list)  # every (policy, Sid) that denies


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _matches_action(statement: Mapping[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not any(action_matches(str(p), action) for p in _as_list(statement["NotAction"]))
    return any(action_matches(str(p), action) for p in _as_list(statement.get("Action")))


def _matches_resource(statement: Mapping[str, Any], request: Request, missing: list[str]) -> Truth:
    """Resource (or NotResource) against the request's resource: the patterns OR together, so one that
    matches settles it even where another cannot be resolved."""
    negated = "NotResource" in statement
    hits: list[Truth] = []
    for pattern in (str(p) for p in _as_list(statement.get("NotResource" if negated else "Resource"))):
        if pattern == "*":
            hits.append(True)  # every resource, named or not
            continue
        resolved = substitute(pattern, request.context)
        if resolved.unknown:
            missing.append(resolved.unknown)
            hits.append(None)
        elif resolved.no_value:
            hits.append(False)  # a variable with no value matches no resource ("Policy variables with no value")
        elif request.resources is None:
            missing.append("resource ARN")
            hits.append(None)
        else:
            hits.append(any(resource_matches(resolved.text, arn) for arn in request.resources))
    hit = any_of(hits)
    return hit if hit is None or not negated else not hit


def statement_applies(statement: Mapping[str, Any], request: Request) -> tuple[Truth, list[str]]:
    """Whether a statement matches the request: action, then resource, then condition."""
    compiled = CompiledStatement(statement)
    if not compiled.matches_action(request.action):
        return False, []
    return compiled.applies(request)


class CompiledStatement:
    """One statement read once: its Action as one regex, its Resource patterns as matchers (those with
    a policy variable resolved per request), its Condition as a closure. applies gives exactly what
    the element-by-element reading gives (_matches_action, _matches_resource, evaluate_condition)."""

    __slots__ = ("_action", "condition", "effect", "negated_action", "negated_resource", "resources", "sid")

    def __init__(self, statement: Mapping[str, Any]) -> None:
        self.effect = statement.get("Effect")
        self.sid = statement.get("Sid")
        self.negated_action = "NotAction" in statement
        patterns = _as_list(statement["NotAction"] if self.negated_action else statement.get("Action"))
        self._action = actions_regex(str(p) for p in patterns)
        self.negated_resource = "NotResource" in statement
        raw = _as_list(statement.get("NotResource" if self.negated_resource else "Resource"))
        # per pattern: (pattern, matcher or None when it holds a variable); "*" is (None, None)
        self.resources: tuple[tuple[str | None, Any], ...] = tuple(
            (None, None) if text == "*" else (text, None if "${" in text else resource_matcher(text))
            for text in (str(p) for p in raw)
        )
        self.condition = compile_condition(statement.get("Condition"))

    def matches_action(self, action: str) -> bool:
        hit = self._action is not None and self._action.fullmatch(action) is not None
        return hit != self.negated_action

    def _resource(self, request: Request, missing: list[str]) -> Truth:
        result: Truth = False
        for text, matcher in self.resources:
            if text is None:
                hit: Truth = True  # every resource, named or not
            elif matcher is not None and request.resources is not None:
                hit = any(matcher(arn) for arn in request.resources)
            else:
                hit = self._resolved(text, request, missing)
            if hit:  # no early exit: an unresolvable pattern after it still names its key, as before
                result = True
            elif hit is None and result is not True:
                result = None
        return result if result is None or not self.negated_resource else not result

    @staticmethod
    def _resolved(text: str, request: Request, missing: list[str]) -> Truth:
        resolved = substitute(text, request.context)
        if resolved.unknown:
            missing.append(resolved.unknown)
            return None
        if resolved.no_value:
            return False  # a variable with no value matches no resource ("Policy variables with no value")
        if request.resources is None:
            missing.append("resource ARN")
            return None
        return any(resource_matches(resolved.text, arn) for arn in request.resources)

    def applies(self, request: Request) -> tuple[Truth, list[str]]:
        """statement_applies for a request whose action this statement's Action covers."""
        missing: list[str] = []
        resource = self._resource(request, missing)
        if resource is False:
            return False, []
        condition = self.condition(request.context)
        if condition.truth is False:
            return False, []
        if resource is None or condition.truth is None:
            return None, sorted(set(missing + condition.missing))
        return True, []


def evaluate_scps(levels: Sequence[Iterable[Policy]], request: Request) -> Decision:
    """Decision of the SCPs attached at each level (root, OUs, account) for one request.

    A request on several resources (CreateVpcPeeringConnection: the peering, the requester's VPC, the
    accepter's VPC) is authorized once per (action, resource) pair, as the Service Authorization
    Reference lists an action's resource types and IAM's simulator evaluates them: it is denied if any
    resource is denied, and allowed only if every resource is allowed, at every level."""
    return evaluate_plan(ActionPlan.of(levels, request.action), request)


@dataclass(frozen=True)
class ActionPlan:
    """The statements that can decide one action: every Deny covering it in evaluation order, with its
    policy's name, and per level the Allows covering it. A caller deciding many requests of one action
    (replay) makes the plan once and decides each request with evaluate_plan."""

    denies: tuple[tuple[str, CompiledStatement], ...]
    allows: tuple[tuple[CompiledStatement, ...], ...]  # one entry per level, root first

    @classmethod
    def of(cls, levels: Sequence[Iterable[Policy]], action: str) -> ActionPlan:
        denies: list[tuple[str, CompiledStatement]] = []
        allows: list[tuple[CompiledStatement, ...]] = []
        for level in levels:
            allowing: list[CompiledStatement] = []
            for policy in level:
                for statement in policy.for_action(action):
                    if statement.effect == "Deny":
                        denies.append((policy.name, statement))
                    elif statement.effect == "Allow":
                        allowing.append(statement)
            allows.append(tuple(allowing))
        return cls(tuple(denies), tuple(allows))


def evaluate_plan(plan: ActionPlan, request: Request) -> Decision:
    """evaluate_scps for a request of the plan's action."""
    if request.resources is not None and len(request.resources) > 1:
        return _combine([_evaluate(plan, replace(request, resources=(arn,))) for arn in request.resources])
    return _evaluate(plan, request)


def _combine(decisions: list[Decision]) -> Decision:
    """The decision on a request from its per-resource decisions: a definite Deny (explicit first)
    settles it; otherwise any Indeterminate leaves it open; otherwise every resource is allowed."""
    explicit = [d for d in decisions if d.decision == DENY and d.denied_by]
    if explicit:
        denied_by = list(dict.fromkeys(pair for d in explicit for pair in d.denied_by))
        return replace(explicit[0], denied_by=denied_by)
    implicit = [d for d in decisions if d.decision == DENY]
    if implicit:
        return implicit[0]
    undecided = [d for d in decisions if d.decision == INDETERMINATE]
    if undecided:
        return replace(undecided[0], missing=sorted({key for d in undecided for key in d.missing}))
    return decisions[0]


def _evaluate(plan: ActionPlan, request: Request) -> Decision:
    possible_deny: list[tuple[str, CompiledStatement, list[str]]] = []
    denied_by: list[tuple[str, str | None]] = []
    for name, statement in plan.denies:
        applies, missing = statement.applies(request)
        if applies:
            denied_by.append((name, statement.sid))
        elif applies is None:
            possible_deny.append((name, statement, missing))
    if denied_by:
        name, sid = denied_by[0]
        return Decision(DENY, name, sid, "explicit deny", denied_by=list(dict.fromkeys(denied_by)))
    unknown_allow: list[str] = []
    for depth, statements in enumerate(plan.allows):
        allowed = False
        undecided: list[str] | None = None
        for statement in statements:
            applies, missing = statement.applies(request)
            if applies:
                allowed = True
                break
            if applies is None:
                undecided = (undecided or []) + missing
        if allowed:
            continue
        if undecided is not None:
            unknown_allow.extend(undecided)
            continue
        return Decision(DENY, None, None, f"implicit deny: no SCP at level {depth} allows {request.action}")
    if possible_deny:
        name, statement, missing = possible_deny[0]
        keys = sorted({key for _, _, m in possible_deny for key in m} | set(unknown_allow))
        return Decision(
            INDETERMINATE,
            name,
            statement.sid,
            "a Deny applies or not depending on keys the record cannot supply",
            keys,
        )
    if unknown_allow:
        return Decision(
            INDETERMINATE, None, None, "an Allow depends on keys the record cannot supply", sorted(set(unknown_allow))
        )
    return Decision(ALLOW, reason="allowed at every level")
