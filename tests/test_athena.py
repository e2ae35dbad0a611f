"""Replay through Athena: the emitted SQL, run by DuckDB over a table of AWS's documented CloudTrail DDL
loaded with the fixture logs, gives rows that, written as Athena's CSV and GetQueryResults JSON and fed
back through --events, replay to exactly the report of the logs themselves."""

from __future__ import annotations

import copy
import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

from netguard.cli import main
from netguard.policy import athena
from netguard.policy import replay as rp
from netguard.policy.orgconfig import load_org_config
from netguard.policy.render import render_to_dir
from netguard.policy.simulate import load_policy_levels
from tests.conftest import FIXTURES

duckdb = pytest.importorskip("duckdb")

ORG = FIXTURES / "org" / "org.yaml"
LOGS = sorted((FIXTURES / "cloudtrail").glob("*.json"))
COLUMNS = athena.parse_columns()


# --- a table of the documented schema, in DuckDB ------------------------------------------------


def _duck_type(kind: tuple) -> str:
    if kind[0] == "struct":
        return "STRUCT(" + ", ".join(f'"{name}" {_duck_type(field)}' for name, field in kind[1]) + ")"
    if kind[0] == "array":
        return _duck_type(kind[1]) + "[]"
    if kind[0] == "map":
        return f"MAP({_duck_type(kind[1])}, {_duck_type(kind[2])})"
    assert kind == ("string",), kind
    return "VARCHAR"


def _text(value: Any) -> str | None:
    """A STRING column's value as the Hive JSON SerDe gives it: nested JSON as its text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"))


def _project(value: Any, kind: tuple) -> Any:
    """A CloudTrail value as a column of the DDL holds it: struct fields matched ignoring case, fields
    the DDL lacks dropped."""
    if value is None:
        return None
    if kind[0] == "struct":
        if not isinstance(value, dict):
            return None
        lower = {key.lower(): item for key, item in value.items()}
        return {name: _project(lower.get(name), field) for name, field in kind[1]}
    if kind[0] == "array":
        return [_project(item, kind[1]) for item in value] if isinstance(value, list) else None
    if kind[0] == "map":
        return {key: _text(item) for key, item in value.items()} if isinstance(value, dict) else None
    return _text(value)


def _table(records: list[dict], tmp_path: Path, partitions: list[dict[str, str]] | None = None) -> Any:
    """A DuckDB connection holding cloudtrail_logs, of the documented DDL's types, with records; and,
    with partitions (one {column: value} per record), the table's partition columns."""
    columns = COLUMNS + [(name, ("string",)) for name in (partitions[0] if partitions else {})]
    rows = []
    for index, record in enumerate(records):
        lower = {key.lower(): value for key, value in record.items()}
        rows.append({name: _project(lower.get(name), kind) for name, kind in COLUMNS})
        rows[-1].update(partitions[index] if partitions else {})
    source = tmp_path / "table.ndjson"
    source.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    connection = duckdb.connect()
    connection.execute(
        "CREATE TABLE cloudtrail_logs (" + ", ".join(f'"{name}" {_duck_type(kind)}' for name, kind in columns) + ")"
    )
    spec = "{" + ", ".join(f"'{name}': '{_duck_type(kind)}'" for name, kind in columns) + "}"
    connection.execute(
        f"INSERT INTO cloudtrail_logs SELECT * FROM read_json('{source}', format='newline_delimited', columns={spec})"
    )
    assert connection.execute("SELECT count(*) FROM cloudtrail_logs").fetchone()[0] == len(records)
    return connection


def _query(connection: Any, sql: str) -> tuple[list[str], list[tuple]]:
    cursor = connection.execute(sql)
    return [column[0] for column in cursor.description], cursor.fetchall()


# --- Athena's two result formats, as Athena writes them ---------------------------------------------


def _athena_csv(columns: list[str], rows: list[tuple]) -> str:
    """Every value quoted, quotes doubled, NULL an unquoted empty value."""

    def cell(value: Any) -> str:
        return "" if value is None else '"' + str(value).replace('"', '""') + '"'

    lines = [",".join(cell(c) for c in columns)]
    lines.extend(",".join(cell(v) for v in row) for row in rows)
    return "\n".join(lines) + "\n"


