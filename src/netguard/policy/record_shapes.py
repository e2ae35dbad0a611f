"""Records as they come from CloudTrail log files, Athena, Glue and CloudTrail Lake, in one shape.

`normalise` turns a record of any of those shapes into the record CloudTrail writes to its log files
(AWS CloudTrail User Guide, "CloudTrail record contents" and "CloudTrail userIdentity element"), so the
request-context builder reads one shape only:

- Athena tables made with the documented DDL ("Create a table for CloudTrail logs in Athena"), read
  back as JSON: lower-case column and struct field names (`eventsource`, `useridentity.sessioncontext
  .sessionissuer.arn`), `requestparameters`, `responseelements` and `additionaleventdata` as JSON
  strings, `readonly` as "true"/"false", `resources` as a list of {arn, accountid, type}.
- Glue tables (a crawler with the CloudTrail classifier, or the awslabs service-log catalog): lower-case
  top-level columns, structs keeping the case of the JSON (`useridentity.sessionContext`),
  `requestparameters` as a struct holding every field seen in any record (null where a record has
  none), or `json_`-prefixed columns holding JSON strings (`json_requestparameters`).
- CloudTrail Lake query results ("Supported SQL schemas for event data stores"): `eventtime` and
  `creationdate` are timestamps ('2026-11-02 12:00:00.000'), `requestparameters`, `responseelements`
  and `additionaleventdata` are map<string,string> (nested values as JSON text) or JSON strings,
  `readonly` and `managementevent` booleans, and `eventjson` the whole event as JSON text.

Field names are matched whatever their case (and with underscores or a `json_` prefix ignored), values
given as JSON text are parsed with the project's bounded parser, and a field that must be an object but
holds text that is not JSON raises MalformedRecord naming it: an error for that record, never a crash.
A record already in the CloudTrail shape is returned as it is, unchanged and uncopied.

`canonical_action` gives the `service:Action` name reports group by, and `outcome` the classification of
calls CloudTrail recorded as failed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

from netguard.iam.evaluator import ALLOW
from netguard.iam.reference_data import iam_reference
from netguard.policy.bounded import Refused, loads
from netguard.policy.cloudtrail import BadRow, MalformedRecord
from netguard.policy.request_context import is_mapping

# A call CloudTrail recorded as failed (errorCode set) that the guardrails would deny or cannot decide:
# it failed already when it was made, so the guardrail changes nothing for it. Reported apart, never as impact.
ALREADY_FAILING = "AlreadyFailing"

# How a field's value is converted, besides the recasing of its name.
_KEEP = "keep"  # as given
_JSON = "json"  # an object or list that may come as JSON text; kept as text when it is not JSON (never read)
_PARAMS = "params"  # requestParameters: an object, JSON text, or a Lake map whose nested values are JSON text
_TIME = "time"  # a timestamp: Lake's 'YYYY-MM-DD HH:MM:SS.fff' or a datetime becomes ISO 8601 with Z
_BOOL = "bool"  # "true"/"false" become booleans (readOnly, managementEvent)
_SOURCE = "source"  # eventSource: a host name, lower case


class _List:
    """A list of objects of one schema (resources)."""

    def __init__(self, schema: dict[str, tuple[str, Any]]) -> None:
        self.schema = schema


def _schema(*names: str, **nested: Any) -> dict[str, tuple[str, Any]]:
    """Field name folded (lower case, no underscores) -> (the name CloudTrail writes, its conversion)."""
    fields: dict[str, tuple[str, Any]] = {_fold(name): (name, _KEEP) for name in names}
    fields.update({_fold(name): (name, kind) for name, kind in nested.items()})
    return fields


def _fold(name: str) -> str:
    folded = name.lower()
    if folded.startswith("json_"):  # the awslabs Glue catalog: json_requestparameters holds JSON text
        folded = folded[5:]
    return folded.replace("_", "")


_ISSUER = _schema("type", "principalId", "arn", "accountId", "userName")
_SESSION_CONTEXT = _schema(
    "sourceIdentity",
    "ec2RoleDelivery",
    "ec2IssuedInVPC",
    "assumedRoot",
    attributes=_schema("mfaAuthenticated", creationDate=_TIME),
    sessionIssuer=_ISSUER,
    webIdFederationData=_schema("federatedProvider", attributes=_JSON),
)
_IDENTITY = _schema(
    "type",
    "principalId",
    "arn",
    "accountId",
    "accessKeyId",
    "userName",
    "invokedBy",
    "identityProvider",
    "credentialId",
    sessionContext=_SESSION_CONTEXT,
    onBehalfOf=_schema("userId", "identityStoreArn"),
    inScopeOf=_schema("sourceArn", "sourceAccount", "issuerType", "credentialsIssuedTo"),
)
_RECORD = _schema(
    "eventVersion",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestID",
    "eventID",
    "eventType",
    "apiVersion",
    "recipientAccountId",
    "sharedEventID",
    "vpcEndpointId",
    "vpcEndpointAccountId",
    "eventCategory",
    "sessionCredentialFromConsole",
    "annotation",
    userIdentity=_IDENTITY,
    eventTime=_TIME,
    eventSource=_SOURCE,
    requestParameters=_PARAMS,
    responseElements=_JSON,
    additionalEventData=_JSON,
    serviceEventDetails=_JSON,
    edgeDeviceDetails=_JSON,
    insightDetails=_JSON,
    eventContext=_JSON,
    readOnly=_BOOL,
    managementEvent=_BOOL,
    resources=_List(_schema("ARN", "ARNPrefix", "accountId", "type")),
    addendum=_schema("reason", "updatedFields", "originalRequestID", "originalEventID"),
    tlsDetails=_schema("tlsVersion", "cipherSuite", "clientProvidedHostHeader"),
)

_LAKE_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.\d+)?")


def normalise(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record in the shape CloudTrail writes to its log files; raises MalformedRecord, naming the
    field, when a field that must be an object holds text that is not JSON. Idempotent."""
    if record.__class__ is dict and _cloudtrail_shaped(record):  # a log file's record: the usual case
        return record
    if not isinstance(record, Mapping):
        raise MalformedRecord("is not a JSON object")
    if isinstance(record, BadRow):  # a results row that is no record (policy/athena.py)
        raise MalformedRecord(record.reason)
    if _cloudtrail_shaped(record):
        return record if isinstance(record, dict) else dict(record)
    event_json = next((v for k, v in record.items() if isinstance(k, str) and _fold(k) == "eventjson"), None)
    if isinstance(event_json, str):  # CloudTrail Lake's eventjson column: the event as CloudTrail wrote it
        event = _parse(event_json, "eventJson")
        if not isinstance(event, Mapping):
            raise MalformedRecord("missing or malformed field eventJson: not a JSON object")
        return normalise(event)
    columnar = _columnar(record)
    return _recase(record, _RECORD, "", columnar)


