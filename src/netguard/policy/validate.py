"""`netguard policy validate`: grammar, size, Sids, actions, and the lockout guard."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from netguard.iam.actions import action_matches, resource_matches
from netguard.iam.conditions import RequestContext, evaluate_condition, parse_operator
from netguard.iam.reference_data import iam_reference
from netguard.policy.bounded import Refused, loads_document, read_file
from netguard.policy.orgconfig import DEFAULT_SIZE_LIMIT, OrgConfig
from netguard.policy.render import minify
from netguard.resources import load_schema

MAX_DEPTH = 32  # a policy nests six levels: document, Statement, statement, Condition, operator, key
MAX_FILE_BYTES = 1024 * 1024  # an SCP holds at most 10,240 characters; any policy file is far smaller

_EXEMPTING_OPERATORS = ("ArnNotLike", "ArnNotEquals", "StringNotLike", "StringNotEquals")

# The catalogue control each kind of problem falls under (checks/catalog.yaml), so `netguard scan` can
# report an SCP file's problems as findings.
REFUSED = "NG-SCP-001"  # AWS Organizations refuses the document: grammar, Principal, duplicate Sid, not JSON
OVERSIZE = "NG-SCP-002"  # over the size quota
UNKNOWN_ACTION = "NG-SCP-003"  # an action or service prefix IAM does not know
LOCKOUT = "NG-SCP-004"  # netguard's lockout guard: a Deny that can stop the deploy role or break-glass managing SCPs


@dataclass(frozen=True)
class Problem:
    """One problem with an SCP: its message, the control it falls under, and the statement it is in."""

    control: str
    message: str
    statement: int | None = None  # index in Statement; None when it concerns the document as a whole
    sid: str | None = None  # that statement's Sid, when it has one

    def __str__(self) -> str:
        return self.message


@cache
def known_actions() -> dict[str, frozenset[str]]:
    """IAM actions by service prefix (lower case), from the IAM reference data cfn-lint ships."""
    data = iam_reference()
    return {prefix.lower(): frozenset(a.lower() for a in spec.get("Actions", {})) for prefix, spec in data.items()}


def unknown_action(action: str) -> str | None:
    """Why an action (or pattern) names nothing IAM knows, or None when it is fine."""
    if action == "*":
        return None
    service, sep, name = action.partition(":")
    if not sep:
        return f"{action!r} is not service:action"
    actions = known_actions().get(service.lower())
    if actions is None:
        return f"unknown service prefix {service!r} in {action!r}"
    if "*" in name or "?" in name:
        if any(action_matches(f"{service}:{name}", f"{service}:{known}") for known in actions):
            return None
        return f"{action!r} matches no {service} action"
    return None if name.lower() in actions else f"unknown action {action!r}"


# --- what IAM Access Analyzer refuses inside a statement: Resource ARNs, condition keys and values ----------
# The checks and their names follow the IAM User Guide, "IAM policy validation check reference"
# (access-analyzer-reference-policy-checks): Invalid ARN prefix, Missing ARN field, Invalid partition,
# Invalid ARN account, Invalid condition key format, Invalid global condition key, Invalid service,
# Invalid condition data type, Invalid variable for operator, Invalid condition multiple Boolean.

# Partitions: "ARNs - Partitions" in the AWS General Reference; the aws-iso* family has several members.
_PARTITIONS = frozenset({"aws", "aws-cn", "aws-us-gov", "aws-eusc"})
_VARIABLE = re.compile(r"\$\{[^}]*\}")

# IAM User Guide, "AWS global condition context keys": every documented aws: key (and the cross-service
# session keys listed with them). Keys compare case-insensitively; the three tag keys take a tag key after
# the slash.
GLOBAL_CONDITION_KEYS = frozenset(
    key.lower()
    for key in (
        # properties of the principal
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalOrgID",
        "aws:PrincipalIsAWSService",
        "aws:PrincipalServiceName",
        "aws:PrincipalServiceNamesList",
        "aws:PrincipalType",
        "aws:userid",
        "aws:username",
        # properties of a role session
        "aws:AssumedRoot",
        "aws:FederatedProvider",
        "aws:TokenIssueTime",
        "aws:SignInSessionArn",
        "aws:MultiFactorAuthAge",
        "aws:MultiFactorAuthPresent",
        "aws:ChatbotSourceArn",
        "aws:Ec2InstanceSourceVpc",
        "aws:Ec2InstanceSourcePrivateIPv4",
        "aws:SourceIdentity",
        "ec2:RoleDelivery",
        "ec2:SourceInstanceArn",
        "glue:RoleAssumedBy",
        "glue:CredentialIssuingService",
        "codebuild:BuildArn",
        "codebuild:ProjectArn",
        "lambda:SourceFunctionArn",
        "ssm:SourceInstanceArn",
        "identitystore:UserId",
        # properties of the network
        "aws:SourceIp",
        "aws:SourceVpc",
        "aws:SourceVpcArn",
        "aws:SourceVpce",
        "aws:VpceAccount",
        "aws:VpceOrgID",
        "aws:VpceOrgPaths",
        "aws:VpcSourceIp",
        # properties of the resource
        "aws:ResourceAccount",
        "aws:ResourceOrgID",
        "aws:ResourceOrgPaths",
        # properties of the request
        "aws:CalledVia",
        "aws:CalledViaFirst",
        "aws:CalledViaLast",
        "aws:CalledViaAWSMCP",
        "aws:ViaAWSService",
        "aws:ViaAWSMCPService",
        "aws:CurrentTime",
        "aws:EpochTime",
        "aws:referer",
        "aws:RequestedRegion",
        "aws:TagKeys",
        "aws:SecureTransport",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:UserAgent",
        "aws:IsMcpServiceAction",
    )
)
_GLOBAL_TAG_KEYS = ("aws:principaltag/", "aws:resourcetag/", "aws:requesttag/")

_DATE_OPERATORS = frozenset(
    {"DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals"}
)
_NUMERIC_OPERATORS = frozenset(
    {
        "NumericEquals",
        "NumericNotEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
    }
)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_EPOCH = re.compile(r"\d+")


def _strings(value: Any) -> list[str]:
    """A Resource/Action-style element's string values (a lone string or a list; anything else is a schema error)."""
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, str)]


