"""`make bench`: netguard against the tools a user has today, and against parsing alone.

Prints wall time, files per second and peak RSS for each run, and the ratios the performance goals
are stated in. It measures; it asserts nothing (CI does not run it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import generate

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENV = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}

PARSE_ONLY = r"""
import json, sys, yaml, hcl2
from pathlib import Path
from netguard.cfn.loader import TemplateLoader
for path in Path(sys.argv[1]).rglob("*"):
    if path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix == ".yaml":
        yaml.load(path.read_text(), Loader=TemplateLoader)
    elif path.suffix == ".tf":
        hcl2.loads(path.read_text())
"""


def measure(command: list[str], cwd: Path) -> tuple[float, int, int]:
    """(wall seconds, peak RSS in MB, exit code) of one command, from wait4's rusage."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss // 1024, os.waitstatus_to_exitcode(status)


def row(label: str, seconds: float, rss: int, files: int) -> None:
    print(f"  {label:<44} {seconds:8.2f} s {files / seconds:9.1f} files/s {rss:7d} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000, help="corpus size, half CloudFormation, half Terraform")
    parser.add_argument("--keep", action="store_true", help="keep the generated corpus")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="netguard-bench-"))
    try:
        counts = generate(work / "corpus", args.files // 2, args.files - args.files // 2)
        corpus = work / "corpus"
        total = counts["cloudformation"] + counts["terraform"]
        cfn_files = sorted(str(p) for p in (corpus / "cloudformation").iterdir())
        print(
            f"corpus: {counts['cloudformation']} CloudFormation files (YAML and JSON), "
            f"{counts['terraform']} Terraform files, in {corpus}"
        )
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")

        one = cfn_files[0]
        single_netguard = measure([str(BIN / "netguard"), "scan", one], ROOT)
        single_checkov = measure(
            [
                str(BIN / "checkov"),
                "-f",
                one,
                "--external-checks-dir",
                str(ROOT / "checks" / "checkov"),
                "--quiet",
                "--compact",
            ],
            ROOT,
        )
        print("\none changed CloudFormation file:")
        row("netguard scan (checkov + cfn-lint)", single_netguard[0], single_netguard[1], 1)
        row("checkov -f alone", single_checkov[0], single_checkov[1], 1)
        print(f"  ratio netguard / checkov -f: {single_netguard[0] / single_checkov[0]:.2f}")

        netguard = measure([str(BIN / "netguard"), "scan", str(corpus)], ROOT)
        checkov = measure(
            [
                str(BIN / "checkov"),
                "-d",
                str(corpus),
                "--external-checks-dir",
                str(ROOT / "checks" / "checkov"),
                "--framework",
                "cloudformation",
                "terraform",
                "--quiet",
                "--compact",
            ],
            ROOT,
        )
        cfnlint = measure([str(BIN / "cfn-lint"), "-a", str(ROOT / "checks" / "cfnlint"), "--", *cfn_files], ROOT)
        parse = measure([sys.executable, "-c", PARSE_ONLY, str(corpus)], ROOT)
        alternative = checkov[0] + cfnlint[0]
        print(f"\n{total} files:")
        row("netguard scan (both engines)", netguard[0], netguard[1], total)
        row("checkov -d --external-checks-dir", checkov[0], checkov[1], total)
        row("cfn-lint -a (CloudFormation only)", cfnlint[0], cfnlint[1], len(cfn_files))
        row("the two tools, one after the other", alternative, max(checkov[1], cfnlint[1]), total)
        row("parse only", parse[0], parse[1], total)
        print(f"  ratio alternative / netguard: {alternative / netguard[0]:.1f}x faster")
        print(f"  ratio netguard / parse-only: {netguard[0] / parse[0]:.1f}x")
        print(f"  netguard exit code {netguard[2]} (1 = findings, as the corpus has violations)")
        if args.keep:
            print(f"corpus kept in {corpus}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
