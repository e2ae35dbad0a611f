"""CloudTrail records: reading log files, and building the request context the evaluator needs."""

from __future__ import annotations

import gzip
import ipaddress
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netguard.errors import InputError
from netguard.iam.conditions import RequestContext
from netguard.iam.evaluator import Request

try:
    import orjson

    _fast_loads = orjson.loads
    _FastDecodeError: tuple[type[Exception], ...] = (orjson.JSONDecodeError,)
except ImportError:  # pragma: no cover - orjson is a dependency; the standard library still reads
    _fast_loads = json.loads
    _FastDecodeError = (json.JSONDecodeError, UnicodeDecodeError, RecursionError)

# File names a folder of CloudTrail logs holds; a file named explicitly is read whatever its name.
LOG_SUFFIXES = (".json", ".json.gz", ".gz")

# eventSource host -> IAM service prefix, where the two differ.
_SERVICE_PREFIX = {"monitoring": "cloudwatch", "email": "ses", "elasticloadbalancing": "elasticloadbalancing"}

# requestParameters key -> (service, ARN resource type) for the guarded network events.
_RESOURCE_PARAMETERS = {
    "dhcpOptionsId": ("ec2", "dhcp-options"),
    "vpcPeeringConnectionId": ("ec2", "vpc-peering-connection"),
    "vpcId": ("ec2", "vpc"),
    "subnetId": ("ec2", "subnet"),
    "routeTableId": ("ec2", "route-table"),
    "internetGatewayId": ("ec2", "internet-gateway"),
    "natGatewayId": ("ec2", "natgateway"),
    "networkAclId": ("ec2", "network-acl"),
    "transitGatewayId": ("ec2", "transit-gateway"),
    "allocationId": ("ec2", "elastic-ip"),
    "FlowLogId": ("ec2", "vpc-flow-log"),
}


@dataclass
class RecordError:
    file: str
    message: str
    position: str | None = None

    def as_input_error(self) -> InputError:
        where = f" ({self.position})" if self.position else ""
        return InputError(self.file, self.message + where)


@dataclass
class ParsedRecord:
    """What simulate needs from one record: its identity, the request, and whether SCPs apply."""

    event_id: str
    event_name: str
    principal: str
    request: Request | None
    scp_exempt_reason: str | None = None


def decode_records(raw: bytes, name: str) -> list[Any] | RecordError:
    """The records of one CloudTrail file's bytes: the one place a file becomes records.

    Accepts gzip or plain JSON (recognised by content, not by name) holding a CloudTrail log file
    {"Records": [...]} (other top-level keys, such as the fixtures' "netguard-test", are ignored), a
    list of records, or one record object. The items are returned as decoded, unchecked: callers
    report those that are not objects. A file that cannot be decoded is a RecordError naming it.

    orjson decodes; only when it refuses does the standard library try, so that input it alone
    accepts (a UTF-8 byte order mark, UTF-16, NaN) still reads, and errors carry its line and column.
    """
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except EOFError as exc:
            return RecordError(name, f"corrupt gzip: truncated gzip stream ({exc})")
        except (zlib.error, OSError) as exc:  # gzip.BadGzipFile is an OSError
            return RecordError(name, f"corrupt gzip: {exc}")
    try:
        payload = _fast_loads(raw)
    except _FastDecodeError:
        try:
            payload = json.loads(raw)
        except UnicodeDecodeError as exc:
            return RecordError(name, f"not valid UTF-8 (byte {exc.start})")
        except json.JSONDecodeError as exc:
            return RecordError(name, f"invalid JSON: {exc.msg}", f"line {exc.lineno} column {exc.colno}")
        except RecursionError:
            return RecordError(name, "JSON nested too deeply to parse")
    if isinstance(payload, dict):
        records = payload.get("Records")
        if isinstance(records, list):
            return records
        if "eventName" in payload:
            return [payload]
    elif isinstance(payload, list):
        return payload
    return RecordError(name, 'no CloudTrail records: expected {"Records": [...]}, a list, or one record')


def not_an_object(name: str, index: int) -> RecordError:
    """The error for an item of a file's records that is not a JSON object."""
    return RecordError(name, f"record {index} is not a JSON object")


def read_records(path: Path) -> Iterator[dict[str, Any] | RecordError]:
    """Records of a CloudTrail file on disk, through decode_records; errors are yielded, not raised."""
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        yield RecordError(name, f"cannot read file: {exc.strerror or exc}")
        return
    records = decode_records(raw, name)
    if isinstance(records, RecordError):
        yield records
        return
    for index, record in enumerate(records):
        if isinstance(record, Mapping):
            yield dict(record)
        else:
            yield not_an_object(name, index)


def _service(event_source: str) -> str:
    host = event_source.split(".", 1)[0]
    return _SERVICE_PREFIX.get(host, host)