def _arn_fields(value: str) -> list[str]:
    """The colon-separated fields of an ARN, a colon inside a ${...} policy variable not counting."""
    fields, depth, current = [], 0, []
    for index, char in enumerate(value):
        if char == "$" and value[index + 1 : index + 2] == "{":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
        if char == ":" and not depth and len(fields) < 5:
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    return [*fields, "".join(current)]


def _is_pattern(text: str) -> bool:
    return "*" in text or "?" in text or _VARIABLE.search(text) is not None


def resource_problem(value: str) -> str | None:
    """Why a Resource or NotResource value is no resource Access Analyzer accepts, or None when it is fine:
    `*`, or arn:partition:service:region:account:resource with a known partition and an account that is
    empty, 12 digits, `aws` (AWS-owned resources such as arn:aws:iam::aws:policy/...) or a pattern.

    An ARN of fewer than six fields is refused even when it ends in `*` (`arn:aws:ec2:*`): Access Analyzer
    reports "Missing ARN field" (Resource ARNs must include at least 6 fields), although IAM, evaluating a
    policy that holds one, lets that `*` match across colons ("IAM JSON policy elements: Resource"; see
    netguard.iam.actions.resource_matches). The message then names the six-field form to write instead,
    unless the value holds a policy variable (variables belong in the resource part only)."""
    if value == "*":
        return None
    if not value.startswith("arn:"):
        return f"Resource {value!r} is neither * nor an ARN (arn:partition:service:region:account:resource)"
    fields = _arn_fields(value)
    if len(fields) < 6:
        message = (
            f"Resource {value!r} has {len(fields)} of the 6 ARN fields (arn:partition:service:region:account:resource)"
        )
        if fields[-1].endswith("*"):
            message += (
                "; IAM would match its trailing * across colons, but Access Analyzer refuses it (Missing ARN field)"
            )
            if not _VARIABLE.search(value):  # variables belong in the resource part only
                message += f": write {value + ':*' * (6 - len(fields))!r}"
        return message
    partition, account = fields[1], fields[4]
    if not (partition in _PARTITIONS or partition.startswith("aws-iso") or _is_pattern(partition)):
        return f"Resource {value!r}: unknown partition {partition!r}"
    if not (account in ("", "aws") or re.fullmatch(r"\d{12}", account) or _is_pattern(account)):
        return f"Resource {value!r}: the account {account!r} is not a 12-digit account ID"
    return None