def _result_set(columns: list[str], rows: list[tuple], header: bool = True) -> dict:
    """What `aws athena get-query-results` prints: the first page starts with the header row, NULL is {}."""

    def row(values: Any) -> dict:
        return {"Data": [{} if v is None else {"VarCharValue": str(v)} for v in values]}

    return {
        "UpdateCount": 0,
        "ResultSet": {
            "Rows": ([row(columns)] if header else []) + [row(values) for values in rows],
            "ResultSetMetadata": {
                "ColumnInfo": [{"CatalogName": "hive", "Name": c, "Label": c, "Type": "varchar"} for c in columns]
            },
        },
    }


# --- running netguard ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scp(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("athena") / "scp"
    render_to_dir(load_org_config(ORG), folder)
    return folder


def _records(paths: list[Path] = LOGS) -> list[dict]:
    return [record for path in paths for record in json.loads(path.read_text())["Records"]]


def _netguard(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _replay(capsys, policies: list[str], events: Path, *filters: str) -> dict:
    code, out, err = _netguard(
        capsys, "policy", "replay", *policies, "--events", str(events), "--format", "json", "-j", "1", *filters
    )
    report = json.loads(out)
    assert code == (2 if report["errors"] else 0), err
    return report


def _emit(capsys, policies: list[str], *filters: str, dialect: str = "duckdb") -> str:
    code, out, err = _netguard(capsys, "policy", "replay", *policies, "--emit-sql", "--sql-dialect", dialect, *filters)
    assert code == 0, err
    return out


def _decisions(report: dict) -> dict:
    """What must not differ between the logs and Athena's rows: the groups, the calls already failing,
    the timeline, the errors and the counts, all but the files and records read (the query leaves out
    the records no Deny can match, and its results are one file)."""
    summary = {k: v for k, v in report["summary"].items() if k not in ("files", "records")}
    return {
        "groups": report["groups"],
        "already_failing": report["already_failing"],
        "timeline": report["timeline"],
        "errors": report["errors"],
        "summary": summary,
    }


def _through_athena(capsys, tmp_path, policies, records, *filters, name="results") -> tuple[dict, dict, int]:
    """The query for policies and filters run over records in DuckDB; its rows replayed as CSV and as
    GetQueryResults JSON. Returns both reports and the number of rows the query kept."""
    connection = _table(records, tmp_path)
    columns, rows = _query(connection, _emit(capsys, policies, *filters))
    csv_file = tmp_path / f"{name}.csv"
    csv_file.write_text(_athena_csv(columns, rows))
    json_file = tmp_path / f"{name}.json"
    json_file.write_text(json.dumps(_result_set(columns, rows)))
    return _replay(capsys, policies, csv_file), _replay(capsys, policies, json_file), len(rows)


def _logs(tmp_path: Path, records: list[dict]) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "trail.json").write_text(json.dumps({"Records": records}))
    return folder


# --- the fixture logs, through Athena's results, give the same report -----------------------------


def test_fixture_logs_through_athena_results_give_the_logs_report(tmp_path, capsys, scp):
    policies = ["--policies", str(scp), "--config", str(ORG)]
    logs = tmp_path / "logs"
    logs.mkdir()
    for path in LOGS:
        (logs / path.name).write_bytes(path.read_bytes())
    direct = _replay(capsys, policies, logs)
    assert direct["summary"]["would_be_denied"] > 10 and direct["summary"]["already_failing"] > 0
    records = _records()
    from_csv, from_json, kept = _through_athena(capsys, tmp_path, policies, records)
    assert _decisions(from_csv) == _decisions(direct)
    assert _decisions(from_json) == _decisions(direct)
    assert from_csv["summary"]["records"] == kept == direct["summary"]["evaluated"]
    assert kept < len(records)  # the pre-filter left something out: the fixtures hold unguarded calls


