"""The policy evaluator: a pure function of (policies, request) that follows AWS's documented logic.

For service control policies: an explicit Deny in any policy wins; otherwise every level from the
root to the account needs a statement that allows the request. A statement whose applicability
depends on a key the request cannot supply makes the answer Indeterminate, never a guess.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from netguard.iam.actions import action_matches, resource_matches
from netguard.iam.conditions import RequestContext, Truth, any_of, evaluate_condition, substitute

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
    if not _matches_action(statement, request.action):
        return False, []
    missing: list[str] = []
    resource = _matches_resource(statement, request, missing)
    if resource is False:
        return False, []
    condition = evaluate_condition(statement.get("Condition"), request.context)
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
    levels = [list(level) for level in levels]
    if request.resources is not None and len(request.resources) > 1:
        return _combine([_evaluate(levels, replace(request, resources=(arn,))) for arn in request.resources])
    return _evaluate(levels, request)


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


def _evaluate(levels: list[list[Policy]], request: Request) -> Decision:
    possible_deny: list[tuple[Policy, Mapping[str, Any], list[str]]] = []
    denied_by: list[tuple[str, str | None]] = []
    for level in levels:
        for policy in level:
            for statement in policy.statements():
                if statement.get("Effect") != "Deny":
                    continue
                applies, missing = statement_applies(statement, request)
                if applies:
                    denied_by.append((policy.name, statement.get("Sid")))
                elif applies is None:
                    possible_deny.append((policy, statement, missing))
    if denied_by:
        name, sid = denied_by[0]
        return Decision(DENY, name, sid, "explicit deny", denied_by=list(dict.fromkeys(denied_by)))
    unknown_allow: list[str] = []
    for depth, level in enumerate(levels):
        verdicts = [
            statement_applies(statement, request)
            for policy in level
            for statement in policy.statements()
            if statement.get("Effect") == "Allow"
        ]
        if any(applies for applies, _ in verdicts):
            continue
        if any(applies is None for applies, _ in verdicts):
            unknown_allow.extend(key for applies, missing in verdicts if applies is None for key in missing)
            continue
        return Decision(DENY, None, None, f"implicit deny: no SCP at level {depth} allows {request.action}")
    if possible_deny:
        policy, statement, missing = possible_deny[0]
        keys = sorted({key for _, _, m in possible_deny for key in m} | set(unknown_allow))
        return Decision(
            INDETERMINATE,
            policy.name,
            statement.get("Sid"),
            "a Deny applies or not depending on keys the record cannot supply",
            keys,
        )
    if unknown_allow:
        return Decision(
            INDETERMINATE, None, None, "an Allow depends on keys the record cannot supply", sorted(set(unknown_allow))
        )
    return Decision(ALLOW, reason="allowed at every level")
