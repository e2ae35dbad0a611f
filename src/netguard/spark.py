"""`policy replay` on Spark: the same evaluator, the same report, over a trail too big for one machine.

Spark reads the log files (local or s3a://, gzip by name) with the schema `Records: array<string>`, so
each record arrives as its own JSON text, and explodes them. Three Spark passes, and only small
aggregates or Totals reach the driver:

1. An aggregate, in Spark SQL alone: per file (documents, records, whether Spark read it cleanly), and
   per (eventSource, eventName, in scope, matched --accounts/--regions value) a count. The driver asks
   `needs_evaluation` once per pair, sets the Filters' marks from the matched values (so `warnings`
   says what local replay says), and counts the unguarded records in scope without Python seeing them.
2. The guarded records in scope, filtered in Spark, go to `Replayer.records` in `mapPartitions`, one
   call per file (a file is never split: multiLine JSON is read whole), with their positions in the
   file so errors name the same record; the partial Totals are merged with `treeReduce`.
3. A file Spark cannot read as a plain `{"Records": [...]}` of well-formed records (corrupt gzip,
   invalid JSON, another shape, a record that is not an object or lacks a string eventSource or
   eventName, a limit nearly reached) is replayed whole on the driver by the local code, one file at a
   time, so its errors are exactly the local ones. Such files are few; a trail of them is slow.

Run it as `netguard policy replay --engine spark`, or `spark-submit` this module (see
docs/replay-spark.md). Where the result can differ from local replay is listed there, too.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from netguard.errors import InputError, NetguardError
from netguard.policy import replay as rp
from netguard.policy.bounded import Refused, loads
from netguard.policy.cloudtrail import LIMITS, LOG_SUFFIXES, Limits, RecordError

INSTALL_HINT = "pyspark is not installed: install netguard[spark] (pip install 'netguard[spark]')"

# What makes a record "regular": Spark's get_json_object turns numbers and booleans into text, so a
# value only counts as a string when no other JSON value could print that way. Anything else goes to
# the local code, which decides exactly.
_SOURCE = r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z][A-Za-z0-9-]*$"
_NAME = r"^[A-Za-z][A-Za-z0-9_]*$"
_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$"
_ACCOUNT_IS_TEXT = r'"recipientAccountId"\s*:\s*"'


def _require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise NetguardError("--engine spark", INSTALL_HINT) from None


def session(master: str | None = None, app: str = "netguard-replay") -> Any:
    """A SparkSession (the active one when there is one). Under spark-submit the master is its own;
    otherwise local[*] unless master says. Local masters run executors on this Python, so that
    netguard and orjson are importable there."""
    _require_pyspark()
    from pyspark.sql import SparkSession

    if master is None and not os.environ.get("PYSPARK_GATEWAY_PORT"):  # not launched by spark-submit
        master = "local[*]"
    if master and master.startswith("local"):  # on a cluster, spark.pyspark.python says which Python the nodes run
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app)
    if master:
        builder = builder.master(master)
    if not master or master.startswith("local"):
        builder = builder.config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "4")
    builder = builder.config("spark.ui.showConsoleProgress", "false")  # stderr carries the report's warnings
    return builder.getOrCreate()


@dataclass
class Listed:
    """One log file: as the report names it, as Spark is given it (an absolute path or a Hadoop URI),
    and its stored size."""

    name: str
    path: str
    size: int


def _spark_key(uri: str) -> str:
    """The path Spark was given, from input_file_name's spelling of it (file:/x or file:///x,
    percent-encoded)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return os.path.abspath(unquote(parsed.path))
    return f"{parsed.scheme}://{parsed.netloc}{unquote(parsed.path)}"


_GLOB = set("*?[]{}\\")


def list_files(spark: Any, location: str, filters: rp.Filters) -> list[Listed]:
    """The files local replay would read, in its order: local paths through replay.Source itself,
    remote ones (s3://, s3a://, hdfs://) through Hadoop's FileSystem, with the same suffix and
    AWSLogs/ path rules (Filters.path_may_match counts the files it skips, as locally)."""
    if "://" not in location:
        return [
            Listed(name, os.path.abspath(name), os.path.getsize(name)) for name in rp.Source(location).files(filters)
        ]
    shown, _, rest = location.partition("://")
    hadoop = ("s3a" if shown == "s3" else shown) + "://" + rest
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(hadoop)
    fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
    if not fs.exists(path):  # as local replay from S3: no files, and the command warns of it
        return []
    single = fs.getFileStatus(path).isFile()
    found = []
    listing = fs.listFiles(path, True)
    while listing.hasNext():
        status = listing.next()
        uri = status.getPath().toString()
        name = f"{shown}://{uri.partition('://')[2]}"
        if single or (name.endswith(LOG_SUFFIXES) and filters.path_may_match(name)):
            found.append(Listed(name, uri, status.getLen()))
    return sorted(found, key=lambda item: item.name)


