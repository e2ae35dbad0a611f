"""`make bench`: netguard against the tools a user has today, against parsing alone, and against itself
at twice the size. Every figure is measured in this run and printed next to its goal.

It measures; it asserts nothing (CI does not run it). A ratio that misses its goal is marked MISS.
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
from corpus import called_modules, generate, scaling_module, terraform_plan

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENV = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_SKIP_PACKAGE_REGISTRY": "TRUE"}
CHECKOV_PACK = ["--external-checks-dir", str(ROOT / "checks" / "checkov"), "--quiet", "--compact"]

# A plain PyYAML / json / hcl2 parse, each in a fresh interpreter like the scan itself.
PARSE_ONLY = r"""
import json, sys, yaml
from pathlib import Path
class Loader(yaml.CSafeLoader):
    pass
Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
paths = [Path(p) for p in sys.argv[1:]]
files = [f for p in paths for f in (sorted(p.rglob("*")) if p.is_dir() else [p])]
for path in files:
    if path.suffix == ".json":
        json.loads(path.read_text())
    elif path.suffix in (".yaml", ".yml"):
        yaml.load(path.read_text(), Loader=Loader)
    elif path.suffix == ".tf":
        import hcl2  # only when there is Terraform: the import alone is a fifth of a second
        hcl2.loads(path.read_text())
"""

# In-process: render one Terraform module (parse + netguard's rendering), then the whole evaluation,
# each the best of three runs after a warm-up.
SCALING = r"""
import json, sys, time
from pathlib import Path
from netguard.config import DEFAULT_CONFIG
from netguard.scan.run import scan_module
from netguard.terraform.loader import load_module
files = sorted(str(p) for p in Path(sys.argv[1]).glob("*.tf"))
scan_module(tuple(files), DEFAULT_CONFIG)  # warm-up: imports, the catalogue, the HCL grammar
renders, scans = [], []
for _ in range(3):  # the best of three: a single run of a few tenths of a second is noisy
    start = time.perf_counter()
    load_module([Path(f) for f in files], DEFAULT_CONFIG)
    renders.append(time.perf_counter() - start)
    start = time.perf_counter()
    result = scan_module(tuple(files), DEFAULT_CONFIG)
    scans.append(time.perf_counter() - start)
render, total = min(renders), min(scans)
print(json.dumps({"render": render, "scan": total, "findings": len(result.findings), "errors": len(result.errors)}))
"""

results: list[tuple[str, float, str, bool]] = []


def measure(command: list[str], cwd: Path) -> tuple[float, int, int]:
    """(wall seconds, peak RSS in MB, exit code) of one command, from wait4's rusage."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss // 1024, os.waitstatus_to_exitcode(status)


def best_of(runs: int, command: list[str], cwd: Path) -> tuple[float, int, int]:
    """The fastest of a few runs: one-file timings are small and noisy."""
    return min((measure(command, cwd) for _ in range(runs)), key=lambda m: m[0])


def row(label: str, seconds: float, rss: int, files: int) -> None:
    print(f"  {label:<48} {seconds:8.3f} s {files / seconds:9.1f} files/s {rss:7d} MB")


def goal(label: str, value: float, target: float, at_most: bool = True, unit: str = "x") -> None:
    met = value <= target if at_most else value >= target
    sign = "<=" if at_most else ">="
    print(f"  {label:<60} {value:8.2f}{unit}   goal {sign} {target:g}{unit}   {'ok' if met else 'MISS'}")
    results.append((label, value, f"{sign} {target:g}", met))


def one_file(corpus: Path) -> None:
    one = sorted((corpus / "cloudformation").glob("*.yaml"))[0]
    ours = best_of(5, [str(BIN / "netguard"), "scan", str(one)], ROOT)
    checkov = best_of(2, [str(BIN / "checkov"), "-f", str(one), *CHECKOV_PACK], ROOT)
    parse = best_of(5, [sys.executable, "-c", PARSE_ONLY, str(one)], ROOT)
    print(f"\none CloudFormation file ({one.name}, {one.read_text().count('Type: AWS::')} resources):")
    row("netguard scan", ours[0], ours[1], 1)
    row("checkov -f with the pack", checkov[0], checkov[1], 1)
    row("plain PyYAML parse, fresh interpreter", parse[0], parse[1], 1)
    goal("netguard / checkov -f", ours[0] / checkov[0], 0.1)
    goal("netguard / PyYAML parse", ours[0] / parse[0], 8)


def one_module(corpus: Path) -> None:
    module = sorted((corpus / "terraform").iterdir())[0]
    ours = best_of(5, [str(BIN / "netguard"), "scan", str(module)], ROOT)
    checkov = best_of(2, [str(BIN / "checkov"), "-d", str(module), "--framework", "terraform", *CHECKOV_PACK], ROOT)
    print(f"\none Terraform module ({len(list(module.glob('*.tf')))} files):")
    row("netguard scan", ours[0], ours[1], 5)
    row("checkov -d with the pack", checkov[0], checkov[1], 5)
    goal("netguard / checkov -d", ours[0] / checkov[0], 0.3)


