"""CloudTrail records: reading log files, and building the request context the evaluator needs."""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from netguard.errors import InputError
from netguard.iam.conditions import RequestContext
from netguard.iam.evaluator import Request
from netguard.policy.bounded import Refused, deeper_than, loads, read_file
from netguard.policy.facts import OrgFacts
from netguard.policy.limits import LIMITS, Limits, size_text
from netguard.policy.request_context import (
    SESSION_KEYS,
    TRANSPORT_KEYS,
    VIA_SERVICE_KEYS,
    ec2_resources,
    is_mapping,
    parse_time,
    session_keys,
    time_keys,
    transport_keys,
    via_service_keys,
)

# File names a folder of CloudTrail logs holds; a file named explicitly is read whatever its name.
LOG_SUFFIXES = (".json", ".json.gz", ".gz")

# eventSource host -> IAM service prefix, where the two differ.
_SERVICE_PREFIX = {"monitoring": "cloudwatch", "email": "ses", "elasticloadbalancing": "elasticloadbalancing"}


@dataclass
class RecordError:
    file: str
    message: str
    position: str | None = None

    def as_input_error(self) -> InputError:
        where = f" ({self.position})" if self.position else ""
        return InputError(self.file, self.message + where)


class MalformedRecord(ValueError):
    """A record the request-context builder cannot use: a field missing, of the wrong type, or too deep."""


