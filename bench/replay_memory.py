"""Replay memory benchmark: peak memory of `policy replay` against the number of files it reads.

Generates a trail of N files and one of 4N files (the same records per file, so four times the
records), replays each in a fresh interpreter with 2 workers, and prints the peak resident memory of
the parent and of the largest worker for both, with the ratio. Each worker holds one decoded file
at a time and the parent the merged groups, which are bounded by distinct (decision, principal,
action, account, statement) and not by records, so the goal is a ratio of at most 1.1. It measures;
it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from netguard.policy.orgconfig import load_org_config
from netguard.policy.render import render_to_dir
from replay import generate

ROOT = Path(__file__).resolve().parent.parent
GOAL = 1.1
# Run in a fresh interpreter, so that the peak is the replay's own: the parent's peak, then the
# largest peak among its finished workers (Linux reports kilobytes).
_MEASURE = """
import json, resource, sys
from pathlib import Path
from netguard.policy import replay as rp
from netguard.policy.simulate import load_policy_levels
levels, _ = load_policy_levels(Path(sys.argv[1]))
totals = rp.replay(rp.compile_policies(levels), rp.Source(sys.argv[2]), rp.Filters(), jobs=2)
own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"records": totals.records, "groups": len(totals.groups), "errors": len(totals.errors),
                  "parent_kb": own.ru_maxrss, "worker_kb": workers.ru_maxrss}))
"""


def measure(policies: Path, logs: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(policies), str(logs)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the replay failed:\n{done.stderr}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=40, help="files in the smaller trail (the larger has 4x)")
    parser.add_argument("--per-file", type=int, default=5_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="netguard-replay-memory-"))
    try:
        render_to_dir(load_org_config(ROOT / "fixtures" / "org" / "org.yaml"), work / "scp")
        runs = []
        for files in (args.files, 4 * args.files):
            logs = work / f"logs-{files}"
            generate(logs, files * args.per_file, args.per_file, guarded=0.5)
            runs.append((files, measure(work / "scp", logs)))
            shutil.rmtree(logs)
        print(f"replay peak memory, {args.per_file} records per file, half of them guarded, 2 workers:")
        for files, found in runs:
            print(
                f"  {files:4d} files, {found['records']:>9,} records, {found['groups']:4d} groups: "
                f"parent {found['parent_kb'] / 1024:6.1f} MB, largest worker {found['worker_kb'] / 1024:6.1f} MB"
            )
        (_, small), (_, large) = runs
        for label, field in (("parent", "parent_kb"), ("largest worker", "worker_kb")):
            ratio = large[field] / small[field]
            verdict = "ok" if ratio <= GOAL else "MISS"
            print(f"  ratio {label} at 4x the files: {ratio:.2f}   goal <= {GOAL}   {verdict}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
