"""Replay with the organization's chain (`policy replay --org`) against decompress+decode alone.

The same generated trail as bench/replay.py (20 accounts, 3% guarded calls) is replayed against an
organization snapshot of those 20 accounts: the root with FullAWSAccess and a third-party Deny,
/Sandbox (the canary), /Workloads/Prod and, in the second organization, /Workloads/Legacy under an
allow-list SCP instead of FullAWSAccess (every call there must be decided, whatever its action). The
rollout is fixtures/org/org-targets.yaml. Goal (issue 18): the org-chain replay stays at or above 0.8x
the decode-only rate on the same files and workers. It prints figures and ratios; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from netguard.org.snapshot import load_snapshot
from netguard.policy import replay as rp
from netguard.policy.orgchain import org_chains
from netguard.policy.orgconfig import load_org_config
from replay import Timing, generate, report_ratio, time_decode

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.8
ACCOUNTS = [f"{100000000000 + i}" for i in range(20)]  # the accounts bench/replay.py's trail uses


def _doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def snapshot(allow_list: bool) -> dict:
    """Sandbox takes accounts 0-4, Prod 5-14, and 15-19 sit in Legacy (allow-list) or Prod."""
    full, deny, allow = "p-FullAWSAccess", "p-denyleave01", "p-allowlist01"
    units = [
        {"id": "ou-bench-sandbox1", "name": "Sandbox", "parent_id": "r-bench", "policies": [full]},
        {"id": "ou-bench-workload", "name": "Workloads", "parent_id": "r-bench", "policies": [full]},
        {"id": "ou-bench-prod0001", "name": "Prod", "parent_id": "ou-bench-workload", "policies": [full]},
        {"id": "ou-bench-legacy01", "name": "Legacy", "parent_id": "ou-bench-workload", "policies": [allow]},
    ]

    def parent(index: int) -> str:
        if index < 5:
            return "ou-bench-sandbox1"
        return "ou-bench-legacy01" if allow_list and index >= 15 else "ou-bench-prod0001"

    return {
        "format": "netguard-org-snapshot",
        "version": 1,
        "exported_at": "2026-12-05T00:00:00Z",
        "organization": {"id": "o-benchorg01", "management_account_id": "999999999999"},
        "root": {"id": "r-bench", "name": "Root", "scp_enabled": True, "policies": [full, deny]},
        "organizational_units": units,
        "accounts": [
            {"id": account, "parent_id": parent(i), "policies": [full]} for i, account in enumerate(ACCOUNTS)
        ],
        "policies": [
            {"id": full, "name": "FullAWSAccess", "aws_managed": True,
             "content": _doc({"Effect": "Allow", "Action": "*", "Resource": "*"})},
            {"id": deny, "name": "deny-leave-organization", "aws_managed": False,
             "content": _doc({"Effect": "Deny", "Action": ["organizations:LeaveOrganization", "ec2:DeleteVpc"],
                              "Resource": "*"})},
            {"id": allow, "name": "legacy-allow-list", "aws_managed": False,
             "content": _doc({"Effect": "Allow", "Action": ["ec2:*", "s3:*", "sts:*", "iam:Get*"], "Resource": "*"})},
        ],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--per-file", type=int, default=5_000)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--repeats", type=int, default=3, help="passes of each; the best is reported")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="netguard-org-bench-"))
    try:
        files = generate(work / "logs", args.records, args.per_file)
        paths = sorted(str(p) for p in (work / "logs").rglob("*.gz"))
        print(f"org-chain replay: {args.records} records in {files} gzip files, {args.jobs} workers")
        org = load_org_config(ROOT / "fixtures" / "org" / "org-targets.yaml")
        runs = []
        for allow_list, name in ((False, "FullAWSAccess everywhere"), (True, "an allow-list OU (1/4 of accounts)")):
            file = work / f"snapshot-{allow_list}.json"
            file.write_text(json.dumps(snapshot(allow_list)))
            runs.append((name, load_snapshot(file)))
        decode, timings, results = Timing(), {name: Timing() for name, _ in runs}, {}
        for _ in range(args.repeats):  # interleaved, best of each: a shared machine's noise hits all alike
            decoded = time_decode(decode, paths, args.jobs)
            for name, snap in runs:
                chains = org_chains(snap, org)
                with timings[name]:
                    results[name] = rp.replay(chains, rp.Source(str(work / "logs")), rp.Filters(), jobs=args.jobs)
        print(f"  decompress + decode only               {decoded / decode.wall:12,.0f} records/s")
        for name, _ in runs:
            totals, timing = results[name], timings[name]
            new = sum(g["count"] for k, g in totals.groups.items() if k[0] == "Deny" and k[-1] == "new")
            print(
                f"  --org, {name:<36} {totals.records / timing.wall:12,.0f} records/s"
                f"  [{totals.evaluated:,} evaluated, {new:,} newly denied]"
            )
            report_ratio(f"--org {name} / decode-only", decode, timing, GOAL)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
