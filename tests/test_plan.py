"""Terraform plan JSON (`terraform show -json`): scanned by the real CLI like users run it.

Each plan in fixtures/terraform_plans/ has a sidecar `<name>.expected.json` with the complete set of
findings for the controls it lists under "scope" (other controls' findings are ignored, as in the
annotated fixtures).
"""

from __future__ import annotations

import copy
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from netguard.cli import main
from tests.conftest import FIXTURES

PLANS_DIR = FIXTURES / "terraform_plans"
PLANS = sorted(p for p in PLANS_DIR.glob("*.json") if not p.name.endswith(".expected.json"))
CONFIG = str(FIXTURES / ".netguard.yaml")


def scan(capsys, *paths: Path) -> tuple[int, dict, str]:
    code = main(["scan", *map(str, paths), "--format", "json", "--config", CONFIG])
    out, err = capsys.readouterr()
    return code, json.loads(out), out + err


def sidecar(path: Path) -> dict:
    return json.loads(path.with_name(path.stem + ".expected.json").read_text())


def compare(report: dict, path: Path, expected: dict) -> list[str]:
    """Differences between a scan's findings for one plan and its sidecar (duplicates count)."""
    scope = set(expected["scope"])
    mine = [f for f in report["findings"] if Path(f["file"]).resolve() == path.resolve() and f["control"] in scope]
    got = Counter((f["control"], f["resource"]) for f in mine)
    want = Counter((f["control"], f["resource"]) for f in expected["findings"])
    problems = []
    if got - want:
        problems.append(f"unexpected findings: {sorted(got - want)}")
    if want - got:
        problems.append(f"missing findings: {sorted(want - got)}")
    return problems


def test_fixtures_cover_both_formats_and_a_state():
    assert len(PLANS) >= 5
    versions = {json.loads(p.read_text())["format_version"] for p in PLANS}
    assert {"0.1", "1.2"} <= versions
    assert any("values" in json.loads(p.read_text()) for p in PLANS)
    for path in PLANS:
        expected = sidecar(path)
        assert expected["scope"] and all({"control", "resource"} == set(f) for f in expected["findings"])


@pytest.mark.parametrize("path", PLANS, ids=lambda p: p.name)
def test_plan_fixture(capsys, path):
    code, report, _ = scan(capsys, path)
    assert report["errors"] == []
    assert code == (1 if report["findings"] else 0)
    assert not compare(report, path, sidecar(path))
    for finding in report["findings"]:
        assert finding["file"] == str(path) and finding["line"] >= 1
        assert finding["message"].startswith(finding["resource"])


def test_comparison_fails_on_a_missing_or_extra_finding(capsys):
    path = PLANS_DIR / "flow_logs.json"
    _, report, _ = scan(capsys, path)
    expected = sidecar(path)
    fewer = {**expected, "findings": expected["findings"][1:]}
    more = {**expected, "findings": [*expected["findings"], {"control": "NG-VPC-001", "resource": "aws_vpc.logged"}]}
    assert compare(report, path, fewer) and compare(report, path, more)


def test_the_folder_scans_and_sidecars_are_not_plans(capsys):
    code, report, _ = scan(capsys, PLANS_DIR)
    assert report["errors"] == [] and code == 1
    assert {Path(f["file"]).name for f in report["findings"]} == {p.name for p in PLANS}


@pytest.mark.parametrize("name", ["tfplan.template", "plan.yaml", "show.json", "state.yml"])
def test_recognised_by_content_whatever_the_name(capsys, tmp_path, name):
    source = PLANS_DIR / "modules.json"
    copied = tmp_path / name
    shutil.copyfile(source, copied)
    _, original, _ = scan(capsys, source)
    _, renamed, _ = scan(capsys, copied)
    assert renamed["errors"] == []
    assert {(f["control"], f["resource"]) for f in renamed["findings"]} == {
        (f["control"], f["resource"]) for f in original["findings"]
    }


def _load(name: str) -> dict:
    return json.loads((PLANS_DIR / name).read_text())