def _cloudtrail_shaped(record: Mapping[str, Any]) -> bool:
    """The fast path: the fields the evaluator reads are present under CloudTrail's names, and none holds
    a value only the other shapes have (JSON text, a Lake timestamp, an upper-case host name)."""
    source = record.get("eventSource")
    if not isinstance(source, str) or not (source.islower() or source == source.lower()) or "eventName" not in record:
        return False
    identity = record.get("userIdentity")
    if identity.__class__ is not dict and not is_mapping(identity):
        return False
    params = record.get("requestParameters")
    if params.__class__ is not dict and isinstance(params, str):
        return False
    when = record.get("eventTime")
    if when.__class__ is str:  # a Lake time has a space where CloudTrail's has a T
        return " " not in when or not _lake_time(when)
    return not (isinstance(when, datetime) or (isinstance(when, str) and _lake_time(when)))


@lru_cache(maxsize=4096)
def _lake_time(text: str) -> bool:
    """Whether eventTime is in CloudTrail Lake's form: a trail has few distinct times per second."""
    return _LAKE_TIME.fullmatch(text) is not None


def _columnar(record: Mapping[str, Any]) -> bool:
    """Whether the record comes from a table (Athena, Glue, Lake) rather than a log file: its names are
    not CloudTrail's, or its time is a table's timestamp. Tables hold nulls for absent fields, and Lake
    maps hold nested values as JSON text."""
    for key in record:
        spec = _RECORD.get(_fold(key)) if isinstance(key, str) else None
        if spec is not None and spec[0] != key:
            return True
    when = record.get("eventTime")
    return isinstance(when, datetime) or (isinstance(when, str) and _LAKE_TIME.fullmatch(when) is not None)


def _recase(value: Mapping[str, Any], schema: dict[str, tuple[str, Any]], path: str, columnar: bool) -> dict:
    out: dict[str, Any] = {}
    for key, item in value.items():
        spec = schema.get(_fold(key)) if isinstance(key, str) else None
        if spec is None:
            out.setdefault(key, item)
            continue
        name, kind = spec
        if name in out and key != name:
            continue  # the field under CloudTrail's own name wins over another spelling of it
        out[name] = _convert(item, kind, f"{path}{name}", columnar)
    return out


def _convert(value: Any, kind: Any, path: str, columnar: bool) -> Any:
    if value is None or kind == _KEEP:
        return value
    if isinstance(kind, dict):
        if isinstance(value, str) and _looks_like_json(value):
            value = _parse(value, path)
        return _recase(value, kind, f"{path}.", columnar) if isinstance(value, Mapping) else value
    if isinstance(kind, _List):
        if isinstance(value, str) and _looks_like_json(value):
            value = _parse(value, path)
        if not isinstance(value, list):
            return value
        items = [_parse(v, path) if isinstance(v, str) and _looks_like_json(v) else v for v in value]
        return [_recase(v, kind.schema, f"{path}.", columnar) if isinstance(v, Mapping) else v for v in items]
    if kind == _PARAMS:
        return _parameters(value, path, columnar)
    if kind == _JSON:
        if isinstance(value, str) and _looks_like_json(value):
            try:
                return loads(value)
            except Refused:
                return value  # never read by the evaluator: the text is kept rather than the record lost
        return value
    if kind == _TIME:
        return _time(value)
    if kind == _BOOL:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return value
    if kind == _SOURCE:
        return value.lower() if isinstance(value, str) else value
    return value  # pragma: no cover - every kind is handled above


