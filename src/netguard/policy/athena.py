"""Replay at Athena's scale: the SQL that selects the guarded records, and the readers of its results.

An organization trail is terabytes; Athena reads it where it lies. `netguard policy replay --emit-sql`
prints a query over a table made with AWS's documented DDL ("Create a table for CloudTrail logs in
Athena using manual partitioning", Athena User Guide; `CLOUDTRAIL_DDL_COLUMNS` below) that keeps only
the records some Deny could match, within the date, account and region filters. Its results, downloaded
as Athena's CSV file or printed by `aws athena get-query-results`, go back through `--events`, so the
decision stays in netguard's one evaluator.

Three facts shape the query:
- Struct, array and map columns come back from Athena as `{a=1, b=2}` text, which nothing can parse
  back. The query converts them to JSON text, and `record_shapes.normalise` rebuilds the records.
- The pre-filter is the one local replay applies (`Compiled.needs_evaluation`), written as regular
  expressions over `service:Action` (case-insensitive). It may keep more than local replay evaluates,
  never less. Rows with no eventsource or eventname are kept, so that netguard reports them as errors.
- Athena runs Trino SQL. The tests run the same text in DuckDB, and the few functions that differ live
  in `DIALECTS`, the only place the two texts differ.

The readers (`looks_like_csv`, `csv_records`, `result_set_records`) are called by
`cloudtrail.decode_records`: files are recognised by content, and a malformed row becomes a
`cloudtrail.BadRow`, an error for that record only.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from netguard.policy.bounded import Refused, loads
from netguard.policy.cloudtrail import _SERVICE_PREFIX, BadRow, RecordError
from netguard.policy.limits import LIMITS, Limits

# The column list of the documented DDL (Athena User Guide, "Create a table for CloudTrail logs in
# Athena using manual partitioning"), as AWS prints it. Fields CloudTrail writes that it lacks
# (useridentity.sessioncontext.sourceidentity, assumedroot, inscopeof, eventcontext, ...) are not in
# such a table, so a replay of its rows cannot read them either (docs/replay-athena.md).
CLOUDTRAIL_DDL_COLUMNS = """
eventversion STRING,
useridentity STRUCT<
    type:STRING, principalid:STRING, arn:STRING, accountid:STRING, invokedby:STRING,
    accesskeyid:STRING, username:STRING,
    onbehalfof: STRUCT<userid: STRING, identitystorearn: STRING>,
    sessioncontext:STRUCT<
        attributes:STRUCT<mfaauthenticated:STRING, creationdate:STRING>,
        sessionissuer:STRUCT<type:STRING, principalid:STRING, arn:STRING, accountid:STRING, username:STRING>,
        ec2roledelivery:string,
        webidfederationdata: STRUCT<federatedprovider: STRING, attributes: map<string,string>>
    >