def _frame(spark: Any, uris: list[str], filters: rp.Filters) -> Any:
    """One row per record: file, position, raw JSON text, and the columns the filters and the
    pre-filter need, computed in Spark SQL."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, StringType, StructField, StructType

    schema = StructType([StructField("Records", ArrayType(StringType())), StructField("_corrupt_record", StringType())])
    reader = (
        spark.read.schema(schema)
        .option("multiLine", "true")  # a file is one document, never split across partitions
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt_record")
        .option("allowSingleQuotes", "false")  # what the local reader refuses, Spark must not accept
        .option("allowNonNumericNumbers", "false")
        .option("ignoreCorruptFiles", "true")  # a file that yields no row is replayed locally instead
        .option("ignoreMissingFiles", "true")
    )
    frame = reader.json(uris).select(
        F.input_file_name().alias("file"),
        (F.col("Records").isNull() | F.col("_corrupt_record").isNotNull()).alias("broken"),
        F.posexplode_outer("Records").alias("pos", "rec"),
    )
    fields = ("eventSource", "eventName", "recipientAccountId", "awsRegion", "eventTime")
    frame = frame.select("*", F.json_tuple("rec", *fields).alias(*fields))  # one parse for the five
    rec = F.col("rec")
    source, name, account, region, when = (F.col(field) for field in fields)
    regular = (
        rec.isNotNull()
        & rec.startswith("{")
        & source.rlike(_SOURCE)
        & name.rlike(_NAME)
        & ~name.isin("true", "false", "null")
    )
    in_scope = F.lit(True)
    accounts, regions = sorted(filters.accounts), sorted(filters.regions)
    account_mark = F.lit(None).cast("string")
    region_mark = F.lit(None).cast("string")
    if accounts:
        regular &= account.isNull() | rec.rlike(_ACCOUNT_IS_TEXT)  # a number is no account id locally
        account_mark = F.when(account.isin(accounts), account)
        in_scope &= account_mark.isNotNull()
    if regions:
        region_mark = F.when(region.isin(regions), region)
        in_scope &= region_mark.isNotNull()
    if filters.since or filters.until:
        # eventTime as CloudTrail writes it compares as text with an ISO time; any other form is
        # left to the local code (the file goes to the driver)
        valid = (
            when.rlike(_TIME)
            & F.expr(
                "make_date(int(substr(eventTime, 1, 4)), int(substr(eventTime, 6, 2)), int(substr(eventTime, 9, 2)))"
            ).isNotNull()
        )
        regular &= valid
        moment = F.substring(when, 1, 19)
        if filters.since:
            in_scope &= moment >= F.lit(filters.since.isoformat())
        if filters.until:
            in_scope &= moment <= F.lit(filters.until.isoformat())
    return frame.select(
        "file",
        "broken",
        "pos",
        "rec",
        source.alias("source"),
        name.alias("name"),
        F.coalesce(regular, F.lit(False)).alias("regular"),
        F.coalesce(in_scope, F.lit(False)).alias("in_scope"),
        account_mark.alias("account"),
        region_mark.alias("region"),
    )


_SURVEY = """
SELECT file, source, name, in_scope, account, region, grouping(file) AS per_pair,
       count(pos) AS records,
       sum(CASE WHEN regular THEN 1 ELSE 0 END) AS regular_records,
       sum(CASE WHEN pos IS NULL OR pos = 0 THEN 1 ELSE 0 END) AS documents,
       max(broken) AS broken,
       sum(CASE WHEN pos IS NOT NULL AND NOT regular THEN 1 ELSE 0 END) AS irregular,
       coalesce(sum(length(rec)), 0) AS chars