def test_gzip_csv_and_a_result_set_without_header_row_are_read(tmp_path, capsys, scp):
    """A later page of get-query-results has no header row: ColumnInfo names the columns."""
    policies = ["--policies", str(scp), "--config", str(ORG)]
    connection = _table(_records(), tmp_path)
    columns, rows = _query(connection, _emit(capsys, policies))
    packed = tmp_path / "results.csv.gz"
    packed.write_bytes(gzip.compress(_athena_csv(columns, rows).encode()))
    page = tmp_path / "page-2.json"
    page.write_text(json.dumps(_result_set(columns, rows, header=False)))
    plain = tmp_path / "results.csv"
    plain.write_text(_athena_csv(columns, rows))
    expected = _decisions(_replay(capsys, policies, plain))
    assert _decisions(_replay(capsys, policies, packed)) == expected
    assert _decisions(_replay(capsys, policies, page)) == expected


# --- the pre-filter keeps everything local replay would count -----------------------------------

ALLOW_LIST = {  # an allow-list SCP: every call outside ec2 and logs is implicitly denied
    "Version": "2012-10-17",
    "Statement": [{"Sid": "OnlyNetworks", "Effect": "Allow", "Action": ["ec2:*", "logs:*"], "Resource": "*"}],
}
WILDCARD_DENY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "NoVpcDeletes",
            "Effect": "Deny",
            "Action": ["ec2:Delete*", "ec2:?isassociateAddress"],
            "Resource": "*",
        },
        {"Sid": "NoAlarms", "Effect": "Deny", "Action": "cloudwatch:Put*", "Resource": "*"},
    ],
}
FULL_AWS_ACCESS = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "FullAWSAccess", "Effect": "Allow", "Action": "*", "Resource": "*"}],
}
NOT_ACTION_DENY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "OnlyEc2", "Effect": "Deny", "NotAction": ["ec2:*", "sts:*"], "Resource": "*"}],
}


def _policy_folder(tmp_path: Path, name: str, levels: list[dict[str, dict]]) -> Path:
    """levels[0] in the folder, each further level in a subfolder (load_policy_levels' layout)."""
    root = tmp_path / name
    for index, level in enumerate(levels):
        folder = root if index == 0 else root / f"level-{index}"
        folder.mkdir(parents=True, exist_ok=True)
        for file, document in level.items():
            (folder / f"{file}.json").write_text(json.dumps(document))
    return root


def _odd_records() -> list[dict]:
    """The fixture records, plus the same calls as a record may spell them: eventSource in upper case,
    eventName in lower case, CloudWatch's host (monitoring), and a record without eventName."""
    records = _records()
    template = next(r for r in records if r["eventName"] == "DeleteVpc")
    odd = []
    for index, (source, event) in enumerate(
        [
            ("EC2.amazonaws.com", "deletevpc"),
            ("ec2.amazonaws.com", "DISASSOCIATEADDRESS"),
            ("monitoring.amazonaws.com", "PutMetricAlarm"),
            ("s3.amazonaws.com", "PutBucketPolicy"),
            ("sts.amazonaws.com", "GetCallerIdentity"),
        ]
    ):
        record = copy.deepcopy(template)
        record.update(eventSource=source, eventName=event, eventID=f"odd-{index}")
        odd.append(record)
    broken = copy.deepcopy(template)
    del broken["eventName"]
    broken["eventID"] = "odd-no-name"
    return records + odd + [broken]