>,
eventtime STRING,
eventsource STRING,
eventname STRING,
awsregion STRING,
sourceipaddress STRING,
useragent STRING,
errorcode STRING,
errormessage STRING,
requestparameters STRING,
responseelements STRING,
additionaleventdata STRING,
requestid STRING,
eventid STRING,
resources ARRAY<STRUCT<arn:STRING, accountid:STRING, type:STRING>>,
eventtype STRING,
apiversion STRING,
readonly STRING,
recipientaccountid STRING,
serviceeventdetails STRING,
sharedeventid STRING,
vpcendpointid STRING,
vpcendpointaccountid STRING,
eventcategory STRING,
addendum STRUCT<reason:STRING, updatedfields:STRING, originalrequestid:STRING, originaleventid:STRING>,
sessioncredentialfromconsole STRING,
edgedevicedetails STRING,
tlsdetails STRUCT<tlsversion:STRING, ciphersuite:STRING, clientprovidedhostheader:STRING>
"""

# A type: ("string",), ("struct", ((name, type), ...)), ("array", type) or ("map", key, value).
Type = tuple


def parse_columns(text: str = CLOUDTRAIL_DDL_COLUMNS) -> list[tuple[str, Type]]:
    """The (name, type) pairs of a Hive column list such as the DDL's: the one source of the query's
    select list and of the tests' DuckDB table."""
    tokens = re.findall(r"[A-Za-z_][A-Za-z0-9_]*|[<>,:]", text)
    position = 0

    def take(expected: str | None = None) -> str:
        nonlocal position
        token = tokens[position]
        if expected is not None and token != expected:
            raise ValueError(f"DDL: expected {expected!r}, found {token!r}")
        position += 1
        return token

    def parse_type() -> Type:
        kind = take().lower()
        if kind == "struct":
            take("<")
            fields = []
            while True:
                name = take().lower()
                take(":")
                fields.append((name, parse_type()))
                if take() == ">":
                    return ("struct", tuple(fields))
        if kind == "array":
            take("<")
            item = parse_type()
            take(">")
            return ("array", item)
        if kind == "map":
            take("<")
            key = parse_type()
            take(",")
            value = parse_type()
            take(">")
            return ("map", key, value)
        return (kind,)

    columns = []
    while position < len(tokens):
        name = take().lower()
        columns.append((name, parse_type()))
        if position < len(tokens):
            take(",")
    return columns


@dataclass(frozen=True)
class Dialect:
    """The functions Athena (Trino) and DuckDB spell differently; everything else is the same text."""

    json_text: str  # a struct, array or map column as JSON text
    event_time: str  # eventtime (ISO 8601 text) as a timestamp, NULL when it is not one
    moment: str  # an ISO 8601 literal as a timestamp
    regex: str  # a regular expression match: (text, pattern)


DIALECTS = {
    "athena": Dialect(
        json_text="json_format(CAST({0} AS JSON))",
        event_time="try(from_iso8601_timestamp({0}))",
        moment="from_iso8601_timestamp('{0}')",
        regex="regexp_like({0}, '{1}')",
    ),
    # Tested only: DuckDB runs the query over a table of the same schema in tests/test_athena.py.
    "duckdb": Dialect(
        json_text="CAST(to_json({0}) AS VARCHAR)",
        event_time="TRY_CAST({0} AS TIMESTAMPTZ)",
        moment="CAST('{0}' AS TIMESTAMPTZ)",
        regex="regexp_matches({0}, '{1}')",
    ),
}

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}")


def check_table_name(name: str) -> str:
    """A table name as `[catalog.][database.]table`, refused otherwise: it goes into SQL unquoted."""
    if not _TABLE_NAME.fullmatch(name):
        raise ValueError(f"not a table name: {name[:60]!r} (letters, digits, _; catalog.database.table at most)")
    return name


def _action(dialect: Dialect) -> str:
    """`service:Action` as local replay computes it: the eventsource host's first label in lower case,
    renamed where IAM's prefix differs (cloudtrail._SERVICE_PREFIX), then ':' and the eventname."""
    host = "lower(split_part(eventsource, '.', 1))"
    renamed = " ".join(f"WHEN '{host_name}' THEN '{prefix}'" for host_name, prefix in sorted(_SERVICE_PREFIX.items()))
    return f"(CASE {host} {renamed} ELSE {host} END || ':' || eventname)"


def _matches(dialect: Dialect, action: str, patterns: Iterable[re.Pattern[str]]) -> str:
    """One regular expression for patterns, matched against the whole action ignoring case (as the
    compiled patterns, made with IGNORECASE and DOTALL, are fullmatched)."""
    texts = sorted({p.pattern for p in patterns})
    alternatives = "|".join(texts)
    return dialect.regex.format(action, f"(?is)^(?:{alternatives})$".replace("'", "''"))


def guard_condition(compiled: Any, dialect: Dialect) -> str | None:
    """The SQL condition true for every (eventsource, eventname) `compiled.needs_evaluation` is true
    for; None when every record must be evaluated. compiled is a replay.Compiled or an
    orgchain.ChainedPolicies (then any account's chain after the rollout may need the record)."""
    parts = getattr(compiled, "distinct_after", None)
    conditions = []
    for part in parts if parts is not None else [compiled]:
        condition = _one_condition(part, dialect)
        if condition is None:
            return None
        conditions.append(condition)
    return " OR ".join(f"({c})" for c in conditions) if conditions else "FALSE"