def condition_key_problem(key: str) -> str | None:
    """Why a condition key names nothing IAM knows, or None when it is fine. Global (aws:) keys are
    checked against the documented list; for a service's own keys only the service prefix is checked."""
    service, sep, name = key.partition(":")
    if not sep or not service or not name:
        return f"condition key {key!r} is not service:key (e.g. aws:SourceIp)"
    lowered = key.lower()
    if service.lower() == "aws":
        if lowered in GLOBAL_CONDITION_KEYS:
            return None
        if any(lowered.startswith(prefix) and len(lowered) > len(prefix) for prefix in _GLOBAL_TAG_KEYS):
            return None
        return f"unknown global condition key {key!r}"
    if lowered in GLOBAL_CONDITION_KEYS or service.lower() in known_actions():
        return None
    return f"condition key {key!r}: unknown service prefix {service!r}"


def _is_date(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    if not isinstance(value, str):
        return False
    if _EPOCH.fullmatch(value):
        return True  # epoch seconds
    try:
        datetime.fromisoformat(value)  # ISO 8601: a date, or a date and time with an optional offset or Z
    except ValueError:
        return False
    return True


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) or (isinstance(value, str) and _NUMBER.fullmatch(value) is not None)


def _is_ip(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _boolean(value: Any) -> str | None:
    """ "true" or "false" for a Bool or Null value (a JSON boolean or the string, in any case), else None."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower()
    return None


def condition_value_problem(operator: str, value: Any) -> str | None:
    """Why one value cannot be compared by a condition operator (base name, without ForAnyValue:,
    ForAllValues: or IfExists), or None. Policy variables are only for String and Arn operators, so a
    ${...} value under these operators is refused too (Invalid variable for operator)."""
    if operator in _DATE_OPERATORS and not _is_date(value):
        return f"{value!r} is not a date (ISO 8601, e.g. 2026-01-31T00:00:00Z, or epoch seconds)"
    if operator in _NUMERIC_OPERATORS and not _is_number(value):
        return f"{value!r} is not a number"
    if operator in ("IpAddress", "NotIpAddress") and not _is_ip(value):
        return f"{value!r} is not an IP address or CIDR block"
    if operator in ("Bool", "Null") and _boolean(value) is None:
        return f"{value!r} is not true or false"
    return None


def _condition_problems(condition: Mapping[str, Any]) -> Iterable[str]:
    for operator, keys in condition.items():
        if not isinstance(keys, Mapping):
            continue  # a schema error
        parsed = parse_operator(operator)
        for key, values in keys.items():
            reason = condition_key_problem(key)
            if reason:
                yield reason
            if parsed is None:
                continue  # an unknown operator is a schema error; its values cannot be judged
            qualifier, base, _if_exists = parsed
            items = values if isinstance(values, list) else [values]
            for value in items:
                reason = condition_value_problem(base, value)
                if reason:
                    yield f"{operator} on {key}: {reason}"
            # One key cannot be both: "Invalid condition multiple Boolean" (only for a single-valued test).
            if base == "Bool" and qualifier is None and {_boolean(v) for v in items} >= {"true", "false"}:
                yield f"{operator} on {key} has both true and false: use one Boolean value"


def element_problems(statement: Mapping[str, Any]) -> list[str]:
    """What Access Analyzer refuses in one statement's Resource, NotResource and Condition."""
    reasons = []
    for element in ("Resource", "NotResource"):
        for value in _strings(statement.get(element)) if element in statement else []:
            reason = resource_problem(value)
            if reason:
                reasons.append(reason if element == "Resource" else "Not" + reason)
    condition = statement.get("Condition")
    if isinstance(condition, Mapping):
        reasons.extend(_condition_problems(condition))
    return reasons


def _statements(document: Mapping[str, Any]) -> list[Any]:
    raw = document.get("Statement")
    return raw if isinstance(raw, list) else [raw] if raw is not None else []


def _sid(statement: Any) -> str | None:
    sid = statement.get("Sid") if isinstance(statement, Mapping) else None
    return sid if isinstance(sid, str) and sid else None


def _at(control: str, message: str, statements: list[Any], index: int | None) -> Problem:
    """A problem placed on a statement (with its Sid), or on the document when index is None."""
    return Problem(control, message, index, _sid(statements[index]) if index is not None else None)


def _statement_index(path: list[Any], document: Mapping[str, Any]) -> int | None:
    """The statement a schema error's path is in: Statement/2/... is statement 2, a lone Statement object 0."""
    if len(path) < 2 or path[0] != "Statement":
        return None
    if isinstance(document.get("Statement"), list):
        return path[1] if isinstance(path[1], int) else None
    return 0


def _sample_arn(pattern: str) -> str:
    return pattern.replace("*", "x1").replace("?", "x")


# --- the lockout guard ------------------------------------------------------------------------------------
# A Deny locks out the deploy role or break-glass when it can stop them managing SCPs: the Organizations
# calls below, IAM actions on their own roles, or assuming those roles. Any other Deny is left alone.

# What managing SCPs takes: creating, changing, deleting, attaching, detaching, reading and listing
# policies and enabling the policy type, and the rest of what `netguard org apply` calls
# (netguard.org.rollout: it lists roots, OUs and a target's policies, and tags the policies it owns).
SCP_MANAGEMENT_ACTIONS = (
    "organizations:CreatePolicy",
    "organizations:UpdatePolicy",
    "organizations:DeletePolicy",
    "organizations:AttachPolicy",
    "organizations:DetachPolicy",
    "organizations:DescribePolicy",
    "organizations:ListPolicies",
    "organizations:ListTargetsForPolicy",
    "organizations:EnablePolicyType",
    "organizations:ListPoliciesForTarget",
    "organizations:ListRoots",
    "organizations:ListOrganizationalUnitsForParent",
    "organizations:ListTagsForResource",
    "organizations:TagResource",
)
# The ARNs of the Organizations resources managing SCPs touches (Service Authorization Reference, "AWS
# Organizations", resource types): an SCP is policy/o-<org>/service_control_policy/p-<id>, or
# policy/service_control_policy/p-FullAWSAccess for AWS's own. Each `*` here is one identifier, which holds
# no `/`. An action with no resource type is authorized against `*` only.
_ORGANIZATIONS_RESOURCES = {
    "policy": (
        "arn:*:organizations::*:policy/o-*/service_control_policy/p-*",
        "arn:*:organizations::aws:policy/service_control_policy/p-*",
    ),
    "root": ("arn:*:organizations::*:root/o-*/r-*",),
    "organizationalunit": ("arn:*:organizations::*:ou/o-*/ou-*",),
    "account": ("arn:*:organizations::*:account/o-*/*",),
}
# IAM actions that decide whether a role exists, who can assume it and what it may do: a Deny on them for the
# deploy role's or break-glass's own role can take away their access. Reading or tagging a role cannot.
ROLE_ACTIONS = (
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:UpdateRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
    "sts:AssumeRole",
)
# With no organization config, any IAM role may be the deploy role, and any role or user break-glass.
ANY_ROLE = "arn:*:iam::*:role/*"
ANY_PRINCIPALS = (ANY_ROLE, "arn:*:iam::*:user/*")


@cache
def _iam_resource_types() -> dict[str, tuple[str, ...]]:
    """Resource types by action (service:action, lower case), from the IAM reference data cfn-lint ships."""
    return {
        f"{prefix.lower()}:{action.lower()}": tuple(spec.get("Resources", ()))
        for prefix, service in iam_reference().items()
        for action, spec in service.get("Actions", {}).items()
    }


def _globs_overlap(a: str, b: str, ids: bool = False) -> bool:
    """Whether some text matches both IAM wildcard patterns (`*` any run, `?` one character); with ids, a `*`
    in b stands for an identifier and takes in no `/`."""

    @cache
    def step(i: int, j: int) -> bool:
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":  # a's run ends here, or takes in b's next character or wildcard
            return step(i + 1, j) or (j < len(b) and step(i, j + 1))
        if j < len(b) and b[j] == "*":
            return step(i, j + 1) or (i < len(a) and not (ids and a[i] == "/") and step(i + 1, j))
        if i == len(a) or j == len(b):
            return False
        return (a[i] == b[j] or "?" in (a[i], b[j])) and step(i + 1, j + 1)

    return step(0, 0)


def _arns_overlap(pattern: str, target: str, ids: bool = False) -> bool:
    """Whether a Resource pattern can match an ARN that the target pattern (six fields) also matches: field by
    field as IAM compares them, a pattern of fewer fields ending in a wildcard spanning the rest (see
    netguard.iam.actions.resource_matches). A policy variable can be anything."""
    if pattern == "*":
        return True
    pattern = _VARIABLE.sub("*", pattern)
    fields, wanted = pattern.split(":", 5), target.split(":", 5)
    if len(wanted) < 6:  # not an ARN pattern: compare the whole text
        return _globs_overlap(pattern, target, ids)
    if len(fields) < 6:
        if "*" not in fields[-1]:
            return False
        head = len(fields) - 1
        pairs = [*zip(fields[:head], wanted[:head], strict=True), (fields[-1], ":".join(wanted[head:]))]
    else:
        pairs = list(zip(fields, wanted, strict=True))
    return all(_globs_overlap(a, b, ids) for a, b in pairs)


def _reaches(statement: Mapping[str, Any], target: str, ids: bool = False) -> bool:
    """Whether the statement's Resource or NotResource can take in a resource of the target pattern (`*`: an
    action authorized against `*`). NotResource leaves it out only when a value names the target's sample."""
    if "Resource" in statement:
        values = _strings(statement["Resource"])
        return "*" in values if target == "*" else any(_arns_overlap(value, target, ids) for value in values)
    if "NotResource" in statement:
        values = _strings(statement["NotResource"])
        sample = _sample_arn(target.replace("arn:*:", "arn:aws:", 1))
        return not any(value == "*" or (target != "*" and resource_matches(value, sample)) for value in values)
    return True  # no resource element: a schema error, and no reason to think it spares anything


def _denies(statement: Mapping[str, Any], action: str) -> bool:
    """Whether the statement's Action (or the complement of its NotAction) covers the action."""
    if "Action" in statement:
        return any(action_matches(pattern, action) for pattern in _strings(statement["Action"]))
    if "NotAction" in statement:
        return not any(action_matches(pattern, action) for pattern in _strings(statement["NotAction"]))
    return False


def lockout_reach(statement: Mapping[str, Any], roles: Iterable[str]) -> list[str]:
    """The SCP-management actions a Deny statement covers, on resources it can reach: the Organizations
    calls, and ROLE_ACTIONS on the given role ARN patterns. Its Condition is not read."""
    reached = []
    types = _iam_resource_types()
    for action in SCP_MANAGEMENT_ACTIONS:
        kinds = types.get(action.lower(), tuple(_ORGANIZATIONS_RESOURCES))  # unknown: any of them
        targets = [t for k in kinds for t in _ORGANIZATIONS_RESOURCES.get(k, ())] or ["*"]
        if _denies(statement, action) and any(_reaches(statement, t, ids=True) for t in targets):
            reached.append(action)
    roles = list(roles)
    for action in ROLE_ACTIONS:
        if _denies(statement, action) and any(_reaches(statement, role) for role in roles):
            reached.append(action)
    return reached


def _summary(actions: list[str]) -> str:
    shown = ", ".join(actions[:3])
    return shown + (f" and {len(actions) - 3} more" if len(actions) > 3 else "")


def _spares_principals(condition: Mapping[str, Any] | None) -> bool:
    """With no organization config: whether a Condition has an aws:PrincipalArn exemption (a negated ARN
    or string operator), or limits the Deny to principals that are no IAM role or user (e.g. only the root
    user: ArnLike arn:aws:iam::*:root), so that it cannot apply to the deploy role or break-glass."""
    for operator, keys in (condition or {}).items():
        parsed = parse_operator(operator)
        if parsed is None or parsed[0] is not None or not isinstance(keys, Mapping):
            continue
        base = parsed[1]
        for key, values in keys.items():
            if key.lower() != "aws:principalarn":
                continue
            if base in _EXEMPTING_OPERATORS:
                return True
            patterns = [str(v) for v in (values if isinstance(values, list) else [values])]
            if base in ("ArnLike", "ArnEquals", "StringLike", "StringEquals") and not any(
                _arns_overlap(pattern, principal) for pattern in patterns for principal in ANY_PRINCIPALS
            ):
                return True
    return False


def _lockout_problems(statements: list[Any], org: OrgConfig | None) -> list[Problem]:
    """Deny statements that can stop the deploy role or break-glass managing SCPs. With an organization
    config, the Condition is evaluated with aws:PrincipalArn set to each of them: definitely false spares
    it, true or unknown does not. Without one, any aws:PrincipalArn exemption is taken to spare them."""
    problems = []
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Deny":
            continue
        label = f"Deny statement {statement.get('Sid') or index}"
        condition = statement.get("Condition") if isinstance(statement.get("Condition"), Mapping) else None
        if org is None:
            reached = [] if _spares_principals(condition) else lockout_reach(statement, [ANY_ROLE])
            if reached:
                message = (
                    f"{label} denies what managing SCPs takes ({_summary(reached)}) with no aws:PrincipalArn "
                    "exemption for the deploy role or break-glass principals (lockout guard)"
                )
                problems.append(_at(LOCKOUT, message, statements, index))
            continue
        for role, pattern in (("deploy role", org.deploy_role), ("break-glass", org.break_glass)):
            context = RequestContext.build({"aws:PrincipalArn": _sample_arn(pattern)})
            if evaluate_condition(condition, context).truth is False:
                continue
            reached = lockout_reach(statement, [org.deploy_role, org.break_glass])
            if reached:
                message = (
                    f"{label} can deny the {role} ({pattern}) what managing SCPs takes ({_summary(reached)}); "
                    "exempt it with ArnNotLike on aws:PrincipalArn (lockout guard)"
                )
                problems.append(_at(LOCKOUT, message, statements, index))
    return problems


def validate_document(
    text: str, *, size_limit: int = DEFAULT_SIZE_LIMIT, org: OrgConfig | None = None, lockout: bool = True
) -> list[str]:
    """Every problem with one SCP, as messages; an empty list means it is valid.

    lockout=False leaves out netguard's own lockout guard, keeping what AWS itself refuses.
    """
    return [p.message for p in document_problems(text, size_limit=size_limit, org=org, lockout=lockout)]


def document_problems(
    text: str, *, size_limit: int = DEFAULT_SIZE_LIMIT, org: OrgConfig | None = None, lockout: bool = True
) -> list[Problem]:
    """validate_document's problems with their control and statement, so a scan can report each as a
    finding on the statement it is about (in the order validate_document prints them)."""
    try:
        document = loads_document(text, MAX_DEPTH)
    except Refused as exc:
        if exc.position and exc.message.startswith("invalid JSON: "):
            line = exc.position.split(" column ")[0]
            return [Problem(REFUSED, f"invalid JSON at {line}: {exc.message.removeprefix('invalid JSON: ')}")]
        return [Problem(REFUSED, exc.message)]
    if not isinstance(document, dict):
        return [Problem(REFUSED, "a policy must be a JSON object")]
    problems: list[Problem] = []
    statements = _statements(document)
    for index, statement in enumerate(statements):
        if isinstance(statement, Mapping):
            for key in ("Principal", "NotPrincipal"):
                if key in statement:
                    message = f"statement {statement.get('Sid') or index}: SCPs cannot have {key}"
                    problems.append(_at(REFUSED, message, statements, index))
    validator = jsonschema.Draft202012Validator(load_schema("scp.schema.json"))
    for error in sorted(_leaf_errors(validator.iter_errors(document)), key=lambda e: list(map(str, e.absolute_path))):
        if error.validator == "additionalProperties" and "Principal" in str(error.message):
            continue  # reported above in plain words
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        index = _statement_index(list(error.absolute_path), document)
        problems.append(_at(REFUSED, f"{where}: {_schema_message(error)}", statements, index))
    size = len(minify(document))
    if size > size_limit:
        problems.append(Problem(OVERSIZE, f"{size} characters when minified, over the SCP limit of {size_limit}"))
    sids = [_sid(s) for s in statements]  # a Sid that is not a string is a schema error above
    duplicates = sorted({sid for sid in sids if sid and sids.count(sid) > 1})
    if duplicates:
        first = next(i for i, sid in enumerate(sids) if sid in duplicates)
        problems.append(Problem(REFUSED, f"duplicate Sid: {', '.join(duplicates)}", first))
    for index, statement in enumerate(statements):
        if not isinstance(statement, Mapping):
            continue
        for key in ("Action", "NotAction"):
            values = statement.get(key)
            for action in values if isinstance(values, list) else [values] if values is not None else []:
                reason = unknown_action(action) if isinstance(action, str) else None
                if reason:
                    problems.append(_at(UNKNOWN_ACTION, reason, statements, index))
        for reason in element_problems(statement):
            problems.append(_at(REFUSED, f"statement {_sid(statement) or index}: {reason}", statements, index))
    if lockout:
        problems.extend(_lockout_problems(statements, org))
    return problems


def validate_file(path: Path, *, size_limit: int = DEFAULT_SIZE_LIMIT, org: OrgConfig | None = None) -> list[str]:
    """validate_document on a file, read only if it is a regular file of at most MAX_FILE_BYTES."""
    try:
        raw = read_file(path, MAX_FILE_BYTES, "policy files are at most 1 MiB")
    except Refused as exc:
        return [exc.message]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [f"not valid UTF-8 (byte {exc.start})"]
    return validate_document(text, size_limit=size_limit, org=org)


def _leaf_errors(errors: Any) -> list[jsonschema.ValidationError]:
    """Descend into oneOf failures to the branch whose type fits, so messages name the real problem."""
    leaves = []
    for error in errors:
        if error.validator == "oneOf" and error.context:
            branches: dict[Any, list[jsonschema.ValidationError]] = {}
            for sub in error.context:
                branches.setdefault(sub.relative_schema_path[0], []).append(sub)
            fitting = [
                subs
                for subs in branches.values()
                if not any(s.validator == "type" and not s.relative_path for s in subs)
            ]
            if len(fitting) == 1 and fitting[0]:
                leaves.extend(_leaf_errors(fitting[0]))
                continue
        leaves.append(error)
    return leaves


def grammar_problems(document: Any) -> list[str]:
    """Where a document breaks the SCP grammar (scp.schema.json), each as "path: reason": what the
    evaluator needs to hold before it can read the policy at all."""
    validator = jsonschema.Draft202012Validator(load_schema("scp.schema.json"))
    errors = sorted(_leaf_errors(validator.iter_errors(document)), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(top level)'}: {_schema_message(e)}" for e in errors]


def _schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "pattern" and list(error.absolute_path)[-1:] == ["Condition"]:
        return f"unknown condition operator {error.instance!r}"
    if error.validator == "oneOf" and list(error.absolute_path)[:1] == ["Statement"] and len(error.absolute_path) == 1:
        return (
            "Statement must be a statement object or a non-empty list of them, each with exactly one of"
            " Action/NotAction and one of Resource/NotResource"
        )
    if error.validator == "oneOf" and all("required" in s for s in error.validator_value):
        choices = sorted({r for s in error.validator_value for r in s["required"]})
        return f"must have exactly one of {', '.join(choices)}"
    return error.message