def _m(value: Any) -> Mapping[str, Any]:
    """value when it is a mapping, else an empty one: records come in every shape."""
    return value if isinstance(value, Mapping) else {}


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _principal(identity: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(aws:PrincipalArn, aws:PrincipalType, reason SCPs do not apply)."""
    kind = identity.get("type")
    issuer = _m(_m(identity.get("sessionContext")).get("sessionIssuer"))
    if kind == "AssumedRole":
        arn = _s(issuer.get("arn"))
        if isinstance(arn, str) and ":role/aws-service-role/" in arn:
            return arn, "AssumedRole", "SCPs do not restrict service-linked roles"
        return arn, "AssumedRole", None
    if kind == "IAMUser":
        return _s(identity.get("arn")), "User", None
    if kind == "Root":
        account = _s(identity.get("accountId"))
        return (f"arn:aws:iam::{account}:root" if account else _s(identity.get("arn"))), "Account", None
    if kind == "FederatedUser":
        return _s(issuer.get("arn")) or _s(identity.get("arn")), "FederatedUser", None
    if kind == "AWSService":
        return _s(identity.get("invokedBy")), "Service", "SCPs do not restrict AWS service principals"
    return _s(identity.get("arn")), _s(kind), None


def _find(value: Any, key: str) -> Any:
    """First value of key anywhere in nested requestParameters (DeleteFlowLogs nests its ids)."""
    if isinstance(value, Mapping):
        if key in value:
            return value[key]
        for item in value.values():
            found = _find(item, key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _find(item, key)
            if found is not None:
                return found
    return None


def _ids(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        if "content" in value:
            return _ids(value["content"])
        if "items" in value:
            return _ids(value["items"])
        return []
    if isinstance(value, list):
        return [i for item in value for i in _ids(item)]
    return []


def _resources(record: Mapping[str, Any], service: str, partition: str) -> tuple[str, ...] | None:
    params = record.get("requestParameters")
    region = _s(record.get("awsRegion")) or ""
    account = _s(record.get("recipientAccountId")) or _s(_m(record.get("userIdentity")).get("accountId")) or ""
    if service == "logs":
        group = _find(params, "logGroupName")
        if isinstance(group, str):
            arn = f"arn:{partition}:logs:{region}:{account}:log-group:{group}"
            stream = _find(params, "logStreamName")
            return (f"{arn}:log-stream:{stream}",) if isinstance(stream, str) else (arn, f"{arn}:*")
        return None
    for key, (arn_service, kind) in _RESOURCE_PARAMETERS.items():
        if arn_service != service:
            continue
        ids = _ids(_find(params, key))
        if ids:
            return tuple(f"arn:{partition}:{service}:{region}:{account}:{kind}/{i}" for i in ids)
    return None


def _request_tags(params: Any) -> dict[str, list[str]] | None:
    spec = _find(params, "tagSpecificationSet")
    if spec is None:
        return None
    tags: dict[str, list[str]] = {}
    for item in _ids_or_items(spec):
        for tag in _ids_or_items(item.get("tags") if isinstance(item, Mapping) else None):
            if isinstance(tag, Mapping) and "key" in tag:
                tags.setdefault(str(tag["key"]), []).append(str(tag.get("value", "")))
    return tags


def _ids_or_items(value: Any) -> list[Any]:
    if isinstance(value, Mapping) and "items" in value:
        value = value["items"]
    return value if isinstance(value, list) else []


def parse_record(record: Mapping[str, Any], management_account: str | None = None) -> ParsedRecord:
    """The evaluator's request for a record; raises KeyError/TypeError when required fields are missing."""
    event_name = record["eventName"]
    event_source = record["eventSource"]
    identity = record["userIdentity"]
    if not isinstance(event_name, str) or not isinstance(event_source, str) or not isinstance(identity, Mapping):
        raise TypeError("eventName, eventSource and userIdentity have the wrong type")
    service = _service(event_source)
    principal_arn, principal_type, exempt = _principal(identity)
    partition = (
        principal_arn.split(":")[1] if isinstance(principal_arn, str) and principal_arn.startswith("arn:") else "aws"
    )
    account = _s(record.get("recipientAccountId")) or _s(identity.get("accountId"))
    if not exempt and management_account and account == management_account:
        exempt = "SCPs do not restrict the management account"
    values: dict[str, Any] = {
        "aws:PrincipalArn": principal_arn,
        "aws:PrincipalAccount": _s(identity.get("accountId")),
        "aws:PrincipalType": principal_type,
        "aws:RequestedRegion": _s(record.get("awsRegion")),
        "aws:userid": _s(identity.get("principalId")),
        "aws:PrincipalIsAWSService": "false",
        "aws:ViaAWSService": "true" if identity.get("invokedBy") else "false",
        "ec2:Region": _s(record.get("awsRegion")),
    }
    absent = []
    if principal_type == "User":
        values["aws:username"] = _s(identity.get("userName"))
    else:
        absent.append("aws:username")
    source_ip = record.get("sourceIPAddress")
    try:
        ipaddress.ip_address(str(source_ip))
        values["aws:SourceIp"] = source_ip
    except ValueError:
        absent.append("aws:SourceIp")  # a service name: the call came from AWS, not an address
    mfa = _m(_m(identity.get("sessionContext")).get("attributes")).get("mfaAuthenticated")
    if mfa is not None:
        values["aws:MultiFactorAuthPresent"] = str(mfa).lower()
    absent_prefixes = []
    tags = _request_tags(record.get("requestParameters"))
    if tags is None:
        absent_prefixes.append("aws:RequestTag/")
        absent.append("aws:TagKeys")
    else:
        for key, tag_values in tags.items():
            values[f"aws:RequestTag/{key}"] = tag_values
        values["aws:TagKeys"] = list(tags)
    context = RequestContext.build(values, absent=absent, absent_prefixes=absent_prefixes)
    request = Request(f"{service}:{event_name}", context, _resources(record, service, partition))
    return ParsedRecord(
        event_id=str(record.get("eventID", "")),
        event_name=event_name,
        principal=str(principal_arn),
        request=request,
        scp_exempt_reason=exempt,
    )