def many_files(corpus: Path, total: int) -> None:
    cfn_files = sorted(str(p) for p in (corpus / "cloudformation").iterdir())
    ours = measure([str(BIN / "netguard"), "scan", str(corpus)], ROOT)
    checkov = measure(
        [str(BIN / "checkov"), "-d", str(corpus), "--framework", "cloudformation", "terraform", *CHECKOV_PACK], ROOT
    )
    cfnlint = measure([str(BIN / "cfn-lint"), "-a", str(ROOT / "checks" / "cfnlint"), "--", *cfn_files], ROOT)
    parse = measure([sys.executable, "-c", PARSE_ONLY, str(corpus)], ROOT)
    alternative = checkov[0] + cfnlint[0]
    print(f"\n{total} mixed files:")
    row("netguard scan", ours[0], ours[1], total)
    row("checkov -d --external-checks-dir", checkov[0], checkov[1], total)
    row("cfn-lint -a (CloudFormation only)", cfnlint[0], cfnlint[1], len(cfn_files))
    row("the two tools, one after the other", alternative, max(checkov[1], cfnlint[1]), total)
    row("parse only", parse[0], parse[1], total)
    goal("checkov + cfn-lint / netguard (speed-up)", alternative / ours[0], 20, at_most=False)
    goal("netguard / parse-only", ours[0] / parse[0], 4)
    goal("netguard peak RSS", ours[1], 250, unit=" MB")


def scaling(work: Path) -> None:
    print("\none Terraform module, growing (in-process; render = parse + netguard's rendering):")
    for shape, sizes in (("pairs", (500, 1000)), ("count", (500, 1000))):
        timings = {}
        for size in sizes:
            folder = work / f"{shape}-{size}"
            scaling_module(folder, shape, size)
            out = subprocess.run(
                [sys.executable, "-c", SCALING, str(folder)], env=ENV, capture_output=True, text=True, check=True
            )
            import json

            timings[size] = json.loads(out.stdout)
            figures = timings[size]
            label = f"{size} VPC + flow-log pairs" if shape == "pairs" else f"count = {size} (EIP + NAT gateway)"
            print(
                f"  {label:<48} render {figures['render']:7.3f} s   scan {figures['scan']:7.3f} s"
                f"   {figures['findings']} findings, {figures['errors']} errors"
            )
        big, small = timings[sizes[1]], timings[sizes[0]]
        goal(f"{shape} {sizes[1]}: scan / render", big["scan"] / big["render"], 3)
        goal(f"{shape}: scan {sizes[1]} / scan {sizes[0]}", big["scan"] / small["scan"], 2.5)


PLAN = r"""
import json, sys, time
from netguard.config import DEFAULT_CONFIG
from netguard.scan.run import scan_template
path = sys.argv[1]
scan_template(path, DEFAULT_CONFIG)  # warm-up: imports, the catalogue
loads, scans = [], []
for _ in range(3):
    start = time.perf_counter()
    json.loads(open(path, encoding="utf-8").read())
    loads.append(time.perf_counter() - start)
    start = time.perf_counter()
    result = scan_template(path, DEFAULT_CONFIG)
    scans.append(time.perf_counter() - start)
print(json.dumps({"loads": min(loads), "scan": min(scans), "findings": len(result.findings)}))
"""


def plan_json(work: Path) -> None:
    import json

    path = work / "plan.json"
    terraform_plan(path, 10_000)
    out = subprocess.run([sys.executable, "-c", PLAN, str(path)], env=ENV, capture_output=True, text=True, check=True)
    figures = json.loads(out.stdout)
    size = path.stat().st_size / 1048576
    print(f"\na 10,000-resource plan JSON ({size:.1f} MB, in-process, best of three):")
    print(f"  json.loads {figures['loads']:.3f} s   netguard {figures['scan']:.3f} s   {figures['findings']} findings")
    goal("plan scan / json.loads", figures["scan"] / figures["loads"], 5)


def module_calls(work: Path) -> None:
    root, flat = called_modules(work / "calls", 20)
    ours = best_of(5, [str(BIN / "netguard"), "scan", str(root)], ROOT)
    flattened = best_of(5, [str(BIN / "netguard"), "scan", str(flat)], ROOT)
    print("\na root module calling 20 local child modules, against the same resources in one module:")
    row("netguard scan, 20 module calls", ours[0], ours[1], 2)
    row("netguard scan, flattened", flattened[0], flattened[1], 1)
    goal("module calls / flattened", ours[0] / flattened[0], 1.5)


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
        print(
            f"corpus: {counts['cloudformation']} CloudFormation files (YAML and JSON), "
            f"{counts['terraform']} Terraform files, in {corpus}"
        )
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
        one_file(corpus)
        one_module(corpus)
        many_files(corpus, total)
        scaling(work)
        module_calls(work)
        plan_json(work)
        missed = [label for label, _, _, met in results if not met]
        print(f"\n{len(results) - len(missed)} of {len(results)} goals met" + (f"; missed: {missed}" if missed else ""))
        if args.keep:
            print(f"corpus kept in {work}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