@pytest.mark.parametrize(
    ("name", "levels", "prefiltered"),
    [
        ("wildcards", [{"wildcards": WILDCARD_DENY}], True),
        ("allow-list", [{"deny": WILDCARD_DENY, "full": FULL_AWS_ACCESS}, {"allow-list": ALLOW_LIST}], True),
        ("not-action", [{"not-action": NOT_ACTION_DENY}], False),
    ],
)
def test_the_pre_filter_drops_nothing_local_replay_counts(tmp_path, capsys, name, levels, prefiltered):
    folder = _policy_folder(tmp_path, name, levels)
    policies = ["--policies", str(folder)] + (["--no-full-aws-access"] if name == "allow-list" else [])
    records = _odd_records()
    direct = _replay(capsys, policies, _logs(tmp_path, records))
    assert direct["summary"]["would_be_denied"] > 0
    implicit = [g for g in direct["groups"] if g["policy"] is None and g["decision"] == "Deny"]
    assert bool(implicit) is (name == "allow-list")  # S3 and STS calls outside the allow-list
    assert any(error["message"].startswith("record ") for error in direct["errors"])  # the record without a name
    from_csv, from_json, kept = _through_athena(capsys, tmp_path, policies, records)
    for report in (from_csv, from_json):
        assert _decisions(report) | {"errors": None} == _decisions(direct) | {"errors": None}
        assert [e["message"].split(": ", 1)[1] for e in report["errors"]] == [
            e["message"].split(": ", 1)[1] for e in direct["errors"]
        ]
    sql = _emit(capsys, policies)
    assert ("pre-filter: none" in sql) is not prefiltered
    if prefiltered:
        assert kept < len(records)
    else:  # every record is evaluated: the counts of records agree too
        assert from_csv["summary"]["records"] == direct["summary"]["records"] == kept


def test_the_pre_filter_ignores_case_as_the_evaluator_does(tmp_path, capsys):
    """A pattern matched with case would drop `deletevpc` from EC2.amazonaws.com, which local replay denies."""
    folder = _policy_folder(tmp_path, "wildcards", [{"wildcards": WILDCARD_DENY}])
    sql = _emit(capsys, ["--policies", str(folder)])
    connection = _table(_odd_records(), tmp_path)
    _, rows = _query(connection, sql.replace("SELECT\n", "SELECT eventid AS kept_id,\n", 1))
    kept = {row[0] for row in rows}
    assert {"odd-0", "odd-1", "odd-2", "odd-no-name"} <= kept and not {"odd-3", "odd-4"} & kept
    case_sensitive = sql.replace("'(?is)^", "'(?s)^")
    _, rows = _query(connection, case_sensitive.replace("SELECT\n", "SELECT eventid AS kept_id,\n", 1))
    assert "odd-0" not in {row[0] for row in rows}  # the test above would catch that change


# --- the filters ---------------------------------------------------------------------------------


def _spread_records() -> list[dict]:
    """The fixture records, and copies in another account, region and month."""
    records = _records()
    moved = [
        {
            **r,
            "recipientAccountId": "210987654321",
            "awsRegion": "us-east-1",
            "eventTime": "2026-10-01T08:00:00Z",
            "eventID": f"moved-{i}",
        }
        for i, r in enumerate(records)
    ]
    return records + moved


@pytest.mark.parametrize(
    "filters",
    [
        ["--since", "2026-11-01"],
        ["--until", "2026-10-01T08:00:00Z"],
        ["--since", "2026-10-01T08:00:01", "--until", "2026-11-30"],
        ["--accounts", "210987654321"],
        ["--regions", "eu-west-1,us-east-1"],
        ["--regions", "us-east-1", "--accounts", "123456789012"],
        ["--since", "2026-09-01", "--accounts", "123456789012", "210987654321", "--regions", "eu-west-1"],
    ],
)
def test_filters_in_sql_match_local_filters(tmp_path, capsys, scp, filters):
    policies = ["--policies", str(scp), "--config", str(ORG)]
    records = _spread_records()
    direct = _replay(capsys, policies, _logs(tmp_path, records), *filters)
    from_csv, _, kept = _through_athena(capsys, tmp_path, policies, records, *filters)
    assert _decisions(from_csv) == _decisions(direct)
    assert from_csv["summary"]["records"] == kept


def test_a_filter_changes_what_the_query_keeps(tmp_path, capsys, scp):
    policies = ["--policies", str(scp)]
    connection = _table(_spread_records(), tmp_path)
    everything = len(_query(connection, _emit(capsys, policies))[1])
    for filters in (["--since", "2026-11-01"], ["--accounts", "210987654321"], ["--regions", "us-east-1"]):
        kept = len(_query(connection, _emit(capsys, policies, *filters))[1])
        assert 0 < kept < everything, filters


# --- the SQL text --------------------------------------------------------------------------------