def _one_condition(compiled: Any, dialect: Dialect) -> str | None:
    if compiled.deny_everything:
        return None
    action = _action(dialect)
    conditions = []
    if compiled.deny_patterns:
        conditions.append(_matches(dialect, action, compiled.deny_patterns))
    if not compiled.allow_everything:
        # needs_evaluation: a call not every level grants unconditionally is an implicit deny to find
        levels = [level for level in compiled.allow_patterns if not any(p.pattern == ".*" for p in level)]
        if any(not level for level in levels):
            return None  # a level grants nothing unconditionally: every call may be implicitly denied
        granted = " AND ".join(_matches(dialect, action, level) for level in levels)
        if granted:
            conditions.append(f"NOT ({granted})")
    return " OR ".join(conditions) if conditions else "FALSE"


def _select_list(dialect: Dialect) -> list[str]:
    """Every DDL column, struct/array/map columns as JSON text under their own names."""
    return [
        dialect.json_text.format(name) + f" AS {name}" if kind[0] in ("struct", "array", "map") else name
        for name, kind in parse_columns()
    ]


def build_sql(
    compiled: Any,
    *,
    table: str = "cloudtrail_logs",
    since: datetime | None = None,
    until: datetime | None = None,
    accounts: Iterable[str] = (),
    regions: Iterable[str] = (),
    dialect: str = "athena",
    header: Sequence[str] = (),
    partitions: str = "none",
) -> str:
    """The query selecting the records `netguard policy replay` would evaluate, with the filters local
    replay applies (eventtime within --since/--until inclusive, recipientaccountid in --accounts,
    awsregion in --regions). header lines become the opening SQL comment."""
    spelled = DIALECTS[dialect]
    check_table_name(table)
    lines = [f"-- {line}" for line in header]
    where = []
    guard = guard_condition(compiled, spelled)
    if guard is None:
        lines.append("-- pre-filter: none; every record must be evaluated (a Deny with NotAction, or a")
        lines.append("-- level that grants nothing unconditionally, can deny any call)")
    else:
        lines.append("-- pre-filter: only the eventsource/eventname pairs a Deny (explicit or implicit) can match;")
        lines.append("-- rows without them are kept, for netguard to report as errors")
        where.append(f"(eventsource IS NULL OR eventname IS NULL OR {guard})")
    if since or until:
        moment = spelled.event_time.format("eventtime")
        if since:
            where.append(f"{moment} >= {spelled.moment.format(_iso(since))}")
        if until:
            where.append(f"{moment} <= {spelled.moment.format(_iso(until))}")
    if accounts:
        where.append(f"recipientaccountid IN ({_literals(accounts)})")
    if regions:
        where.append(f"awsregion IN ({_literals(regions)})")
    where.extend(_partition_filters(partitions, since, until, regions))
    lines.append("SELECT")
    lines.append(",\n".join(f"  {column}" for column in _select_list(spelled)))
    lines.append(f"FROM {table}")
    if where:
        lines.append("WHERE " + "\n  AND ".join(where))
    return "\n".join(lines) + ";\n"


# The partition columns of AWS's two documented tables, which a query names so that Athena reads only
# the S3 folders that can hold records in scope (and bills only for them).
PARTITIONS = {
    "none": "no partition columns: Athena reads the whole table",
    "manual": "region, year, month, day (manual partitioning: ALTER TABLE ADD PARTITION per folder)",
    "projection": "timestamp as yyyy/MM/dd (partition projection, one region per table)",
}