FROM {view} {where}
GROUP BY GROUPING SETS ((file), (source, name, in_scope, account, region))
"""


def _survey(spark: Any, frame: Any, pairs_only: bool = False) -> tuple[dict[str, Any], list[Any]]:
    """Pass 1: per-file health and per-pair counts of regular records, in one Spark job."""
    view = f"netguard_replay_{uuid.uuid4().hex}"
    frame.createOrReplaceTempView(view)
    try:
        rows = spark.sql(_SURVEY.format(view=view, where="WHERE regular" if pairs_only else "")).collect()
    finally:
        spark.catalog.dropTempView(view)
    files = {_spark_key(row["file"]): row for row in rows if not row["per_pair"]}
    pairs = [row for row in rows if row["per_pair"] and row["source"] is not None]
    return files, pairs


def _guarded(compiled: Any, source: str, name: str) -> bool:
    """The pre-filter, asked once per (eventSource, eventName) on the driver: can any Deny match?"""
    return compiled.needs_evaluation(source, name)


def _is_clean(row: Any, limits: Limits) -> bool:
    """Whether Spark read the file as local replay would: one {"Records": [...]} document of regular
    records, well within the per-file limits (past half of one, the local reader decides)."""
    # a file's text is at least its records' compact text; local refuses files past either bound
    near = min(limits.max_file_bytes, 2 * limits.max_json_values) // 2
    return (
        row["documents"] == 1
        and not row["broken"]
        and not row["irregular"]
        and row["records"] <= limits.max_records
        and row["chars"] <= near
    )


_unpacked: dict[str, rp.Replayer] = {}  # per executor Python: run token -> its Replayer, unpickled once


def _replay_partition(token: str, replayer: Any, names: Any) -> Any:
    """The function each partition runs: the guarded rows of each file, in order, through the one
    loop every engine runs, and one Totals for the partition."""

    def run(rows: Iterator[Any]) -> Iterator[rp.Totals]:
        shipped = _unpacked.get(token)
        if shipped is None:
            from pyspark import cloudpickle

            _unpacked.clear()  # one run's at a time
            shipped = _unpacked[token] = cloudpickle.loads(replayer.value)
        known = names.value
        totals = rp.Totals()
        for uri, group in itertools.groupby(rows, key=lambda row: row[0]):
            name = known.get(_spark_key(uri), uri)
            positions, records = [], []
            try:
                for _, position, text in group:
                    positions.append(position)
                    records.append(loads(text))
            except Refused as exc:  # the local reader refuses the whole file for this
                part = rp.Totals()
                part.errors.append(InputError(name, exc.message))
            else:
                part = shipped.records(records, name, positions)
            totals.merge(part)
        yield totals

    return run


def _merged(left: rp.Totals, right: rp.Totals) -> rp.Totals:
    left.merge(right)
    return left


def _replay_locally(spark: Any, listed: list[Listed], replayer: rp.Replayer, limits: Limits) -> rp.Totals:
    """The files Spark did not read cleanly, replayed on the driver by the local code, one at a time:
    local files through replay.Source, remote ones through Spark's binaryFiles (raw bytes)."""
    totals = rp.Totals()

    def one(item: Listed, raw: bytes | RecordError) -> None:
        if isinstance(raw, RecordError):
            part = rp.Totals(files=1)
            part.errors.append(raw.as_input_error())
        else:
            try:
                part = replayer.file(raw, item.name)
            except Exception as exc:  # as replay._replay_one: the file's error, and the replay goes on
                part = rp.Totals(files=1)
                part.errors.append(InputError(item.name, f"not replayed: internal error {type(exc).__name__}: {exc}"))
        totals.merge(part)

    remote = []
    for item in listed:
        if "://" not in item.name:
            one(item, rp.Source(item.name, limits=limits).read(item.name))
        elif item.size > limits.max_file_bytes:
            one(
                item,
                RecordError(
                    item.name,
                    f"object is {rp.size_text(item.size)}, over the limit of {rp._cap_text(limits.max_file_bytes)}",
                ),
            )
        else:
            remote.append(item)
    if remote:
        by_key = {item.path: item for item in remote}
        seen = set()
        try:
            for uri, raw in spark.sparkContext.binaryFiles(",".join(i.path for i in remote)).toLocalIterator():
                item = by_key.get(uri) or by_key.get(_spark_key(uri))
                if item is not None and item.name not in seen:
                    seen.add(item.name)
                    one(item, bytes(raw))
        except Exception as exc:
            failure = f"cannot read: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        else:
            failure = "cannot read: Spark listed it but did not read it"
        for item in remote:
            if item.name not in seen:
                one(item, RecordError(item.name, failure))
    return totals


