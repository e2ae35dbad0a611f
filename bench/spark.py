"""Spark benchmark: `policy replay --engine spark` on local[2] against local replay with 2 workers.

Generates N CloudTrail records (bench/replay.py's mix: mostly unguarded calls, a few guarded ones) as
gzip files in the AWSLogs layout, then replays them both ways and prints records/s for each, the
ratio, and whether the two JSON reports are the same. It asserts nothing. The goal (issue 18): report
Spark's rate next to local replay's, to say where Spark starts to pay off; on one machine it should
not, as Spark runs the same Python evaluator plus a JVM pass over the JSON.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from netguard import spark as ns
from netguard.policy import replay as rp
from netguard.policy.orgconfig import load_org_config
from netguard.policy.render import render_to_dir
from netguard.policy.simulate import load_policy_levels
from replay import generate

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--per-file", type=int, default=5_000)
    parser.add_argument("--jobs", type=int, default=2, help="local replay's workers, and Spark's local[N]")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="netguard-spark-bench-"))
    try:
        files = generate(work / "logs", args.records, args.per_file)
        size = sum(p.stat().st_size for p in (work / "logs").rglob("*.gz"))
        print(
            f"corpus: {args.records} records in {files} gzip files ({size / 1e6:.1f} MB), "
            f"{args.jobs} workers / local[{args.jobs}], {os.cpu_count()} cores"
        )
        render_to_dir(load_org_config(ROOT / "fixtures" / "org" / "org.yaml"), work / "scp")
        levels, _ = load_policy_levels(work / "scp")
        start = time.perf_counter()
        local = rp.replay(rp.compile_policies(levels), rp.Source(str(work / "logs")), rp.Filters(), jobs=args.jobs)
        local_seconds = time.perf_counter() - start
        start = time.perf_counter()
        spark = ns.session(f"local[{args.jobs}]", app="netguard-bench")
        spark.sparkContext.setLogLevel("ERROR")
        startup = time.perf_counter() - start
        plan: dict = {}
        start = time.perf_counter()
        on_spark = ns.replay(spark, rp.compile_policies(levels), str(work / "logs"), rp.Filters(), plan=plan)
        spark_seconds = time.perf_counter() - start
        spark.stop()
        print(
            f"  local replay --jobs {args.jobs}        {local_seconds:7.2f} s  "
            f"{local.records / local_seconds:10,.0f} records/s  ({local.evaluated} evaluated)"
        )
        print(
            f"  spark local[{args.jobs}] (after {startup:.1f} s start) {spark_seconds:7.2f} s  "
            f"{on_spark.records / spark_seconds:10,.0f} records/s  ({on_spark.evaluated} evaluated, "
            f"{plan.get('spark_files', 0)} files in Spark, {len(plan.get('driver_files', []))} on the driver; "
            f"seconds: survey {plan.get('survey_seconds')}, "
            f"evaluate {plan.get('evaluate_seconds')}, driver {plan.get('driver_seconds')})"
        )
        print(f"  ratio spark / local: {local_seconds / spark_seconds:.2f}  (goal: reported, not a bound)")
        same = rp.to_json(local) == rp.to_json(on_spark)
        print(f"  same JSON report: {'yes' if same else 'NO'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