def _partition_filters(
    partitions: str, since: datetime | None, until: datetime | None, regions: Iterable[str]
) -> list[str]:
    """What local replay skips by a file's AWSLogs/.../<region>/YYYY/MM/DD/ path (Filters.path_may_match:
    a folder of a day before --since's day or after --until's day, or of another region), said with the
    table's partition columns; the eventtime, account and region filters still decide each record."""
    if partitions not in PARTITIONS:
        raise ValueError(f"not a partition scheme: {partitions!r} (choose from {', '.join(PARTITIONS)})")
    if partitions == "none":
        return []
    day = "(year || '/' || month || '/' || day)" if partitions == "manual" else '"timestamp"'
    found = []
    if since:
        found.append(f"{day} >= '{since:%Y/%m/%d}'")
    if until:
        found.append(f"{day} <= '{until:%Y/%m/%d}'")
    if partitions == "manual" and regions:
        found.append(f"region IN ({_literals(regions)})")
    return found


def _iso(moment: datetime) -> str:
    """A filter's moment (naive, UTC, as the command line makes it) as ISO 8601 with Z."""
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _literals(values: Iterable[str]) -> str:
    return ", ".join("'" + value.replace("'", "''") + "'" for value in sorted(values))


# --- Athena's results, read back ------------------------------------------------------------------

_BOM = b"\xef\xbb\xbf"
# The column names that make a header Athena results of a CloudTrail query (or of CloudTrail Lake's
# eventjson column alone).
_REQUIRED = ({"eventsource", "eventname"}, {"eventjson"})


def looks_like_csv(raw: bytes) -> bool:
    """Whether a file's (inflated) bytes are CSV rather than JSON: its first byte is no JSON opener and
    its first line holds a comma (Athena quotes every value, so it starts with a double quote)."""
    text = raw[len(_BOM) :] if raw.startswith(_BOM) else raw
    first = text.lstrip()[:1]
    if first in (b"{", b"[", b""):
        return False
    line = text.split(b"\n", 1)[0]
    return b"," in line


# One CSV value and what ends it: a quoted value ("" inside is one quote), or an unquoted one (Athena
# writes NULL as nothing, unquoted; an empty string as ""); then a comma, a line end, or the end.
_FIELD = re.compile(r'(?:"([^"]*(?:""[^"]*)*)"|([^,"\r\n]*))(,|\r?\n|\Z)')
_LINE_END = re.compile(r"\r?\n")


def _csv_rows(text: str) -> Iterable[tuple[int, list[str | None] | str]]:
    """(row number, values) per row, or (row number, reason) for a row that is not CSV; NULL (an
    unquoted empty value) is None. Rows are numbered from 1, the header included."""
    position, number, end = 0, 0, len(text)
    while position < end:
        number += 1
        values: list[str | None] = []
        while True:
            match = _FIELD.match(text, position)
            if match is None or (match.end() == position and position < end):
                following = _LINE_END.search(text, position)
                position = following.end() if following else end
                yield (
                    number,
                    "not CSV: a quote inside an unquoted value, text after a closing quote, or a quote never closed",
                )
                break
            quoted, bare, separator = match.groups()
            values.append(quoted.replace('""', '"') if quoted is not None else (bare or None))
            position = match.end()
            if separator != ",":
                yield number, values
                break