def replay(
    spark: Any,
    compiled: Any,
    location: str,
    filters: rp.Filters,
    *,
    management_account: str | None = None,
    facts: Any = None,
    limits: Limits = LIMITS,
    plan: dict[str, Any] | None = None,
) -> rp.Totals:
    """Replay every log file under location (a path or s3://, s3a://, hdfs:// URI) on Spark; the
    Totals, and with them the report and Filters.warnings, are those local replay gives. plan, when
    given, is filled with how the work was split (files read by Spark, files replayed on the driver,
    guarded pairs, unguarded records counted in Spark), for tests and for tuning."""
    listed = list_files(spark, location, filters)
    totals = rp.Totals()
    if not listed:
        return totals
    names = {item.path: item.name for item in listed}
    # over the size limit, or a name Spark would read as a glob: the driver's local code says why
    aside = [item for item in listed if item.size > limits.max_file_bytes or _GLOB.intersection(item.path)]
    readable = [item for item in listed if item not in aside]
    frame = _frame(spark, [item.path for item in readable], filters) if readable else None
    began = time.perf_counter()
    files, pairs = _survey(spark, frame) if frame is not None else ({}, [])
    clean = {item.path for item in readable if item.path in files and _is_clean(files[item.path], limits)}
    unclean = [item for item in readable if item.path not in clean]
    counts: dict[tuple, int] = {}
    for row in pairs:
        group = (row["source"], row["name"], row["in_scope"], row["account"], row["region"])
        counts[group] = counts.get(group, 0) + row["regular_records"]
    surveyed = [item.path for item in unclean if item.path in files and files[item.path]["records"]]
    if surveyed:  # their regular records were counted above; the local code counts them instead
        for row in _survey(spark, _frame(spark, surveyed, filters), pairs_only=True)[1]:
            group = (row["source"], row["name"], row["in_scope"], row["account"], row["region"])
            counts[group] -= row["regular_records"]
    guarded = set()
    for (source, name, in_scope, account, region), count in counts.items():
        if count <= 0:
            continue
        if filters.active:  # the marks local replay sets per record, set once per value seen
            filters._values_match(account, region)
            filters._mark(filters._IN_SCOPE if in_scope else filters._OUT_OF_SCOPE)
        if not in_scope:
            continue
        if _guarded(compiled, source, name):
            guarded.add(f"{source}\x00{name}")
        else:
            totals.records += count
    totals.files += len(clean)
    surveyed_at = time.perf_counter()
    if plan is not None:
        plan.update(
            spark_files=len(clean),
            driver_files=sorted(item.name for item in aside + unclean),
            guarded_pairs=sorted(tuple(pair.split("\x00")) for pair in guarded),
            unguarded_counted=totals.records,
        )
    if guarded and clean:
        from pyspark.sql import functions as F

        shipped = rp.Replayer(
            compiled=compiled,
            filters=rp.Filters(),  # the filters ran in Spark; their marks cannot cross executors
            management_account=management_account,
            limits=limits,
            facts=facts,
        )
        sc = spark.sparkContext
        chosen = frame.where(
            F.col("regular")
            & F.col("in_scope")
            & F.concat_ws("\x00", "source", "name").isin(sorted(guarded))
            & ~F.col("file").isin([files[item.path]["file"] for item in unclean if item.path in files])
        ).select("file", "pos", "rec")
        # cloudpickle, not the broadcast's plain pickle: the evaluator may cache closures on the policies
        from pyspark import cloudpickle

        packed = sc.broadcast(cloudpickle.dumps(shipped))
        known = sc.broadcast(names)
        parts = chosen.rdd.mapPartitions(_replay_partition(uuid.uuid4().hex, packed, known))
        try:
            if parts.getNumPartitions():
                totals.merge(parts.treeReduce(_merged))
        finally:
            packed.unpersist()
            known.unpersist()
    local = rp.Replayer(
        compiled=compiled, filters=filters, management_account=management_account, limits=limits, facts=facts
    )
    evaluated_at = time.perf_counter()
    totals.merge(_replay_locally(spark, aside + unclean, local, limits))
    if plan is not None:
        plan.update(
            survey_seconds=round(surveyed_at - began, 2),
            evaluate_seconds=round(evaluated_at - surveyed_at, 2),
            driver_seconds=round(time.perf_counter() - evaluated_at, 2),
        )
    order = {item.name: index for index, item in enumerate(listed)}
    totals.errors.sort(key=lambda error: order.get(error.file, len(order)))  # as local replay, file by file
    return totals