def _parameters(value: Any, path: str, columnar: bool) -> Any:
    """requestParameters: JSON text parsed (an error when it is not JSON); from a table, nulls (fields
    other records had) dropped and a Lake map's nested values parsed from their JSON text."""
    if isinstance(value, str):
        return None if not value.strip() else _parse(value, path)
    if columnar and isinstance(value, Mapping):
        return _table_value(value)
    return value


def _table_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _table_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_table_value(v) for v in value]
    if isinstance(value, str) and _looks_like_json(value) and value.strip() != "null":
        try:
            return _table_value(loads(value))
        except Refused:
            return value  # a string value that only looks like JSON
    return value


def _time(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, str):
        match = _LAKE_TIME.fullmatch(value)
        if match:
            return f"{match.group(1)}T{match.group(2)}Z"
    return value


def _looks_like_json(text: str) -> bool:
    stripped = text.lstrip()
    return stripped[:1] in ("{", "[") or stripped.rstrip() == "null"


def _parse(text: str, path: str) -> Any:
    try:
        return loads(text)
    except Refused as exc:
        where = f" ({exc.position})" if exc.position else ""
        raise MalformedRecord(
            f"missing or malformed field {path}: text that is not JSON: {exc.message}{where}"
        ) from None


def label(record: Any) -> str:
    """How an error names a record before it is normalised: its eventID under any spelling of the name."""
    if isinstance(record, Mapping):
        for key, value in record.items():
            if isinstance(key, str) and _fold(key) == "eventid" and isinstance(value, str):
                return value if len(value) <= 80 else value[:77] + "..."
    return "?"


# --- failed calls ----------------------------------------------------------------------------------


def error_code(record: Mapping[str, Any]) -> str | None:
    """The errorCode of a call CloudTrail recorded as failed (Client.UnauthorizedOperation, AccessDenied,
    ...), None for a call that succeeded."""
    code = record.get("errorCode")
    return code if isinstance(code, str) and code else None


def outcome(decision: str, code: str | None) -> str:
    """What a report counts a record as: its decision, or ALREADY_FAILING for a call that failed when it
    was made and that the guardrails would deny or cannot decide (not an impact of the guardrails)."""
    return ALREADY_FAILING if code and decision != ALLOW else decision


# --- canonical action names ------------------------------------------------------------------------

# IAM service prefix -> botocore service names, where they differ.
_BOTOCORE_SERVICES = {
    "elasticloadbalancing": ("elbv2", "elb"),
    "ses": ("ses", "sesv2"),
    "es": ("es", "opensearch"),
}


@cache
def iam_actions() -> dict[str, dict[str, str]]:
    """IAM actions by service prefix: lower-case name -> the name as the IAM reference data cfn-lint ships
    (cfnlint/data/AdditionalSpecs/Policies.json) writes it. Found without importing cfn-lint, which takes
    half a second; empty when the file cannot be read, and names are then kept as written."""
    try:
        data = iam_reference()
    except (OSError, ValueError):
        return {}
    return {
        prefix.lower(): {name.lower(): name for name in service.get("Actions", {})}
        for prefix, service in data.items()
        if isinstance(service, dict)
    }


@cache
def _botocore_loader() -> Any:
    from botocore.loaders import create_loader

    return create_loader()


@cache
def api_operations(prefix: str) -> dict[str, str]:
    """lower-case name -> API operation name, from botocore's service models for an IAM prefix. CloudTrail's
    eventName is the API operation's name, so this gives its case where the IAM data has none."""
    try:
        from botocore.exceptions import BotoCoreError

        loader = _botocore_loader()
    except ImportError:
        return {}
    try:
        available = set(loader.list_available_services("service-2"))
        names: dict[str, str] = {}
        for service in _BOTOCORE_SERVICES.get(prefix, (prefix,)):
            if service in available:
                for operation in loader.load_service_model(service, "service-2").get("operations", {}):
                    names.setdefault(operation.lower(), operation)
        return names
    except (BotoCoreError, OSError, ValueError):  # a model botocore cannot load: names are kept as written
        return {}


@lru_cache(maxsize=4096)
def canonical_action(action: str) -> str:
    """`service:Action` with the service prefix in lower case and the action as IAM names it
    ("EC2:deletedhcpoptions" -> "ec2:DeleteDhcpOptions"); an action IAM does not know keeps its name
    as written. The case comes from cfn-lint's IAM data where it has one; cfn-lint 1.x writes every
    action in lower case, so then from botocore's API operation names (what eventName holds)."""
    prefix, sep, name = action.partition(":")
    if not sep:
        return action
    prefix = prefix.lower()
    lower = name.lower()
    known = iam_actions().get(prefix)
    if known is None or lower not in known:
        return f"{prefix}:{name}"
    cased = known[lower]
    if cased == lower:
        cased = api_operations(prefix).get(lower, name)
    return f"{prefix}:{cased}"
