"""Condition keys and resource ARNs a CloudTrail record carries, beyond the principal and the source address.

Each key is given a value when the record holds it, marked absent when the record shows the request
did not carry it, and left unknown otherwise, so a condition on it is Indeterminate rather than a
guess. The README's table "Request context from CloudTrail" lists every key, its field, and the rule
when the field is missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

from netguard.iam.reference_data import iam_reference

# AWS service hosts that make calls with the caller's credentials (forward access sessions) end so.
_SERVICE_HOST = re.compile(r"^[a-z0-9.-]+\.amazonaws\.com$")


_PLAIN = frozenset({str, int, float, bool, list, type(None)})


def is_mapping(value: Any) -> bool:
    """isinstance(value, Mapping) without the ABC machinery for the types JSON decodes to (a record is
    checked some fifty times): a dict is one, a string, number, list or null is not."""
    kind = value.__class__
    return kind is dict or (kind not in _PLAIN and isinstance(value, Mapping))


def _m(value: Any) -> Mapping[str, Any]:
    return value if is_mapping(value) else {}


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_time(text: str | None) -> datetime | None:
    """A CloudTrail timestamp: ISO 8601 (eventTime, creationDate), the compact form older
    sessionContext attributes use (20131102T010628Z), or CloudTrail Lake's 'YYYY-MM-DD HH:MM:SS'."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def time_keys(moment: datetime | None) -> dict[str, Any]:
    """aws:CurrentTime and aws:EpochTime: the time of the request is the record's eventTime."""
    if moment is None:
        return {}
    return {"aws:CurrentTime": _iso(moment), "aws:EpochTime": str(int(moment.timestamp()))}


def _temporary_credentials(identity: Mapping[str, Any]) -> bool | None:
    """Whether the call was signed with temporary credentials: True for role and federated sessions
    and ASIA access keys, False for AKIA (long-term) keys, None when the record cannot say."""
    kind = identity.get("type")
    if kind in ("AssumedRole", "FederatedUser", "IdentityCenterUser"):
        return True
    key = _s(identity.get("accessKeyId"))
    if key and key.startswith("ASIA"):
        return True
    if key and key.startswith("AKIA"):
        return False
    return None


@lru_cache(maxsize=4096)
def _issue_time(text: str | None) -> tuple[datetime | None, str | None]:
    """A session's creationDate, parsed and in aws:TokenIssueTime's form: one per session, not per record."""
    moment = parse_time(text)
    return moment, None if moment is None else _iso(moment)


# The keys each builder below can give a value or mark absent, in lower case: parse_record builds a
# group only when one of its keys is looked up, so a key missing here would read as unknown.
# tests/test_evaluate_golden.py checks every builder against its list.
SESSION_KEYS = frozenset(
    {
        "aws:tokenissuetime",
        "aws:multifactorauthpresent",
        "aws:multifactorauthage",
        "aws:sourceidentity",
        "aws:assumedroot",
    }
)
VIA_SERVICE_KEYS = frozenset({"aws:viaawsservice", "aws:calledvia", "aws:calledviafirst", "aws:calledvialast"})
TRANSPORT_KEYS = frozenset({"aws:securetransport"})


def session_keys(identity: Mapping[str, Any], event_time: datetime | None) -> tuple[dict[str, Any], list[str]]:
    """(values, keys known absent) for the session keys: aws:TokenIssueTime, aws:MultiFactorAuthPresent,
    aws:MultiFactorAuthAge, aws:SourceIdentity and aws:AssumedRoot.

    IAM User Guide, "AWS global condition context keys": TokenIssueTime and MultiFactorAuthPresent are
    present only for temporary credentials, never for long-term access keys; MultiFactorAuthAge only
    when MFA was used; AssumedRoot only for AssumeRoot sessions.
    """
    values: dict[str, Any] = {}
    absent: list[str] = []
    context = _m(identity.get("sessionContext"))
    attributes = _m(context.get("attributes"))
    temporary = _temporary_credentials(identity)
    if temporary is False:
        absent += ["aws:TokenIssueTime", "aws:MultiFactorAuthPresent", "aws:MultiFactorAuthAge"]
    issued, issued_text = _issue_time(_s(attributes.get("creationDate")))
    if temporary and issued is not None:
        values["aws:TokenIssueTime"] = issued_text
    mfa = attributes.get("mfaAuthenticated")
    if temporary is not False and mfa is not None:
        present = str(mfa).lower() == "true"
        values["aws:MultiFactorAuthPresent"] = "true" if present else "false"
        if not present:
            absent.append("aws:MultiFactorAuthAge")
        elif issued is not None and event_time is not None:
            values["aws:MultiFactorAuthAge"] = str(max(0, int((event_time - issued).total_seconds())))
    if context:  # a session's context names its source identity when one was set
        source_identity = _s(context.get("sourceIdentity"))
        if source_identity:
            values["aws:SourceIdentity"] = source_identity
        else:
            absent.append("aws:SourceIdentity")
    elif identity.get("type") == "IAMUser" and temporary is False:
        absent.append("aws:SourceIdentity")
    if identity.get("type") == "Root" and (
        str(context.get("assumedRoot", "")).lower() == "true" or (temporary and context)
    ):
        values["aws:AssumedRoot"] = "true"
    else:
        absent.append("aws:AssumedRoot")
    return values, absent