def csv_records(raw: bytes, name: str, limits: Limits = LIMITS) -> list[Any] | RecordError:
    """The rows of Athena's CSV results file as records {column: value} (NULLs left out), or the
    error for a file that is not such a file. A malformed row becomes a BadRow naming it."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return RecordError(name, f"not UTF-8 text (byte {exc.start}): not Athena's CSV results")
    rows = iter(_csv_rows(text))
    header = next(rows, None)
    if header is None or isinstance(header[1], str):
        return RecordError(name, "CSV without a header row: not Athena's CSV results")
    columns = [(value or "").strip().lower() for value in header[1]]
    problem = _header_problem(columns)
    if problem:
        return RecordError(name, problem)
    records: list[Any] = []
    for number, values in rows:
        if len(records) >= limits.max_records:
            return RecordError(
                name, f"over {limits.max_records} rows, the limit per file (--max-records); none evaluated"
            )
        if isinstance(values, str):
            records.append(BadRow(f"CSV row {number}: {values}"))
        elif values == [None]:
            continue  # an empty line (the file's last line end)
        elif len(values) != len(columns):
            records.append(
                _bad(columns, values, f"CSV row {number}: {len(values)} values, the header has {len(columns)}")
            )
        else:
            records.append(_record(columns, values))
    return records


def _header_problem(columns: list[str]) -> str | None:
    if not any(needed <= set(columns) for needed in _REQUIRED):
        shown = ", ".join(columns[:6]) + (", ..." if len(columns) > 6 else "")
        return (
            f"a CSV header without eventsource and eventname columns ({shown}): not the results of "
            "`netguard policy replay --emit-sql`"
        )
    if len(set(columns)) != len(columns):
        return "a CSV header naming a column twice: which value is the record's cannot be told"
    return None


_STRUCTS = {name: kind for name, kind in parse_columns() if kind[0] in ("struct", "array")}


def _record(columns: list[str], values: Sequence[str | None]) -> dict[str, Any]:
    """A row as a record: NULLs left out, and a struct column that came as a JSON array named by the DDL.

    Trino (Athena engine version 3) casts a ROW with field names to a JSON object; Presto (engine
    version 2) casts it to an array of the values in field order. The array is named with the
    documented DDL's fields when it has as many values, so that the query's results read back from
    either engine; any other array is left for normalise to refuse, naming the field."""
    record = {column: value for column, value in zip(columns, values, strict=True) if value is not None}
    for column, kind in _STRUCTS.items():
        value = record.get(column)
        if isinstance(value, str) and value.startswith("[") and (kind[0] == "struct" or value.startswith("[[")):
            with contextlib.suppress(Refused):  # not JSON: normalise reports it, naming the field
                record[column] = _named(loads(value), kind)
    return record


def _named(value: Any, kind: Type) -> Any:
    """value with each positional struct (a list as long as the struct's fields) made an object."""
    if kind[0] == "struct" and isinstance(value, list) and len(value) == len(kind[1]):
        return {name: _named(item, field) for (name, field), item in zip(kind[1], value, strict=True)}
    if kind[0] == "array" and isinstance(value, list):
        return [_named(item, kind[1]) for item in value]
    return value


def _bad(columns: list[str], values: Sequence[Any], reason: str) -> BadRow:
    """A BadRow carrying the row's eventid when it can be found, so that the error names the event."""
    row = BadRow(reason)
    if "eventid" in columns:
        index = columns.index("eventid")
        if index < len(values) and isinstance(values[index], str):
            row["eventid"] = values[index]
    return row


def result_set_records(result_set: Any, name: str, limits: Limits = LIMITS) -> list[Any] | RecordError:
    """The rows of Athena's GetQueryResults output (`aws athena get-query-results`: ResultSet.Rows, each
    {"Data": [{"VarCharValue": text}, ...]}, a NULL as {}) as records. The column names come from
    ResultSetMetadata.ColumnInfo, or else from the first row; a first row that repeats them is the
    header Athena puts on the first page, and is skipped."""
    rows = result_set.get("Rows") if isinstance(result_set, dict) else None
    if not isinstance(rows, list):
        return RecordError(name, "ResultSet without a Rows list: not Athena's GetQueryResults output")
    info = (result_set.get("ResultSetMetadata") or {}).get("ColumnInfo")
    columns: list[str] | None = None
    if isinstance(info, list) and info and all(isinstance(c, dict) and isinstance(c.get("Name"), str) for c in info):
        columns = [c["Name"].lower() for c in info]
    first = _cells(rows[0]) if rows else None
    start = 0
    if columns is None:
        if not isinstance(first, list) or not all(isinstance(v, str) for v in first):
            return RecordError(name, "ResultSet without ColumnInfo and without a header row")
        columns, start = [v.lower() for v in first], 1
    elif isinstance(first, list) and [(v or "").lower() for v in first] == columns:
        start = 1
    problem = _header_problem(columns)
    if problem:
        return RecordError(name, problem.replace("a CSV header", "a ResultSet"))
    if len(rows) - start > limits.max_records:
        return RecordError(
            name,
            f"{len(rows) - start} rows, over the limit of {limits.max_records} per file (--max-records); "
            "none evaluated",
        )
    records: list[Any] = []
    for number, row in enumerate(rows[start:], start=start + 1):
        values = _cells(row)
        if isinstance(values, str):
            records.append(BadRow(f"ResultSet row {number}: {values}"))
        elif len(values) != len(columns):
            records.append(
                _bad(columns, values, f"ResultSet row {number}: {len(values)} values, {len(columns)} columns")
            )
        else:
            records.append(_record(columns, values))
    return records


def _cells(row: Any) -> list[str | None] | str:
    """A ResultSet row's values (None for NULL), or why it is not a row."""
    data = row.get("Data") if isinstance(row, dict) else None
    if not isinstance(data, list):
        return 'not a row: expected {"Data": [...]}'
    values: list[str | None] = []
    for cell in data:
        if not isinstance(cell, dict):
            return 'not a row: a value that is not {"VarCharValue": text}'
        value = cell.get("VarCharValue")
        if value is not None and not isinstance(value, str):
            return "not a row: a VarCharValue that is not text"
        values.append(value)
    return values


# --- the command ----------------------------------------------------------------------------------


def emit_sql(args: Any, compiled: Any, chains: Any = None) -> str:
    """`policy replay --emit-sql`: the query, opened by a comment naming the netguard version, the
    policies, the filters and how to feed the results back."""
    from netguard import __version__
    from netguard.errors import NetguardError

    try:
        check_table_name(args.table)
    except ValueError as exc:
        raise NetguardError("--table", str(exc)) from None
    accounts = sorted(set().union(*args.accounts)) if args.accounts else []
    regions = sorted(set().union(*args.regions)) if args.regions else []
    if args.since and args.until and args.since > args.until:
        raise NetguardError("--since", f"{args.since.isoformat()} is after --until {args.until.isoformat()}: swap them")
    header = [f"netguard {__version__}: policy replay --emit-sql ({args.sql_dialect} dialect)"]
    if chains is not None:
        header.append(f"organization: {args.org}, rollout --stage {args.stage} of {args.config}")
        against = f"--org {args.org} --config {args.config} --stage {args.stage}"
    else:
        levels = [", ".join(policy.name for policy in level) for level in compiled.levels]
        header.append(f"policies: {args.policies}" + ("" if args.no_full_aws_access else " (with FullAWSAccess)"))
        header.extend(f"  level {index}: {names}" for index, names in enumerate(levels, start=1))
        against = f"--policies {args.policies}" + (" --no-full-aws-access" if args.no_full_aws_access else "")
        if getattr(args, "config", None):
            against += f" --config {args.config}"
    filters = []
    if args.since:
        filters.append(f"--since {_iso(args.since)}")
    if args.until:
        filters.append(f"--until {_iso(args.until)}")
    if accounts:
        filters.append(f"--accounts {' '.join(accounts)}")
    if regions:
        filters.append(f"--regions {' '.join(regions)}")
    header.append(f"filters: {', '.join(filters) if filters else 'none'}")
    header.append(f"table: {args.table}, made with AWS's documented DDL for CloudTrail logs (docs/replay-athena.md)")
    header.append(f"partitions ({args.partitions}): {PARTITIONS[args.partitions]}")
    header.append("struct, array and map columns are selected as JSON text, for netguard to rebuild the records")
    header.append(f"replay the results: netguard policy replay {against} --events RESULTS.csv (or the JSON of")
    header.append("  aws athena get-query-results); the filters are applied here already")
    return build_sql(
        compiled,
        table=args.table,
        since=args.since,
        until=args.until,
        accounts=accounts,
        regions=regions,
        dialect=args.sql_dialect,
        header=[line.replace("\n", " ") for line in header],
        partitions=args.partitions,
    )