def test_athena_text_parses_as_trino_and_differs_from_duckdbs_only_in_the_dialect(capsys, scp):
    sqlglot = pytest.importorskip("sqlglot")
    filters = ["--since", "2026-11-01", "--until", "2026-11-30", "--accounts", "123456789012", "--regions", "eu-west-1"]
    athena_sql = _emit(capsys, ["--policies", str(scp)], *filters, dialect="athena")
    duckdb_sql = _emit(capsys, ["--policies", str(scp)], *filters, dialect="duckdb")
    parsed = sqlglot.parse_one(athena_sql, read="trino")
    assert parsed.find(sqlglot.exp.Select) is not None
    sqlglot.parse_one(duckdb_sql, read="duckdb")
    # Replace each dialect's spellings by a neutral one: what is left must be the same text.
    neutral = athena.Dialect(
        json_text="JSON({0})", event_time="TIME({0})", moment="MOMENT('{0}')", regex="RE({0}, '{1}')"
    )

    def neutralise(sql: str, dialect: athena.Dialect) -> str:
        sql = sql.replace("(athena dialect)", "(x dialect)").replace("(duckdb dialect)", "(x dialect)")
        for field in ("json_text", "event_time", "moment"):
            pattern = re.escape(getattr(dialect, field)).replace(r"\{0\}", "(.+?)")
            sql = re.sub(pattern, lambda m, f=field: getattr(neutral, f).format(m.group(1)), sql)
        return sql.replace(dialect.regex.partition("{0}")[0], "RE(")

    assert neutralise(athena_sql, athena.DIALECTS["athena"]) == neutralise(duckdb_sql, athena.DIALECTS["duckdb"])
    assert "json_format(CAST(useridentity AS JSON)) AS useridentity" in athena_sql
    assert "recipientaccountid IN ('123456789012')" in athena_sql and "awsregion IN ('eu-west-1')" in athena_sql


def test_emit_sql_header_names_version_policies_and_filters(capsys, scp):
    from netguard import __version__

    sql = _emit(
        capsys, ["--policies", str(scp)], "--regions", "eu-west-1", "--table", "trail_db.logs", dialect="athena"
    )
    head = [line for line in sql.splitlines() if line.startswith("--")]
    assert head[0] == f"-- netguard {__version__}: policy replay --emit-sql (athena dialect)"
    assert any(str(scp) in line for line in head) and any("ng-deny-network-deletes.json" in line for line in head)
    assert "-- filters: --regions eu-west-1" in head
    assert "FROM trail_db.logs" in sql


def test_the_select_list_is_the_documented_ddl():
    names = [name for name, _ in COLUMNS]
    assert names[:5] == ["eventversion", "useridentity", "eventtime", "eventsource", "eventname"]
    assert names[-3:] == ["sessioncredentialfromconsole", "edgedevicedetails", "tlsdetails"]
    identity = dict(COLUMNS)["useridentity"]
    context = dict(dict(identity[1])["sessioncontext"][1])
    assert dict(context["webidfederationdata"][1])["attributes"] == ("map", ("string",), ("string",))
    assert dict(COLUMNS)["resources"][0] == "array" and dict(COLUMNS)["requestparameters"] == ("string",)