def replay_rows(
    frame: Any,
    compiled: Any,
    *,
    name: str = "rows",
    management_account: str | None = None,
    facts: Any = None,
    limits: Limits = LIMITS,
) -> rp.Totals:
    """A DataFrame of CloudTrail table rows (Athena's or Glue's CloudTrail table, CloudTrail Lake
    rows; any column case), replayed as local replay replays a file of those rows named `name`:
    the pre-filter runs in Spark on the eventsource/eventname columns, the guarded rows go through
    Replayer.records as dicts (record_shapes.normalise maps them), and errors give each row's position
    in the frame's order (--max-record-errors applies per partition here). Filter by date, account
    and region in the query that makes the frame; Totals.files stays 0."""
    from pyspark.sql import functions as F

    columns = {column.lower(): column for column in frame.columns}
    source, event = columns.get("eventsource"), columns.get("eventname")
    indexed = frame.select(
        F.spark_partition_id().alias("_netguard_partition"),
        F.monotonically_increasing_id().alias("_netguard_id"),
        F.struct(*[F.col(f"`{column}`") for column in frame.columns]).alias("_netguard_row"),
        (F.col(f"`{source}`") if source else F.lit(None).cast("string")).alias("_netguard_source"),
        (F.col(f"`{event}`") if event else F.lit(None).cast("string")).alias("_netguard_name"),
    )
    survey = indexed.groupBy("_netguard_partition", "_netguard_source", "_netguard_name").count().collect()
    sizes: dict[int, int] = {}
    totals = rp.Totals()
    guarded = set()
    for row in survey:
        part, pair_source, pair_name, count = row
        sizes[part] = sizes.get(part, 0) + count
        if (
            not isinstance(pair_source, str)
            or not isinstance(pair_name, str)
            or _guarded(compiled, pair_source, pair_name)
        ):
            guarded.add((pair_source, pair_name))
        else:
            totals.records += count
    offsets, running = {}, 0
    for part in sorted(sizes):
        offsets[part], running = running, running + sizes[part]
    if not guarded:
        return totals
    wanted = F.lit(False)
    for pair_source, pair_name in guarded:  # a few hundred pairs at most; a null pair is a Python error
        same_source = (
            F.col("_netguard_source").isNull() if pair_source is None else F.col("_netguard_source") == pair_source
        )
        same_name = F.col("_netguard_name").isNull() if pair_name is None else F.col("_netguard_name") == pair_name
        wanted = wanted | (same_source & same_name)
    shipped = rp.Replayer(
        compiled=compiled, filters=rp.Filters(), management_account=management_account, limits=limits, facts=facts
    )
    from pyspark import cloudpickle

    sc = frame.sparkSession.sparkContext
    packed = sc.broadcast(cloudpickle.dumps(shipped))
    token = uuid.uuid4().hex
    mask = (1 << 33) - 1  # monotonically_increasing_id: the partition in the upper bits, the row below

    def run(rows: Iterator[Any]) -> Iterator[rp.Totals]:
        replayer = _unpacked.get(token)
        if replayer is None:
            from pyspark import cloudpickle

            _unpacked.clear()
            replayer = _unpacked[token] = cloudpickle.loads(packed.value)
        positions, records = [], []
        for part, row_id, row in rows:
            positions.append(offsets[part] + (row_id & mask))
            records.append(row.asDict(recursive=True))
        yield replayer.records(records, name, positions)

    chosen = indexed.where(wanted).select("_netguard_partition", "_netguard_id", "_netguard_row")
    try:
        parts = chosen.rdd.mapPartitions(run)
        if parts.getNumPartitions():
            totals.merge(parts.treeReduce(_merged))
    finally:
        packed.unpersist()

    def position(error: InputError) -> tuple[int, int]:  # by row; a partition's "more not listed" last
        words = error.message.split(" ", 2)
        return (0, int(words[1])) if words[0] == "record" and words[1].isdigit() else (1, 0)

    totals.errors.sort(key=position)
    return totals


def run_cli(args: argparse.Namespace, compiled: Any, filters: rp.Filters, facts: Any, limits: Limits) -> rp.Totals:
    """`policy replay --engine spark`: the session (--spark-master), then replay; command.py reports."""
    _require_pyspark()
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    spark = session(getattr(args, "spark_master", None))
    try:
        return replay(
            spark,
            compiled,
            args.events,
            filters,
            facts=facts,  # as local replay from the command line: the management account comes with the facts
            limits=limits,
        )
    except (Py4JError, PySparkException) as exc:  # S3 access denied, a lost executor: exit 2, one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise NetguardError(args.events, f"the Spark job failed: {first[:500]}") from None


def main(argv: list[str] | None = None) -> int:
    """`spark-submit -m netguard.spark` / `python -m netguard.spark`: the replay command's options,
    with the Spark engine (the master comes from spark-submit unless --spark-master says otherwise)."""
    from netguard.cli import main as netguard

    return netguard(["policy", "replay", "--engine", "spark", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