def _write(tmp_path: Path, data: dict, name: str = "plan.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=1))
    return path


def _findings(report: dict, control: str) -> set[str]:
    return {f["resource"] for f in report["findings"] if f["control"] == control}


def test_without_configuration_an_unknown_vpc_id_links_nothing(capsys, tmp_path):
    """The flow log's vpc_id is known only after apply: the configuration's references are the link."""
    data = _load("flow_logs.json")
    del data["configuration"]
    _, report, _ = scan(capsys, _write(tmp_path, data))
    assert report["errors"] == []
    assert _findings(report, "NG-VPC-001") == {"aws_vpc.quiet", "aws_vpc.logged"}


def test_a_known_id_links_an_existing_flow_log(capsys, tmp_path):
    data = _load("flow_logs.json")
    log = next(r for r in data["planned_values"]["root_module"]["resources"] if r["address"] == "aws_flow_log.existing")
    log["values"]["vpc_id"] = "vpc-0ffffffffffffffff"  # another VPC's
    _, report, _ = scan(capsys, _write(tmp_path, data))
    assert _findings(report, "NG-VPC-001") == {"aws_vpc.quiet", "aws_vpc.existing"}


def test_module_output_reference_reaches_the_child_resource(capsys, tmp_path):
    data = _load("modules.json")
    outputs = data["configuration"]["root_module"]["module_calls"]["vpc"]["module"]["outputs"]
    outputs["vpc_id"]["expression"] = {"references": ["aws_vpc.other.id", "aws_vpc.other"]}
    _, report, _ = scan(capsys, _write(tmp_path, data))
    assert "module.vpc.aws_vpc.this[0]" in _findings(report, "NG-VPC-001")


def test_module_input_is_followed_to_the_caller(capsys, tmp_path):
    data = _load("modules.json")
    call = data["configuration"]["root_module"]["module_calls"]["flow_logs"]
    call["expressions"]["vpc_id"] = {"constant_value": "vpc-0123"}
    _, report, _ = scan(capsys, _write(tmp_path, data))
    assert "aws_vpc.shared" in _findings(report, "NG-VPC-001")


def _plan(resources: list[dict], changes: list[dict], config: list[dict], **module_calls: dict) -> dict:
    """A minimal plan of root resources: (address, type, name, index, values) and their configuration."""
    return {
        "format_version": "1.2",
        "terraform_version": "1.9.0",
        "planned_values": {"root_module": {"resources": resources}},
        "resource_changes": changes,
        "configuration": {"root_module": {"resources": config, "module_calls": module_calls}},
    }


def _resource(address: str, values: dict | None = None, index: object = None) -> dict:
    base = address.split("[", 1)[0]
    mode = "data" if base.startswith("data.") else "managed"
    type_name, name = base.removeprefix("data.").split(".")
    found = {"address": address, "mode": mode, "type": type_name, "name": name, "values": values or {}}
    if index is not None:
        found["index"] = index
    return found


def _unknown(address: str, **after_unknown: object) -> dict:
    return {"address": address, "change": {"actions": ["create"], "after": {}, "after_unknown": after_unknown}}


def _config(address: str, **expressions: object) -> dict:
    type_name, name = address.split(".")
    return {"address": address, "mode": "managed", "type": type_name, "name": name, "expressions": expressions}


@pytest.mark.parametrize(
    ("references", "uncovered"),
    [
        (["aws_vpc.main", "count.index"], {"aws_vpc.main[1]", "aws_vpc.alone"}),  # aws_vpc.main[count.index].id
        (["aws_vpc.main"], {"aws_vpc.alone"}),  # aws_vpc.main[*].id, or an index the plan does not record
    ],
)
def test_an_index_the_plan_does_not_record(capsys, tmp_path, references, uncovered):
    """Terraform records `aws_vpc.main[count.index].id` as `aws_vpc.main` and `count.index`: the flow
    log's own index; without count.index (a splat, `[var.i]`), it may be on any VPC."""
    vpcs = [_resource(f"aws_vpc.main[{i}]", index=i) for i in range(2)]
    log = _resource("aws_flow_log.main[0]", {"traffic_type": "ALL"}, index=0)
    data = _plan(
        [*vpcs, log, _resource("aws_vpc.alone")],
        [_unknown("aws_flow_log.main[0]", vpc_id=True)],
        [_config("aws_flow_log.main", vpc_id={"references": references})],
    )
    _, report, _ = scan(capsys, _write(tmp_path, data))
    assert _findings(report, "NG-VPC-001") == uncovered


def test_a_counted_module_output_by_count_index(capsys, tmp_path):
    """`module.vpc[count.index].vpc_id` is recorded as `module.vpc`, `count.index`: this index's instance."""
    vpcs = [{**_resource("aws_vpc.this"), "address": f"module.vpc[{i}].aws_vpc.this"} for i in range(2)]
    log = _resource("aws_flow_log.main[0]", {"traffic_type": "ALL"}, index=0)
    data = _plan(
        [*vpcs, log],
        [_unknown("aws_flow_log.main[0]", vpc_id=True)],
        [_config("aws_flow_log.main", vpc_id={"references": ["module.vpc", "count.index"]})],
        vpc={"module": {"outputs": {"vpc_id": {"expression": {"references": ["aws_vpc.this.id", "aws_vpc.this"]}}}}},
    )
    _, report, _ = scan(capsys, _write(tmp_path, data))
    assert _findings(report, "NG-VPC-001") == {"module.vpc[1].aws_vpc.this"}


def test_each_value_of_a_for_each_over_a_resource_is_that_instance(capsys, tmp_path):
    vpcs = [_resource(f'aws_vpc.main["{k}"]', index=k) for k in ("a", "b")]
    log = _resource('aws_flow_log.main["a"]', {"traffic_type": "ALL"}, index="a")
    config = _config("aws_flow_log.main", vpc_id={"references": ["each.value.id", "each.value"]})
    config["for_each_expression"] = {"references": ["aws_vpc.main"]}
    data = _plan([*vpcs, log], [_unknown('aws_flow_log.main["a"]', vpc_id=True)], [config])
    _, report, _ = scan(capsys, _write(tmp_path, data))
    assert _findings(report, "NG-VPC-001") == {'aws_vpc.main["b"]'}


def test_an_unknown_argument_nobody_set_is_not_set(capsys, tmp_path):
    """AWS computes an EIP's instance: unknown in the plan, but not an attachment the user made."""
    data = _plan(
        [_resource("aws_eip.a"), _resource("aws_eip.b")],
        [_unknown("aws_eip.a", instance=True, id=True), _unknown("aws_eip.b", instance=True, id=True)],
        [_config("aws_eip.a"), _config("aws_eip.b", instance={"references": ["aws_instance.x.id", "aws_instance.x"]})],
    )
    _, report, _ = scan(capsys, _write(tmp_path, data))
    assert _findings(report, "NG-EIP-001") == {"aws_eip.a"}


def test_resource_changes_alone_are_read(capsys, tmp_path):
    data = _load("flow_logs.json")
    for change in data["resource_changes"]:  # `after` holds the planned values
        resource = next(
            (r for r in data["planned_values"]["root_module"]["resources"] if r["address"] == change["address"]), None
        )
        if resource and change["change"]["after"] is not None:
            change["change"]["after"] = resource["values"]
        change.update({k: v for k, v in (resource or {}).items() if k in ("mode", "type", "name")})
    del data["planned_values"]
    _, report, _ = scan(capsys, _write(tmp_path, data))
    assert report["errors"] == []
    assert _findings(report, "NG-VPC-001") == {"aws_vpc.quiet"}
    assert _findings(report, "NG-VPC-002") == {"aws_flow_log.rejects_only"}


def _resources(data: dict) -> list:
    return data["planned_values"]["root_module"]["resources"]


MALFORMED = {
    "format 2": (lambda d: d.update(format_version="2.0"), "format_version 2.0"),
    "format not a string": (lambda d: d.update(format_version=1), "format_version 1 is not a version"),
    "planned_values a list": (lambda d: d.update(planned_values=[]), "planned_values is not an object"),
    "resources a string": (lambda d: d["planned_values"]["root_module"].update(resources="x"), "not a list"),
    "a resource not an object": (lambda d: _resources(d).append(7), "resource 7 is not an object"),
    "values a list": (lambda d: _resources(d)[0].update(values=[]), "values is not an object"),
    "no type": (lambda d: _resources(d)[0].pop("type"), "no address, mode, type or name"),
    "bad mode": (lambda d: _resources(d)[0].update(mode="imaginary"), "no address, mode, type or name"),
    "address of another": (lambda d: _resources(d)[0].update(address="aws_vpc.other"), "does not name"),
    "address garbage": (lambda d: _resources(d)[0].update(address="]]"), "does not name"),
    "planned twice": (lambda d: _resources(d).append(copy.deepcopy(_resources(d)[0])), "planned twice"),
    "child_modules an object": (
        lambda d: d["planned_values"]["root_module"].update(child_modules={}),
        "child_modules is not a list",
    ),
    "resource_changes an object": (lambda d: d.update(resource_changes={}), "resource_changes is not a list"),
    "a change without change": (lambda d: d["resource_changes"][0].pop("change"), "has no change object"),
    "configuration a list": (lambda d: d.update(configuration=[]), "configuration is not an object"),
    "module_calls a list": (
        lambda d: d["configuration"]["root_module"].update(module_calls=[]),
        "module_calls is not an object",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_plan_is_an_error_naming_the_file(capsys, tmp_path, case):
    data = _load("flow_logs.json")
    change, expected = MALFORMED[case]
    change(data)
    path = _write(tmp_path, data)
    code, report, text = scan(capsys, path)
    assert code == 2
    assert [e["file"] for e in report["errors"]] == [str(path)]
    assert expected in report["errors"][0]["message"]
    assert report["findings"] == [] and "Traceback" not in text


def test_terraform_output_that_is_not_a_plan_is_an_error(capsys, tmp_path):
    path = _write(tmp_path, {"terraform_version": "1.9.0", "planned_values": {"root_module": {}}})
    code, report, _ = scan(capsys, path)
    assert code == 2 and "format_version" in report["errors"][0]["message"]


def test_odd_references_never_crash(capsys, tmp_path):
    odd = ["", ".", "module.", "var.", "each.value", "data.x", 'aws_vpc.main["a.b"].id', "aws_vpc.main[*]", "a b"]
    data = _plan(
        [_resource("aws_vpc.main"), _resource("aws_flow_log.x", {"traffic_type": "ALL"})],
        [_unknown("aws_flow_log.x", vpc_id=True)],
        [_config("aws_flow_log.x", vpc_id={"references": [*odd, 7, None]})],
    )
    _, report, text = scan(capsys, _write(tmp_path, data))
    assert report["errors"] == [] and "Traceback" not in text
    assert _findings(report, "NG-VPC-001") == {"aws_vpc.main"}


def test_a_module_input_cycle_resolves_to_nothing(capsys, tmp_path):
    data = _plan(
        [
            {**_resource("aws_flow_log.x", {"traffic_type": "ALL"}), "address": "module.a.aws_flow_log.x"},
            {**_resource("aws_vpc.v"), "address": "module.a.aws_vpc.v"},
        ],
        [_unknown("module.a.aws_flow_log.x", vpc_id=True)],
        [],
        a={
            "expressions": {"v": {"references": ["module.a.out", "module.a"]}},
            "module": {
                "resources": [_config("aws_flow_log.x", vpc_id={"references": ["var.v"]})],
                "outputs": {"out": {"expression": {"references": ["var.v"]}}},
            },
        },
    )
    _, report, text = scan(capsys, _write(tmp_path, data))
    assert report["errors"] == [] and "Traceback" not in text
    assert _findings(report, "NG-VPC-001") == {"module.a.aws_vpc.v"}


def generated_plan(count: int) -> dict:
    """`count` VPCs (for_each) and a flow log for each but the first, their vpc_id known after apply."""
    keys = [f"k{i:05d}" for i in range(count)]
    vpcs = [
        _resource(f'aws_vpc.main["{k}"]', {"cidr_block": "10.0.0.0/16", "tags": {"Name": k}}, index=k) for k in keys
    ]
    logs = [_resource(f'aws_flow_log.main["{k}"]', {"traffic_type": "ALL"}, index=k) for k in keys[1:]]
    changes = [_unknown(r["address"], id=True, arn=True, tags_all=True) for r in vpcs]
    changes += [_unknown(r["address"], id=True, vpc_id=True) for r in logs]
    config = _config("aws_flow_log.main", vpc_id={"references": ["each.value.id", "each.value"]})
    config["for_each_expression"] = {"references": ["aws_vpc.main"]}
    return _plan([*vpcs, *logs], changes, [_config("aws_vpc.main"), config])


def test_a_ten_thousand_resource_plan_scans(capsys, tmp_path):
    path = _write(tmp_path, generated_plan(5000))
    code, report, _ = scan(capsys, path)
    assert code == 1 and report["errors"] == []
    assert _findings(report, "NG-VPC-001") == {'aws_vpc.main["k00000"]'}
    assert len(_findings(report, "NG-VPC-003")) == 5000