def test_emit_sql_errors(capsys, scp):
    code, out, err = _netguard(capsys, "policy", "replay", "--policies", str(scp), "--emit-sql", "--table", "x; DROP")
    assert code == 2 and out == "" and "--table" in err and "not a table name" in err
    assert "Traceback" not in err
    with pytest.raises(SystemExit) as exit_:
        main(["policy", "replay", "--policies", str(scp)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--events is required" in err and len(err.strip().splitlines()) == 1


# --- reading results: malformed rows, other files ----------------------------------------------


def _results_rows(capsys, tmp_path, scp) -> tuple[list[str], list[tuple]]:
    connection = _table(_records(), tmp_path)
    return _query(connection, _emit(capsys, ["--policies", str(scp)]))


def test_a_malformed_csv_row_is_an_error_naming_file_and_row(tmp_path, capsys, scp):
    columns, rows = _results_rows(capsys, tmp_path, scp)
    lines = _athena_csv(columns, rows).splitlines()
    good = _athena_csv(columns, rows)
    lines[2] = '"1.08","only two values"'
    lines[4] = lines[4].replace('"', "", 1)  # the first quote lost: a quote inside an unquoted value
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join(lines) + "\n")
    clean = tmp_path / "clean.csv"
    clean.write_text(good)
    code, out, _ = _netguard(
        capsys, "policy", "replay", "--policies", str(scp), "--events", str(broken), "--format", "json", "-j", "1"
    )
    assert code == 2
    report = json.loads(out)
    messages = [e["message"] for e in report["errors"]]
    assert all(e["file"] == str(broken) for e in report["errors"])
    assert messages[0] == "record 1 (?): CSV row 3: 2 values, the header has 29"
    assert messages[1].startswith("record 3 (?): CSV row 5: not CSV")
    assert len(messages) == 2
    expected = _replay(capsys, ["--policies", str(scp)], clean)
    assert report["summary"]["records"] == expected["summary"]["records"]  # a broken row is a record, in error
    assert report["summary"]["evaluated"] == expected["summary"]["evaluated"] - 2


def test_null_and_empty_text_differ_in_csv():
    raw = b'"eventsource","eventname","errorcode","eventid"\n"ec2.amazonaws.com","DeleteVpc",,"a"\n'
    raw += b'"ec2.amazonaws.com","DeleteVpc","","b"\n"ec2.amazonaws.com","Say ""hi"",\nthere",,"c"\n'
    records = athena.csv_records(raw, "r.csv")
    assert records[0] == {"eventsource": "ec2.amazonaws.com", "eventname": "DeleteVpc", "eventid": "a"}
    assert records[1]["errorcode"] == ""
    assert records[2]["eventname"] == 'Say "hi",\nthere'


def test_a_result_set_with_a_bad_row_goes_on(tmp_path, capsys, scp):
    columns, rows = _results_rows(capsys, tmp_path, scp)
    document = _result_set(columns, rows)
    document["ResultSet"]["Rows"][2] = {"Data": [{"VarCharValue": 7}]}
    document["ResultSet"]["Rows"][3]["Data"].pop()
    path = tmp_path / "results.json"
    path.write_text(json.dumps(document))
    code, out, _ = _netguard(
        capsys, "policy", "replay", "--policies", str(scp), "--events", str(path), "--format", "json", "-j", "1"
    )
    report = json.loads(out)
    assert code == 2
    assert [e["message"] for e in report["errors"]] == [
        "record 1 (?): ResultSet row 3: not a row: a VarCharValue that is not text",
        f"record 2 ({rows[2][columns.index('eventid')]}): ResultSet row 4: 28 values, 29 columns",
    ]
    assert report["summary"]["records"] == len(rows)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'"decision","count"\n"Deny","3"\n', "a CSV header without eventsource and eventname columns"),
        (b'{"ResultSet": {"Rows": 3}}', "ResultSet without a Rows list"),
        (b'"eventsource","eventname"\n"\xff\xfe"\n', "not UTF-8 text"),
    ],
)
def test_a_file_that_is_not_athena_results_is_refused_in_one_line(tmp_path, capsys, scp, content, reason):
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    code, out, err = _netguard(capsys, "policy", "replay", "--policies", str(scp), "--events", str(path))
    assert code == 2
    line = next(line for line in out.splitlines() if line.startswith("error:"))
    assert line.startswith(f"error: {path}: ") and reason in line
    assert "Traceback" not in err + out


