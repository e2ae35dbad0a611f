"""Replay benchmark: records per second for `policy replay`, against decompress+decode alone.

Generates N CloudTrail records of realistic shape and mix (mostly unguarded calls, a few guarded ones
by ordinary and exempt principals) as gzip files in the AWSLogs layout, then times both passes with
the same number of worker processes, best of --repeats interleaved passes each. Decode-only is the
faster of two readers (gzip.decompress with orjson, and replay's own), so the ratio never flatters
replay with a slow baseline. It prints figures and the ratio; it asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import uuid
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import orjson

from netguard.policy import replay as rp
from netguard.policy.cloudtrail import decode_records
from netguard.policy.orgconfig import load_org_config
from netguard.policy.render import render_to_dir
from netguard.policy.simulate import load_policy_levels

ROOT = Path(__file__).resolve().parent.parent
UNGUARDED = [
    ("ec2.amazonaws.com", "DescribeInstances"),
    ("ec2.amazonaws.com", "DescribeVpcs"),
    ("sts.amazonaws.com", "AssumeRole"),
    ("s3.amazonaws.com", "GetBucketAcl"),
    ("iam.amazonaws.com", "GetRole"),
    ("kms.amazonaws.com", "Decrypt"),
    ("logs.amazonaws.com", "PutLogEvents"),
    ("ec2.amazonaws.com", "RunInstances"),
    ("lambda.amazonaws.com", "Invoke"),
]
GUARDED = [
    ("ec2.amazonaws.com", "DeleteDhcpOptions", {"dhcpOptionsId": "dopt-0a1b2c3d"}),
    ("ec2.amazonaws.com", "DisassociateAddress", {"associationId": "eipassoc-0a1b2c3d"}),
    ("ec2.amazonaws.com", "CreateVpc", {"cidrBlock": "10.0.0.0/16"}),
    ("ec2.amazonaws.com", "DeleteFlowLogs", {"DeleteFlowLogsRequest": {"FlowLogId": {"content": "fl-1", "tag": 1}}}),
]
ROLES = ["role/Developer", "role/network/NetworkAdmin", "role/app/Service", "role/break-glass/Emergency"]


def _record(rng: random.Random, account: str, guarded: float = 0.03) -> dict:
    if rng.random() < guarded:
        source, name, params = rng.choice(GUARDED)
    else:
        (source, name), params = rng.choice(UNGUARDED), {"filterSet": {}, "maxResults": 1000}
    role = rng.choice(ROLES)
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:session",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role.rsplit('/', 1)[1]}/session",
            "accountId": account,
            "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLE",
                    "arn": f"arn:aws:iam::{account}:{role}",
                    "accountId": account,
                    "userName": role.rsplit("/", 1)[1],
                },
                "attributes": {"creationDate": "2026-11-01T10:00:00Z", "mfaAuthenticated": "false"},
            },
        },
        "eventTime": f"2026-11-0{rng.randint(1, 9)}T{rng.randint(10, 23)}:00:00Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64.amzn.2023 prompt/off command/ec2",
        "requestParameters": params,
        "responseElements": None,
        "requestID": str(uuid.UUID(int=rng.getrandbits(128))),
        "eventID": str(uuid.UUID(int=rng.getrandbits(128))),
        "readOnly": name.startswith(("Describe", "Get")),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": "ec2.eu-west-1.amazonaws.com",
        },
    }


def generate(root: Path, records: int, per_file: int, guarded: float = 0.03) -> int:
    rng = random.Random(11)
    written = 0
    index = 0
    while written < records:
        account = f"{100000000000 + index % 20}"
        folder = root / f"AWSLogs/{account}/CloudTrail/eu-west-1/2026/11/0{1 + index % 9}"
        folder.mkdir(parents=True, exist_ok=True)
        batch = [_record(rng, account, guarded) for _ in range(min(per_file, records - written))]
        (folder / f"{account}_CloudTrail_{index:05d}.json.gz").write_bytes(
            gzip.compress(json.dumps({"Records": batch}).encode(), compresslevel=6)
        )
        written += len(batch)
        index += 1
    return index


class Timing:
    """The best wall time and the best CPU time (this process and its finished workers) of the passes
    timed with it. On a shared machine the wall ratio swings with the neighbours; the CPU ratio is the
    steadier estimate of the same per-core rates (it leaves out only idle waiting)."""

    def __init__(self) -> None:
        self.wall = self.cpu = float("inf")

    @staticmethod
    def _cpu() -> float:
        own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime

    def __enter__(self) -> Timing:
        self._start = (time.perf_counter(), self._cpu())
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = min(self.wall, time.perf_counter() - self._start[0])
        self.cpu = min(self.cpu, self._cpu() - self._start[1])


def report_ratio(label: str, baseline: Timing, measured: Timing, goal: float | None) -> None:
    """The rate ratio by wall time (the goal's measure) and by CPU time, with the verdict on the first."""
    ratio, cpu_ratio = baseline.wall / measured.wall, baseline.cpu / measured.cpu
    verdict = "" if goal is None else f"   goal >= {goal:g}   {'ok' if ratio >= goal else 'MISS'}"
    print(f"  ratio {label}: {ratio:.2f} (by CPU time {cpu_ratio:.2f}){verdict}")


def _decode_plain(path: str) -> int:
    """Read, decompress and decode one file the plain way (gzip.decompress, then orjson)."""
    return len(orjson.loads(gzip.decompress(Path(path).read_bytes()))["Records"])


def _decode_as_replay(path: str) -> int:
    """Read, decompress and decode one file as replay reads it (cloudtrail.decode_records: gzip inflated
    in chunks, then orjson)."""
    return len(decode_records(Path(path).read_bytes(), path))


def _decode_file(decoder_and_path: tuple[Any, str]) -> int:
    """One decoder on one file, with the garbage collector off as replay has it while it works on a file."""
    decoder, path = decoder_and_path
    gc.disable()
    try:
        return decoder(path)
    finally:
        gc.enable()


def time_decode(decode: Timing, paths: list[str], jobs: int) -> int:
    """One pass of each decoder over the files in a pool of jobs workers, timed with decode, whose best
    is then the fastest decode there is: the ratio is the cost of evaluating alone, never of decoding
    more slowly than replay itself decodes (its chunked inflate beats gzip.decompress on this machine)."""
    decoded = 0
    for decoder in (_decode_plain, _decode_as_replay):
        with decode, get_context("fork").Pool(jobs) as pool:
            decoded = sum(pool.map(_decode_file, [(decoder, path) for path in paths], chunksize=4))
    return decoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--per-file", type=int, default=5_000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--guarded", type=float, default=0.03, help="share of calls a guardrail names")
    parser.add_argument("--goal", type=float, default=None, help="print the ratio against this goal")
    parser.add_argument("--repeats", type=int, default=3, help="passes of each; the best is reported")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="netguard-replay-bench-"))
    try:
        files = generate(work / "logs", args.records, args.per_file, args.guarded)
        size = sum(p.stat().st_size for p in (work / "logs").rglob("*.gz"))
        print(
            f"corpus: {args.records} records in {files} gzip files ({size / 1e6:.1f} MB), {args.jobs} workers, "
            f"{os.cpu_count()} cores, {args.guarded:.0%} guarded calls"
        )
        paths = sorted(str(p) for p in (work / "logs").rglob("*.gz"))
        render_to_dir(load_org_config(ROOT / "fixtures" / "org" / "org.yaml"), work / "scp")
        levels, _ = load_policy_levels(work / "scp")
        decode, replay = Timing(), Timing()
        for _ in range(args.repeats):  # interleaved, best of each: a shared machine's noise hits both alike
            decoded = time_decode(decode, paths, args.jobs)
            with replay:
                compiled = rp.compile_policies(levels)
                totals = rp.replay(compiled, rp.Source(str(work / "logs")), rp.Filters(), jobs=args.jobs)
        denied = sum(g["count"] for k, g in totals.groups.items() if k[0] == "Deny")
        print(
            f"  decompress + decode only   {decode.wall:7.2f} s  {decoded / decode.wall:12,.0f} records/s"
            "  (the faster of two readers)"
        )
        print(
            f"  policy replay              {replay.wall:7.2f} s  {totals.records / replay.wall:12,.0f} records/s"
            f"  ({totals.evaluated} evaluated, {denied} would be denied)"
        )
        report_ratio("replay / decode-only", decode, replay, args.goal)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