def via_service_keys(record: Mapping[str, Any], identity: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """aws:ViaAWSService, aws:CalledVia, aws:CalledViaFirst and aws:CalledViaLast.

    A service calling with the principal's credentials shows in userIdentity.invokedBy (and in
    sourceIPAddress as the service host). CloudTrail records one service, so CalledVia holds it when it
    is a service host; a call with no invoking service has none of the CalledVia keys.
    """
    invoked_by = _s(identity.get("invokedBy"))
    source = _s(record.get("sourceIPAddress"))
    service = invoked_by or (source if source and _SERVICE_HOST.match(source) else None)
    if service is None:
        return {"aws:ViaAWSService": "false"}, ["aws:CalledVia", "aws:CalledViaFirst", "aws:CalledViaLast"]
    values: dict[str, Any] = {"aws:ViaAWSService": "true"}
    if _SERVICE_HOST.match(service):
        values.update({"aws:CalledVia": [service], "aws:CalledViaFirst": service, "aws:CalledViaLast": service})
    return values, []


def transport_keys(record: Mapping[str, Any]) -> dict[str, Any]:
    """aws:SecureTransport is true when CloudTrail recorded the TLS session; older records lack tlsDetails."""
    tls = _m(record.get("tlsDetails"))
    return {"aws:SecureTransport": "true"} if _s(tls.get("tlsVersion")) else {}


# --- resource ARNs -----------------------------------------------------------------------------------

# EC2 id prefixes and the IAM resource type their ARN uses (arn:PARTITION:ec2:REGION:ACCOUNT:TYPE/ID).
_EC2_ID_TYPES = {
    "vpc": "vpc",
    "subnet": "subnet",
    "rtb": "route-table",
    "igw": "internet-gateway",
    "eigw": "egress-only-internet-gateway",
    "nat": "natgateway",
    "acl": "network-acl",
    "dopt": "dhcp-options",
    "pcx": "vpc-peering-connection",
    "eipalloc": "elastic-ip",
    "tgw": "transit-gateway",
    "tgw-attach": "transit-gateway-attachment",
    "tgw-rtb": "transit-gateway-route-table",
    "sg": "security-group",
    "eni": "network-interface",
    "i": "instance",
    "vol": "volume",
    "snap": "snapshot",
    "ami": "image",
    "fl": "vpc-flow-log",
    "vpce": "vpc-endpoint",
    "cgw": "customer-gateway",
    "vgw": "vpn-gateway",
    "vpn": "vpn-connection",
    "lt": "launch-template",
    "pl": "prefix-list",
    "ipam-pool": "ipam-pool",
    "ipv4pool-ec2": "ipv4pool-ec2",
    "ipv6pool-ec2": "ipv6pool-ec2",
}
_EC2_PREFIXES = sorted(_EC2_ID_TYPES, key=len, reverse=True)  # tgw-attach before tgw
# Actions whose created resource is not named by the action itself.
_CREATED_TYPE = {"allocateaddress": "elastic-ip", "createflowlogs": "vpc-flow-log", "runinstances": "instance"}
# Words in action names that mean a resource type of another name.
_ACTION_WORD_TYPE = {"address": "elastic-ip", "flowlogs": "vpc-flow-log"}


@cache
def action_resource_types() -> dict[str, dict[str, tuple[str, ...]]]:
    """Resource types each action authorizes, by service and lower-case action (IAM reference data,
    as cfn-lint ships it)."""
    data = iam_reference()
    return {
        service.lower(): {
            action.lower(): tuple(spec.get("Resources", ())) for action, spec in body.get("Actions", {}).items()
        }
        for service, body in data.items()
    }


@lru_cache(maxsize=8192)
def _ec2_type(identifier: str) -> str | None:
    for prefix in _EC2_PREFIXES:
        rest = identifier[len(prefix) + 1 :]
        if identifier.startswith(prefix + "-") and rest.isalnum() and rest.isascii():
            return _EC2_ID_TYPES[prefix]
    return None


def _collect_ids(value: Any, out: list[tuple[str, str]], key: str = "") -> None:
    """(key, id) for every EC2 id in requestParameters under an id field (vpcId, resourcesSet's
    resourceId, FlowLogId; never a tag's value), except the peer's: it is in another account."""
    lowered = key.lower()
    if lowered.startswith("peer"):
        return
    if isinstance(value, str):
        if lowered.endswith(("id", "ids")) and _ec2_type(value):
            out.append((key, value))
    elif is_mapping(value):
        for child_key, child in value.items():
            _collect_ids(child, out, str(child_key) if child_key not in ("items", "content") else key)
    elif isinstance(value, list):
        for item in value:
            _collect_ids(item, out, key)


def _primary_type(action: str, types: tuple[str, ...]) -> str | None:
    """The resource type an action is named after (DeleteDhcpOptions: dhcp-options), when it has one."""
    lowered = action.lower()
    if lowered in _CREATED_TYPE:
        return _CREATED_TYPE[lowered]
    for word, kind in _ACTION_WORD_TYPE.items():
        if lowered.endswith(word) and kind in types:
            return kind
    named = [t for t in types if lowered.endswith(t.replace("-", "")) or lowered.endswith(t.replace("-", "") + "s")]
    return max(named, key=len) if named else None


def _is_create(action: str) -> bool:
    return action.lower().startswith(("create", "allocate", "run", "import", "copy"))


@lru_cache(maxsize=4096)
def _ec2_action(action: str) -> tuple[tuple[str, ...] | None, str | None, bool]:
    """(resource types the IAM reference lists, the type the action is named after, whether it creates
    one) for an EC2 action: a question per action, not per record."""
    types = action_resource_types().get("ec2", {}).get(action.lower())
    return types, _primary_type(action, types) if types else None, _is_create(action)


def ec2_resources(
    record: Mapping[str, Any], action: str, partition: str, region: str, account: str
) -> tuple[str, ...] | None:
    """The ARNs an EC2 call is authorized on, or None when the record cannot name one the action needs.

    A create action is authorized on TYPE/* for what it creates (IAM User Guide and the EC2
    "Actions, resources, and condition keys" page: CreateVpc on vpc/*). Ids in requestParameters
    (resourcesSet for CreateTags, vpcId, the peer's VPC in its own account and region) give the rest.
    Only the resource types the action lists in the IAM reference count.
    """
    types, primary, create = _ec2_action(action)
    params = record.get("requestParameters")
    arns: list[str] = []
    if types is not None and primary and create:
        arns.append(f"arn:{partition}:ec2:{region}:{account}:{primary}/*")
    found: list[tuple[str, str]] = []
    _collect_ids(params, found)
    for _key, identifier in found:
        kind = _ec2_type(identifier)
        if kind and (types is None or kind in types):
            arns.append(f"arn:{partition}:ec2:{region}:{account}:{kind}/{identifier}")
    peer = _m(params).get("peerVpcId")
    if isinstance(peer, str) and _ec2_type(peer) == "vpc" and (types is None or "vpc" in types):
        peer_account = _s(_m(params).get("peerOwnerId")) or account
        peer_region = _s(_m(params).get("peerRegion")) or region
        arns.append(f"arn:{partition}:ec2:{peer_region}:{peer_account}:vpc/{peer}")
    listed = record.get("resources")
    for item in listed if isinstance(listed, list) else []:  # CloudTrail's own list, when the event has one
        arn = _s(item.get("ARN") or item.get("arn")) if isinstance(item, Mapping) else None
        if arn and arn.startswith("arn:"):
            arns.append(arn)
    arns = list(dict.fromkeys(arns))
    if not arns:
        return None
    if primary and not any(f":{primary}/" in arn for arn in arns):
        return None  # the resource the action is about is not in the record (an association id, say)
    return tuple(arns)