def test_simulate_reads_athena_results_too(tmp_path, capsys, scp):
    """Each row's decision is the decision simulate gives the same record in the fixture logs."""
    columns, rows = _results_rows(capsys, tmp_path, scp)
    path = tmp_path / "results.csv"
    path.write_text(_athena_csv(columns, rows))
    decided = {}
    for events in ([str(p) for p in LOGS], [str(path)]):
        code, out, err = _netguard(
            capsys,
            "policy",
            "simulate",
            "--policies",
            str(scp),
            "--config",
            str(ORG),
            "--events",
            *events,
            "--format",
            "json",
        )
        report = json.loads(out)
        assert code == 0 and report["errors"] == [], err
        decided[events[0]] = {r["eventID"]: (r["decision"], r["policy"], r["sid"]) for r in report["results"]}
    logs, results = decided.values()
    assert len(results) == len(rows) and {d for d, _, _ in results.values()} >= {"Deny", "AlreadyFailing"}
    assert results == {event: logs[event] for event in results}


def test_the_fixture_athena_rows_and_compiled_patterns_agree(scp):
    """The SQL pre-filter is built from the same compiled patterns local replay uses."""
    levels, _ = load_policy_levels(scp)
    compiled = rp.compile_policies(levels)
    sql = athena.build_sql(compiled, dialect="duckdb")
    for pattern in compiled.deny_patterns:
        assert pattern.pattern in sql


def test_org_chains_through_athena_give_the_logs_report(tmp_path, capsys):
    """--org: the pre-filter is any account's chain after the rollout; Legacy's allow-list makes every
    call but ec2:Describe* worth evaluating there."""
    from tests.test_org_chain import LEGACY_ACCOUNT, ORG_YAML, PROD_ACCOUNT, SNAPSHOT, _record

    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(SNAPSHOT))
    policies = ["--org", str(snapshot), "--config", str(ORG_YAML)]
    records = [
        _record(PROD_ACCOUNT, "DeleteDhcpOptions", {"dhcpOptionsId": "dopt-1"}, n=1),
        _record(PROD_ACCOUNT, "DeleteVpcPeeringConnection", {"vpcPeeringConnectionId": "pcx-1"}, n=2),
        _record(PROD_ACCOUNT, "DescribeVpcs", n=3),
        _record(LEGACY_ACCOUNT, "CreateVpc", {"cidrBlock": "10.0.0.0/16"}, n=4),
        _record(LEGACY_ACCOUNT, "DescribeVpcs", n=5),
        {**_record(LEGACY_ACCOUNT, "PutBucketPolicy", n=6), "eventSource": "s3.amazonaws.com"},
        {**_record(PROD_ACCOUNT, "PutBucketPolicy", n=7), "eventSource": "s3.amazonaws.com"},
    ]
    direct = _replay(capsys, policies, _logs(tmp_path, records))
    assert {g["impact"] for g in direct["groups"]} == {"new", "existing"}
    from_csv, from_json, kept = _through_athena(capsys, tmp_path, policies, records)
    for report in (from_csv, from_json):
        assert _decisions(report) == _decisions(direct)
        assert report["organization"] == direct["organization"]
    # the query works per call, not per account: Prod's PutBucketPolicy is kept for Legacy's sake, and
    # netguard then leaves it unevaluated, as local replay does
    assert kept == direct["summary"]["evaluated"] + 1 == len(records) - 2  # the two DescribeVpcs left out


@pytest.mark.parametrize("scheme", ["manual", "projection"])
def test_partition_filters_skip_what_local_replay_skips_by_path(tmp_path, capsys, scp, scheme):
    """Logs in AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/ folders, some delivered the day after
    their eventTime; the partitions hold the folders' values. Local replay skips folders by their day and
    region; the query's partition filters must skip the same."""
    policies = ["--policies", str(scp), "--config", str(ORG)]
    records = _spread_records()
    folders = []
    for index, record in enumerate(records):
        day = record["eventTime"][:10].split("-")
        if index % 3 == 0 and record["eventTime"].startswith("2026-11-02"):
            day = ["2026", "11", "03"]  # delivered after midnight
        folders.append((record["recipientAccountId"], record["awsRegion"], *day))
    root = tmp_path / "trail"
    for folder in sorted(set(folders)):
        account, region, year, month, day = folder
        path = root / "AWSLogs" / account / "CloudTrail" / region / year / month / day
        path.mkdir(parents=True)
        chosen = [r for r, f in zip(records, folders, strict=True) if f == folder]
        (path / "part.json").write_text(json.dumps({"Records": chosen}))
    if scheme == "manual":
        values = [{"region": f[1], "year": f[2], "month": f[3], "day": f[4]} for f in folders]
    else:
        values = [{"timestamp": "/".join(f[2:])} for f in folders]
    connection = _table(records, tmp_path, values)
    for filters in (["--until", "2026-11-02T23:00:00"], ["--since", "2026-11-03"], ["--regions", "us-east-1"]):
        direct = _replay(capsys, policies, root, *filters)
        sql = _emit(capsys, policies, *filters, "--partitions", scheme)
        columns, rows = _query(connection, sql)
        results = tmp_path / "results.csv"
        results.write_text(_athena_csv(columns, rows))
        assert _decisions(_replay(capsys, policies, results)) == _decisions(direct), filters
    assert "(year || '/' || month || '/' || day) >= '2026/11/03'" in _emit(
        capsys, policies, "--since", "2026-11-03", "--partitions", "manual"
    )