class BadRow(dict):
    """A row of a results file (Athena's CSV or GetQueryResults) that is no record: normalise raises
    MalformedRecord with its reason, so it is an error for that record and the rest go on. It may hold
    the row's eventid, for the error to name."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


@dataclass
class ParsedRecord:
    """What simulate needs from one record: its identity, the request, and whether SCPs apply."""

    event_id: str
    event_name: str
    principal: str
    request: Request | None
    scp_exempt_reason: str | None = None


class FileErrors:
    """The record errors of one file: at most `limit` are kept, the rest counted in one closing error,
    so a file of two million broken records costs two million counts, not two million messages."""

    def __init__(self, name: str, limit: int = LIMITS.max_record_errors) -> None:
        self.name = name
        self.limit = limit
        self.errors: list[InputError] = []
        self.unlisted = 0

    def add(self, message: str) -> None:
        if len(self.errors) < self.limit:
            self.errors.append(InputError(self.name, message))
        else:
            self.unlisted += 1

    def close(self) -> list[InputError]:
        if self.unlisted:
            self.errors.append(
                InputError(
                    self.name,
                    f"{self.unlisted} more record errors not listed (at most {self.limit} per file, "
                    "--max-record-errors)",
                )
            )
            self.unlisted = 0
        return self.errors


def record_label(record: Any) -> str:
    """How an error names a record: its eventID when that is a short string."""
    event_id = record.get("eventID") if isinstance(record, Mapping) else None
    if isinstance(event_id, str):
        return event_id if len(event_id) <= 80 else event_id[:77] + "..."
    return "?"


_GZIP_CHUNK = 1 << 20


def _inflate(raw: bytes, name: str, cap: int) -> bytes | RecordError:
    """gzip members inflated in chunks, stopping as soon as the output passes cap."""
    chunks: list[bytes] = []
    total = 0
    data = raw
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip header and trailer checked by zlib
        try:
            while not inflater.eof:
                chunk = inflater.decompress(data, _GZIP_CHUNK)
                progressed = chunk or len(inflater.unconsumed_tail) != len(data)
                data = inflater.unconsumed_tail
                total += len(chunk)
                if total > cap:
                    return RecordError(
                        name,
                        f"inflates past {size_text(cap)}, the limit per file (--max-file-bytes); "
                        "not decompressed further",
                    )
                chunks.append(chunk)
                if not progressed:
                    return RecordError(
                        name,
                        "corrupt gzip: truncated gzip stream (compressed file ended before the "
                        "end-of-stream marker was reached)",
                    )
        except zlib.error as exc:
            return RecordError(name, f"corrupt gzip: {exc}")
        data = inflater.unused_data.lstrip(b"\x00")  # members may follow; zero padding may close
        if data and data[:2] != b"\x1f\x8b":
            return RecordError(name, "corrupt gzip: data after the end of the gzip stream")
    return b"".join(chunks)


def decode_records(raw: bytes, name: str, limits: Limits = LIMITS) -> list[Any] | RecordError:
    """The records of one CloudTrail file's bytes: the one place a file becomes records.

    Accepts gzip or plain JSON (recognised by content, not by name) holding a CloudTrail log file
    {"Records": [...]} (other top-level keys, such as the fixtures' "netguard-test", are ignored), a
    list of records, or one record object; and the results of `policy replay --emit-sql`'s query as
    Athena's CSV file or GetQueryResults JSON (policy/athena.py). The items are returned as decoded, unchecked: callers
    report those that are not objects. A file that cannot be decoded, or that passes a limit, is a
    RecordError naming it (and the limit).

    Memory stays bounded: gzip is inflated in chunks up to limits.max_file_bytes, and a file long
    enough to hold more than limits.max_json_values values is counted before it is parsed (each
    value but the first follows a comma or an opening bracket, so that count is an upper bound).
    """
    if len(raw) > limits.max_file_bytes:
        return RecordError(name, f"file is {size_text(len(raw))}, over the limit of {_limit_text(limits)}")
    if raw[:2] == b"\x1f\x8b":
        inflated = _inflate(raw, name, limits.max_file_bytes)
        if isinstance(inflated, RecordError):
            return inflated
        raw = inflated
    from netguard.policy import athena  # Athena's results, recognised by content (policy/athena.py)

    if athena.looks_like_csv(raw):
        return athena.csv_records(raw, name, limits)
    if (len(raw) + 1) // 2 > limits.max_json_values:  # shorter text cannot hold that many values
        values = 1 + raw.count(b",") + raw.count(b"[") + raw.count(b"{")
        if values > limits.max_json_values:
            return RecordError(
                name,
                f"up to {values} JSON values, over the limit of {limits.max_json_values} per file "
                "(--max-json-values); not parsed",
            )
    try:
        payload = loads(raw)
    except Refused as exc:
        return RecordError(name, exc.message, exc.position)
    records: Any = None
    if isinstance(payload, dict):
        found = payload.get("Records")
        rows = payload.get("QueryResultRows")
        if isinstance(found, list):
            records = found
        elif isinstance(payload.get("ResultSet"), dict):  # Athena's GetQueryResults
            return athena.result_set_records(payload["ResultSet"], name, limits)
        elif isinstance(rows, list):  # CloudTrail Lake's GetQueryResults: each row a list of {column: value}
            records = [_lake_row(row) for row in rows]
        elif "eventName" in payload:
            records = [payload]
    elif isinstance(payload, list):
        records = payload
    if records is None:
        return RecordError(name, 'no CloudTrail records: expected {"Records": [...]}, a list, or one record')
    if len(records) > limits.max_records:
        return RecordError(
            name,
            f"{len(records)} records, over the limit of {limits.max_records} per file (--max-records); none evaluated",
        )
    return records


def _lake_row(row: Any) -> Any:
    """One row of CloudTrail Lake's GetQueryResults, its single-column objects merged into one record;
    a row of another shape is kept as it is, for the caller to report."""
    if not isinstance(row, list) or not all(isinstance(cell, dict) for cell in row):
        return row
    return {key: value for cell in row for key, value in cell.items()}


def _limit_text(limits: Limits) -> str:
    return f"{size_text(limits.max_file_bytes)} per file (--max-file-bytes)"


def not_an_object(name: str, index: int) -> RecordError:
    """The error for an item of a file's records that is not a JSON object."""
    return RecordError(name, f"record {index} is not a JSON object")


def read_file_bytes(path: Path | str, limits: Limits = LIMITS) -> bytes | RecordError:
    """A CloudTrail file's bytes from disk, bounded by limits.max_file_bytes."""
    try:
        return read_file(path, limits.max_file_bytes, "--max-file-bytes")
    except Refused as exc:
        return RecordError(str(path), exc.message)


def read_records(path: Path, limits: Limits = LIMITS) -> Iterator[dict[str, Any] | RecordError]:
    """Records of a CloudTrail file on disk, through decode_records; errors are yielded, not raised."""
    name = str(path)
    raw = read_file_bytes(path, limits)
    if isinstance(raw, RecordError):
        yield raw
        return
    records = decode_records(raw, name, limits)
    if isinstance(records, RecordError):
        yield records
        return
    for index, record in enumerate(records):
        if isinstance(record, Mapping):
            yield dict(record)
        else:
            yield not_an_object(name, index)


def _service(event_source: str) -> str:
    """The IAM service prefix of an eventSource host, whatever case the record writes it in."""
    found = _SERVICES.get(event_source)
    if found is None:
        host = event_source.split(".", 1)[0].lower()
        found = _SERVICE_PREFIX.get(host, host)
        if len(_SERVICES) < 10_000:
            _SERVICES[event_source] = found
    return found


_SERVICES: dict[str, str] = {}  # eventSource -> service prefix: a trail has a few hundred sources


def _m(value: Any) -> Mapping[str, Any]:
    """value when it is a mapping, else an empty one: records come in every shape."""
    return value if is_mapping(value) else {}


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
        # The federated user itself (arn:aws:sts::ACCOUNT:federated-user/NAME), not the IAM user that
        # called GetFederationToken, which is only its session issuer.
        return _s(identity.get("arn")) or _s(issuer.get("arn")), "FederatedUser", None
    if kind == "AWSService":
        return _s(identity.get("invokedBy")), "Service", "SCPs do not restrict AWS service principals"
    return _s(identity.get("arn")), _s(kind), None


def _find(value: Any, key: str) -> Any:
    """First value of key anywhere in nested requestParameters (DeleteFlowLogs nests its ids)."""
    if is_mapping(value):
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
    if is_mapping(value):
        if "content" in value:
            return _ids(value["content"])
        if "items" in value:
            return _ids(value["items"])
        return []
    if isinstance(value, list):
        return [i for item in value for i in _ids(item)]
    return []


def _resources(record: Mapping[str, Any], service: str, event_name: str, partition: str) -> tuple[str, ...] | None:
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
    if service == "ec2":
        return ec2_resources(record, event_name, partition, region, account)
    return None


def _request_tags(params: Any, event_name: str) -> dict[str, list[str]] | None:
    """Tags the request sets: tagSpecificationSet on a create, tagSet on CreateTags; None when it sets none."""
    if event_name.lower() == "createtags":
        if params is None or not _may_hold(params, "tagSet", b'"tagSet"'):
            return {}
        tag_lists = [_find(params, "tagSet")]
    else:
        if params is None or not _may_hold(params, "tagSpecificationSet", b'"tagSpecificationSet"'):
            return None
        spec = _find(params, "tagSpecificationSet")
        if spec is None:
            return None
        tag_lists = [item.get("tags") if isinstance(item, Mapping) else None for item in _ids_or_items(spec)]
    tags: dict[str, list[str]] = {}
    for tag_list in tag_lists:
        for tag in _ids_or_items(tag_list):
            if isinstance(tag, Mapping) and "key" in tag:
                key, value = tag["key"], tag.get("value", "")
                if not isinstance(key, str) or not isinstance(value, (str, type(None))):
                    raise MalformedRecord(
                        "missing or malformed field requestParameters tag: key and value must be strings, "
                        f"not {_kind(key)} and {_kind(value)}"
                    )
                tags.setdefault(key, []).append(value or "")
    return tags


def _may_hold(params: Any, key: str, quoted_key: bytes) -> bool:
    """Whether params can hold the key anywhere (false only when it cannot): an object of plain values
    without it cannot, and otherwise its JSON text must name it. A fraction of the cost of searching
    the nested objects for a key most requests lack."""
    if params.__class__ is dict and key not in params:
        for value in params.values():
            if value.__class__ not in _LEAF_TYPES:
                break
        else:
            return False
    try:
        return quoted_key in orjson.dumps(params)
    except TypeError:  # not what a JSON decoder gives: search it
        return True


def _ids_or_items(value: Any) -> list[Any]:
    if isinstance(value, Mapping) and "items" in value:
        value = value["items"]
    return value if isinstance(value, list) else []


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


# Fields the request-context builder reads, by the JSON type they must have when present and not null.
_RECORD_FIELDS = {
    "eventName": str,
    "eventSource": str,
    "userIdentity": Mapping,
    "recipientAccountId": str,
    "awsRegion": str,
    "sourceIPAddress": str,
    "vpcEndpointId": str,
    "eventID": str,
    "eventTime": str,
    "requestParameters": Mapping,
}
_IDENTITY_FIELDS = {
    "type": str,
    "arn": str,
    "accountId": str,
    "principalId": str,
    "userName": str,
    "invokedBy": str,
    "sessionContext": Mapping,
}
_EXPECTED = {str: "a string", Mapping: "an object"}
_EXACT = {str: str, Mapping: dict}


def _checks(fields: dict[str, type]) -> tuple[tuple[str, type, type], ...]:
    """(key, expected type, the exact type JSON decodes it to) per field, built once."""
    return tuple((key, expected, _EXACT[expected]) for key, expected in fields.items())


_RECORD_CHECKS = _checks(_RECORD_FIELDS)
_IDENTITY_CHECKS = _checks(_IDENTITY_FIELDS)
_SESSION_CHECKS = _checks({"sessionIssuer": Mapping, "attributes": Mapping})
_ISSUER_CHECKS = _checks({"arn": str})


def _check_fields(value: Mapping[str, Any], checks: tuple[tuple[str, type, type], ...], path: str) -> None:
    for key, expected, exact in checks:
        found = value.get(key)
        if found is None or found.__class__ is exact:  # the usual case, in two comparisons
            continue
        if (
            found is not None
            and type(found) is not (dict if expected is Mapping else expected)
            and not isinstance(found, expected)
        ):
            raise MalformedRecord(
                f"missing or malformed field {path}{key}: {_kind(found)}, expected {_EXPECTED[expected]}"
            )


def check_record(record: Any, max_depth: int = LIMITS.max_depth) -> None:
    """Raise MalformedRecord unless record has the fields the builder reads, each of the right type,
    and nests at most max_depth levels. What a record holds beyond those fields is never read."""
    _checked(record, max_depth)


@dataclass(frozen=True, eq=False)
class _Identity:
    """What parse_record reads from a userIdentity that check_record accepted. A trail repeats a few
    thousand identities across millions of records, so it is worked out once per identity (its JSON),
    with the identity's own nesting depth, and the rest of a record is walked without it. Compared and
    hashed as the object it is (eq=False): replay remembers decisions per caller (replay.Compiled), and
    hashing seven fields per record would cost more than the memo saves."""

    depth: int  # levels below the record: 1 for an object of scalars
    principal_arn: str | None
    principal_type: str | None
    exempt: str | None
    partition: str
    arn_account: str
    principal_account: str | None  # accountId, else the principal ARN's account


def _identity_of(identity: Mapping[str, Any], max_depth: int) -> _Identity:
    _check_fields(identity, _IDENTITY_CHECKS, "userIdentity.")
    context = _m(identity.get("sessionContext"))
    _check_fields(context, _SESSION_CHECKS, "userIdentity.sessionContext.")
    _check_fields(_m(context.get("sessionIssuer")), _ISSUER_CHECKS, "userIdentity.sessionContext.sessionIssuer.")
    mfa = _m(context.get("attributes")).get("mfaAuthenticated")
    if mfa is not None and not isinstance(mfa, (str, bool)):
        raise MalformedRecord(
            "missing or malformed field userIdentity.sessionContext.attributes.mfaAuthenticated: "
            f"{_kind(mfa)}, expected a string"
        )
    principal_arn, principal_type, exempt = _principal(identity)
    partition = (
        principal_arn.split(":")[1] if isinstance(principal_arn, str) and principal_arn.startswith("arn:") else "aws"
    )
    arn_account = (
        principal_arn.split(":")[4] if isinstance(principal_arn, str) and principal_arn.count(":") >= 5 else ""
    )
    return _Identity(
        _depth(identity, max_depth + 1) if max_depth <= 100 else 0,  # past 100, deeper_than walks it all
        principal_arn,
        principal_type,
        exempt,
        partition,
        arn_account,
        _s(identity.get("accountId")) or arn_account or None,
    )


_IDENTITIES: dict[int, dict[bytes, _Identity]] = {}  # max_depth -> identity JSON -> what it says
_json = orjson.dumps


def _checked(record: Any, max_depth: int) -> _Identity:
    """check_record, returning what the identity says; the identity's checks are remembered per its JSON."""
    if record.__class__ is not dict and not is_mapping(record):
        raise MalformedRecord(f"is {_kind(record)}, not a JSON object")
    identity = record.get("userIdentity")
    if record.get("eventSource") is None or record.get("eventName") is None or identity is None:
        for key in ("eventSource", "eventName", "userIdentity"):
            if record.get(key) is None:
                raise MalformedRecord(f"missing or malformed field {key}: missing")
    _check_fields(record, _RECORD_CHECKS, "")
    known = _IDENTITIES.get(max_depth)
    if known is None:
        known = _IDENTITIES[max_depth] = {}
    try:
        text: bytes | None = _json(identity)
    except TypeError:  # not what a JSON decoder gives (a key that is no string, say): checked every time
        text = None
    if text is not None and b"null" in text:  # orjson writes NaN and infinity as null too: not a key
        text = None
    found = known.get(text) if text is not None else None
    if found is None:
        found = _identity_of(identity, max_depth)
        if text is not None:
            if len(known) >= 10_000:
                known.clear()
            known[text] = found
    if max_depth > 100:
        deeper = deeper_than(record, max_depth)
    else:
        deeper = found.depth + 1 > max_depth or _record_deeper(record, identity, max_depth)
    if deeper:
        raise MalformedRecord(f"nested more than {max_depth} levels deep (--max-depth)")
    return found


_LEAVES = (str, int, float, bool, type(None))
_LEAF_TYPES = frozenset(_LEAVES)


def _is_container(child: Any) -> bool:
    kind = child.__class__
    return kind is dict or kind is list or (kind not in _LEAVES and isinstance(child, (dict, list, Mapping)))


def _depth(node: Any, limit: int) -> int:
    """How many levels of objects and arrays node is (0 for a scalar), counted no further than limit."""
    if not _is_container(node):
        return 0
    if limit <= 1:
        return 1
    children = node.values() if node.__class__ is dict or not isinstance(node, list) else node
    return 1 + max((_depth(child, limit - 1) for child in children if _is_container(child)), default=0)


def _record_deeper(record: Mapping[str, Any], identity: Any, max_depth: int) -> bool:
    """Whether the record, its userIdentity aside, nests more than max_depth levels: bounded.deeper_than
    for the usual limits, a level at a time (the record, then the containers one level down, then
    theirs), which walks a record without a call per container."""
    level: list[Any] = [record]
    depth = 1
    while level:
        if depth > max_depth:
            return True
        below = []
        for node in level:
            for child in node.values() if node.__class__ is dict or not isinstance(node, list) else node:
                kind = child.__class__
                if kind in _LEAF_TYPES or (child is identity and node is record):
                    continue
                if kind is dict or kind is list or isinstance(child, (dict, list, Mapping)):
                    below.append(child)
        level = below
        depth += 1
    return False


def _put_all(values: dict[str, tuple[str, ...]], more: Mapping[str, Any]) -> None:
    """more's keys and values, converted as RequestContext.build converts them."""
    for key, value in more.items():
        if value.__class__ is str:
            values[key.lower()] = (value,)
        elif value is not None:
            items = value if isinstance(value, (list, tuple)) else [value]
            values[key.lower()] = tuple(str(v).lower() if isinstance(v, bool) else str(v) for v in items)


@lru_cache(maxsize=4096)
def _is_address(text: str) -> bool:
    """Whether sourceIPAddress is an IP address (not a service's name): the same few per trail."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_TIMES: dict[str | None, tuple[Any, dict[str, Any]]] = {}


def _times(text: str | None) -> tuple[Any, dict[str, Any]]:
    """(eventTime parsed, aws:CurrentTime and aws:EpochTime in RequestContext's form), remembered per
    eventTime text: records of one second share it, and the formatting costs more than the rest."""
    found = _TIMES.get(text)
    if found is None:
        moment = parse_time(text)
        found = (moment, dict(RequestContext.build(time_keys(moment)).values))
        if len(_TIMES) >= 10_000:
            _TIMES.clear()
        _TIMES[text] = found
    return found


_RESOURCE_ACCOUNT = frozenset({"aws:resourceaccount"})
_REQUEST_KEYS = frozenset(
    {
        "aws:requestedregion",
        "ec2:region",
        "aws:userid",
        "aws:useragent",
        "aws:username",
        "aws:principalservicename",
        "aws:principalservicenameslist",
    }
)
_SOURCE_KEYS = frozenset({"aws:sourceip", "aws:sourcevpce", "aws:vpcsourceip", "aws:sourcevpc", "aws:sourcevpcarn"})
_TIME_KEYS = frozenset({"aws:currenttime", "aws:epochtime"})


def _request_keys(
    record: Mapping[str, Any], identity: Mapping[str, Any], principal_type: str | None
) -> tuple[dict[str, Any], list[str]]:
    """The region, the caller's user id and name, and the user agent."""
    region = _s(record.get("awsRegion"))
    values = {"aws:RequestedRegion": region, "ec2:Region": region, "aws:userid": _s(identity.get("principalId"))}
    values["aws:UserAgent"] = _s(record.get("userAgent"))
    absent = ["aws:PrincipalServiceName", "aws:PrincipalServiceNamesList"]
    if principal_type == "User":
        values["aws:username"] = _s(identity.get("userName"))
    else:
        absent.append("aws:username")
    return values, absent


def _source_keys(record: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Where the call came from: through a VPC endpoint, AWS sets the endpoint and the private address
    and never aws:SourceIp; a service name in sourceIPAddress means the call came from AWS."""
    source_ip = _s(record.get("sourceIPAddress"))
    endpoint = _s(record.get("vpcEndpointId"))
    if not _is_address(source_ip or ""):
        source_ip = None
    absent = []
    if endpoint:
        values = {"aws:SourceVpce": endpoint, "aws:VpcSourceIp": source_ip}
        absent.append("aws:SourceIp")
    else:
        values = {"aws:SourceIp": source_ip}
        absent += ["aws:SourceVpce", "aws:VpcSourceIp", "aws:SourceVpc", "aws:SourceVpcArn"]
    if source_ip is None:
        absent += ["aws:SourceIp", "aws:VpcSourceIp"]
    return values, absent


class RecordContext(RequestContext):
    """parse_record's request context: the principal's keys and the request's tags are built at once,
    and each other group of keys (the request's, the source's, the time's, the session's, the invoking
    service's, the transport's, the resource account) the first time one of its keys is looked up, or
    when the whole context is read. Most policies read a few keys, so most records never build most
    groups; every lookup answers what the whole context would (tests/test_evaluate_golden.py). The
    groups read the record when they are built, so a caller must not change it while the context is
    in use (nothing in netguard does)."""

    def __init__(
        self,
        values: dict[str, tuple[str, ...]],
        absent: set[str],
        absent_prefixes: tuple[str, ...],
        record: Mapping[str, Any],
        principal_type: str | None,
        service: str,
        partition: str,
    ) -> None:
        # vars().update, not object.__setattr__ per attribute: this runs once per evaluated record
        vars(self).update(
            _values=values,
            _absent=absent,
            absent_prefixes=absent_prefixes,
            _deferred=list(_GROUPS),
            record=record,
            principal_type=principal_type,
            service=service,
            partition=partition,
        )

    @property  # type: ignore[override]
    def values(self) -> dict[str, tuple[str, ...]]:
        while self._deferred:
            self._build(self._deferred[0])
        return self._values

    @property  # type: ignore[override]
    def absent(self) -> frozenset[str]:
        values = self.values  # every group built: absent never names a key that has a value
        return frozenset(self._absent).difference(values)

    def _build(self, group: _Group) -> None:
        self._deferred.remove(group)
        more, gone = group[1](self)
        _put_all(self._values, more)
        self._absent.update(key.lower() for key in gone)

    def lookup(self, key: str) -> tuple[str, ...] | None:
        return self.lookup_lowered(key.lower())

    def lookup_lowered(self, lowered: str) -> tuple[str, ...] | None:
        found = self._values.get(lowered)
        if found is not None:
            return found
        group = _GROUP_OF.get(lowered)  # the deferred group that builds this key, if any
        if group is not None and group in self._deferred:
            self._build(group)
            found = self._values.get(lowered)
            if found is not None:
                return found
        if lowered in self._absent or any(lowered.startswith(p) for p in self.absent_prefixes):
            return ()
        return None

    def resources(self) -> tuple[str, ...] | None:
        """The ARNs the call is authorized on (built once, for the request or aws:ResourceAccount)."""
        found = vars(self).get("_resources", _UNSET)
        if found is _UNSET:
            found = _resources(self.record, self.service, self.record["eventName"], self.partition)
            vars(self)["_resources"] = found
        return found

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as the plain context it amounts to: it holds the record its groups read."""
        return (RequestContext, (dict(self.values), self.absent, self.absent_prefixes))


_UNSET = object()
_Group = tuple[frozenset[str], Callable[[RecordContext], tuple[dict[str, Any], Iterable[str]]]]


def _resource_account(context: RecordContext) -> tuple[dict[str, Any], list[str]]:
    """aws:ResourceAccount: the recipient account, when it owns every resource of the call (a peer's
    VPC in another account does not)."""
    owners = {arn.split(":")[4] for arn in context.resources() or ()}
    recipient = _s(context.record.get("recipientAccountId"))
    return ({"aws:ResourceAccount": recipient} if recipient and owners <= {recipient} else {}), []


def _event_time(context: RecordContext) -> Any:
    return _times(_s(context.record.get("eventTime")))[0]


# What RecordContext defers, each group with the keys it builds (tests/test_evaluate_golden.py checks
# each builds exactly those).
_GROUPS: tuple[_Group, ...] = (
    (_REQUEST_KEYS, lambda c: _request_keys(c.record, c.record["userIdentity"], c.principal_type)),
    (_SOURCE_KEYS, lambda c: _source_keys(c.record)),
    (_TIME_KEYS, lambda c: (_times(_s(c.record.get("eventTime")))[1], ())),
    (SESSION_KEYS, lambda c: session_keys(c.record["userIdentity"], _event_time(c))),
    (VIA_SERVICE_KEYS, lambda c: via_service_keys(c.record, c.record["userIdentity"])),
    (TRANSPORT_KEYS, lambda c: (transport_keys(c.record), ())),
    (_RESOURCE_ACCOUNT, _resource_account),
)
_DEFERRED_KEYS = frozenset().union(*(keys for keys, _ in _GROUPS))
_GROUP_OF = {key: group for group in _GROUPS for key in group[0]}


_NO_FACTS = OrgFacts()  # shared when a caller gives none, so that its per-principal memo is kept


def _fact_values(facts: OrgFacts, principal_arn: str | None) -> tuple[dict[str, Any], list[str], list[str]]:
    """facts.context_values, its values in RequestContext's form, remembered per principal ARN on the
    facts object: matching the principal tags file's patterns is a per-principal question, not a
    per-record one. The caller only reads the result."""
    cache = facts.__dict__.get("_context_values")
    if cache is None:
        cache = {}
        object.__setattr__(facts, "_context_values", cache)  # a frozen dataclass: a private memo only
    found = cache.get(principal_arn)
    if found is None:
        fact_values, fact_absent, fact_prefixes = facts.context_values(principal_arn)
        found = (dict(RequestContext.build(fact_values).values), fact_absent, fact_prefixes)
        if len(cache) < 10_000:
            cache[principal_arn] = found
    return found


def parse_record(
    record: Mapping[str, Any],
    management_account: str | None = None,
    max_depth: int = LIMITS.max_depth,
    *,
    facts: OrgFacts | None = None,
    with_resources: bool = True,
) -> ParsedRecord:
    """The evaluator's request for a record; raises MalformedRecord (naming the field) when a field it
    reads is missing or of the wrong type, or the record nests deeper than max_depth.

    facts add what records lack (organization id, principal tags); facts.management_account, when
    given, wins over management_account. with_resources=False leaves the request's resources None,
    for policies whose every Resource and NotResource is "*" (replay.Compiled.reads_resources_for): the
    ARNs cost a sixth of the parse, and such policies decide the same without them.
    """
    return read_head(record, management_account, max_depth, facts=facts).parsed(with_resources)


class RecordHead:
    """What every decision needs of a record, read before any deferred key group: the record checked
    (MalformedRecord otherwise, its request tags included), its caller, its action, and whether SCPs
    apply to it. The keys built at once (the principal's, the request's tags, the organization's
    facts) are built the first time one is asked for (`answer`) or the whole request is made
    (`parsed`): replay answers a decision it has seen before for the same caller and action from the
    head alone, without them (replay.Compiled.remembered)."""

    __slots__ = (
        "absent",
        "absent_prefixes",
        "action",
        "caller",
        "event_name",
        "exempt",
        "facts",
        "record",
        "service",
        "tags",
        "values",
    )

    def __init__(
        self, record: Mapping[str, Any], caller: _Identity, service: str, event_name: str, facts: OrgFacts
    ) -> None:
        self.record, self.caller, self.service, self.event_name = record, caller, service, event_name
        self.facts = facts
        self.action = f"{service}:{event_name}"  # the request's action, as the policies name it
        self.exempt: str | None = caller.exempt
        # Read at once: a tag that is not a string makes the record malformed, whether or not a
        # decision reads the tags (the memo and the exemptions answer without them).
        self.tags = _request_tags(record.get("requestParameters"), event_name)
        self.values: dict[str, tuple[str, ...]] | None = None  # with absent and absent_prefixes: _build_keys

    @property
    def principal(self) -> str:
        return str(self.caller.principal_arn)

    def answer(self, lowered: str) -> tuple[str, ...] | None:
        """The context's lookup for a key no deferred group builds (see settled_by_head): RequestContext's
        own, over the same three fields (values, absent, absent_prefixes), once they are built."""
        if self.values is None:
            self._build_keys()
        return RequestContext.lookup_lowered(self, lowered)  # type: ignore[arg-type]

    def _build_keys(self) -> dict[str, tuple[str, ...]]:
        """The principal's keys, the request's tags and the organization's facts, in RequestContext's
        own form (lower-case keys, tuples of strings, a value of None left out)."""
        caller = self.caller
        values: dict[str, tuple[str, ...]] = {"aws:principalisawsservice": ("false",)}
        principal_arn = caller.principal_arn
        if principal_arn is not None:
            values["aws:principalarn"] = (principal_arn,)
        if caller.principal_account is not None:
            values["aws:principalaccount"] = (caller.principal_account,)
        if caller.principal_type is not None:
            values["aws:principaltype"] = (caller.principal_type,)
        absent: set[str] = set()
        prefixes = ["aws:requesttag/"]  # the request's tags are all in the record: others are absent
        tags = self.tags
        if tags is None:
            absent.add("aws:tagkeys")
        else:
            for key, tag_values in tags.items():
                values[f"aws:requesttag/{key}".lower()] = tuple(tag_values)
            values["aws:tagkeys"] = tuple(tags)
        fact_values, fact_absent, fact_prefixes = _fact_values(self.facts, principal_arn)
        values.update(fact_values)
        prefixes.extend(p.lower() for p in fact_prefixes)
        absent.update(key.lower() for key in fact_absent)
        absent.difference_update(values)  # a key given a value is not absent
        self.values, self.absent, self.absent_prefixes = values, absent, tuple(prefixes)
        return values

    def parsed(self, with_resources: bool = True) -> ParsedRecord:
        """The whole request (parse_record's answer); the head hands its keys on, so use it no more."""
        caller = self.caller
        values = self.values if self.values is not None else self._build_keys()
        context = RecordContext(
            values,
            self.absent,
            self.absent_prefixes,
            self.record,
            caller.principal_type,
            self.service,
            caller.partition,
        )
        resources = context.resources() if with_resources else None
        return ParsedRecord(
            event_id=_s(self.record.get("eventID")) or "",
            event_name=self.event_name,
            principal=str(caller.principal_arn),
            request=Request(self.action, context, resources),
            scp_exempt_reason=self.exempt,
        )


def read_head(
    record: Mapping[str, Any],
    management_account: str | None = None,
    max_depth: int = LIMITS.max_depth,
    *,
    facts: OrgFacts | None = None,
) -> RecordHead:
    """parse_record's first half: everything that can make the record malformed, the caller, the
    action, and whether SCPs apply to the call."""
    caller = _checked(record, max_depth)
    facts = facts or _NO_FACTS
    management_account = facts.management_account or management_account
    head = RecordHead(record, caller, _service(record["eventSource"]), record["eventName"], facts)
    # SCPs bind the calling principal's account, not the account the call acts on: a member account's
    # role acting in the management account is restricted, the management account's role never is.
    if not head.exempt and management_account:
        account = caller.principal_account or _s(record.get("recipientAccountId"))
        if account == management_account:
            head.exempt = "SCPs do not restrict the management account"
    return head


def settled_by_head(keys: Iterable[str]) -> bool:
    """Whether a RecordHead answers every one of these (lower-case) keys as the whole context does:
    none of them is built by a deferred group."""
    return not any(key in _DEFERRED_KEYS for key in keys)


def settled_by_caller(keys: Iterable[str]) -> bool:
    """Whether these (lower-case) keys, settled by the head, are all the caller's own or the
    organization's facts: the same answers for every record of one caller (no request tag among them)."""
    return settled_by_head(keys) and not any(key == "aws:tagkeys" or key.startswith("aws:requesttag/") for key in keys)