def _positional(value: Any, kind: tuple) -> Any:
    """A struct as Presto (Athena engine version 2) casts a ROW to JSON: its values in field order."""
    if value is None:
        return None
    if kind[0] == "struct":
        return [_positional(value.get(name), field) for name, field in kind[1]]
    if kind[0] == "array":
        return [_positional(item, kind[1]) for item in value]
    return value


def test_structs_cast_to_json_arrays_by_presto_read_back_by_the_ddls_field_names(tmp_path, capsys, scp):
    policies = ["--policies", str(scp), "--config", str(ORG)]
    connection = _table(_records(), tmp_path)
    columns, rows = _query(connection, _emit(capsys, policies))
    kinds = dict(COLUMNS)
    legacy = [
        tuple(
            json.dumps(_positional(json.loads(value), kinds[column]))
            if value is not None and kinds[column][0] in ("struct", "array")
            else value
            for column, value in zip(columns, row, strict=True)
        )
        for row in rows
    ]
    assert any(value.startswith('["') for value in legacy[0] if value)  # useridentity as an array
    named, positional = tmp_path / "named.csv", tmp_path / "positional.csv"
    named.write_text(_athena_csv(columns, rows))
    positional.write_text(_athena_csv(columns, legacy))
    assert _decisions(_replay(capsys, policies, positional)) == _decisions(_replay(capsys, policies, named))
    short = tmp_path / "short.csv"  # a struct array of another length is an error for its record
    identity = columns.index("useridentity")
    broken = (*legacy[0][:identity], '["AssumedRole"]', *legacy[0][identity + 1 :])
    short.write_text(_athena_csv(columns, [broken]))
    report = _replay(capsys, policies, short)
    assert report["errors"] and "userIdentity" in report["errors"][0]["message"]


def test_results_named_in_s3_are_read_as_a_local_file_is(tmp_path, capsys, scp, monkeypatch):
    """Athena writes <id>.csv and <id>.csv.metadata to its output location: --events s3://.../<id>.csv
    reads the one object named, whatever its suffix, and nothing beside it."""
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    connection = _table(_records(), tmp_path)
    columns, rows = _query(connection, _emit(capsys, ["--policies", str(scp)]))
    body = _athena_csv(columns, rows).encode()
    levels, _ = load_policy_levels(scp)
    local = tmp_path / "results.csv"
    local.write_bytes(body)
    expected = rp.replay(rp.compile_policies(levels), rp.Source(str(local)), rp.Filters())
    with moto.mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="athena-results")
        s3.put_object(Bucket="athena-results", Key="out/1234-abcd.csv", Body=body)
        s3.put_object(Bucket="athena-results", Key="out/1234-abcd.csv.metadata", Body=b"\x0a\x1b binary")
        source = rp.Source("s3://athena-results/out/1234-abcd.csv", s3)
        assert list(source.files(rp.Filters())) == ["s3://athena-results/out/1234-abcd.csv"]
        totals = rp.replay(rp.compile_policies(levels), source, rp.Filters())
    assert totals.errors == [] and totals.files == 1
    assert rp.rows(totals) == rp.rows(expected) and totals.records == expected.records == len(rows)
