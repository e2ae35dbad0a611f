"""CDK output as CDK users know it: a cloud assembly read through its manifest, findings named by
construct path and stack in every format, suppressions by construct path in the config."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from netguard.cli import main
from netguard.config import load_config
from netguard.errors import NetguardError
from netguard.resources import pack_path
from netguard.scan.run import scan
from netguard.scan.suppress import construct_glob
from tests.conftest import FIXTURES, fixture_config
from tests.test_fixtures import check_fixture

ASSEMBLY = FIXTURES / "cdk" / "cdk.out"
TEMPLATES = sorted(ASSEMBLY.rglob("*.template.json"))
BIN = Path(sys.executable).parent


def _scan_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["scan", *args, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def _by_resource(report: dict) -> dict[tuple[str, str], dict]:
    """Findings by (control, logical id), and by (control, construct path): two stacks may share an id."""
    found = {(f["control"], f["resource"]): f for f in report["findings"]}
    found.update({(f["control"], f["construct"]): f for f in report["findings"] if "construct" in f})
    return found


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "netguard.yaml"
    path.write_text(text)
    return path


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(ASSEMBLY, tmp_path / "cdk.out")
    return tmp_path / "cdk.out"


@pytest.fixture(scope="module")
def assembly_scan():
    return scan([str(ASSEMBLY)], fixture_config())


def test_the_fixture_is_a_whole_assembly():
    names = {p.name for p in ASSEMBLY.rglob("*") if p.is_file()}
    assert {"manifest.json", "tree.json", "cdk.out", "NetworkStack.assets.json"} <= names
    assert any(p.name.endswith(".nested.template.json") for p in TEMPLATES)
    assert any(p.parent.name == "assembly-Prod" for p in TEMPLATES)
    assert any(p.is_dir() and p.name.startswith("asset.") for p in ASSEMBLY.iterdir())


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ASSEMBLY)))
def test_annotations_hold(assembly_scan, path):
    assert not assembly_scan.errors, assembly_scan.errors
    check_fixture(assembly_scan.findings, path)


def test_stacks_templates_and_nothing_else_are_scanned(assembly_scan):
    """The manifest's stacks (the Stage's too) and the nested stack's template; CDK's own files and the
    asset folder are neither scanned nor errors."""
    assert not assembly_scan.errors
    assert sorted(Path(f).relative_to(ASSEMBLY).as_posix() for f in assembly_scan.files) == sorted(
        p.relative_to(ASSEMBLY).as_posix() for p in TEMPLATES
    )
    assert any("1 CDK asset folder(s) (asset.*) not scanned" in n for n in assembly_scan.notices)


def test_findings_carry_construct_and_stack(capsys):
    code, report = _scan_json(capsys, "--config", str(FIXTURES / ".netguard.yaml"), str(ASSEMBLY))
    assert code == 1
    found = _by_resource(report)
    nat = found[("NG-EIP-001", "NatEip4D3C2B1A")]
    assert (nat["construct"], nat["stack"]) == ("Prod/AppStack/NatEip", "Prod/AppStack")
    vpc = found[("NG-VPC-001", "Vpc8378EB38")]
    assert (vpc["construct"], vpc["stack"]) == ("NetworkStack/Vpc", "NetworkStack")  # without /Resource
    spare = found[("NG-EIP-001", "SpareEip0A9B8C7D")]  # no aws:cdk:path: the manifest's logical-id map names it
    assert spare["construct"] == "NetworkStack/SpareEip"
    shared = found[("NG-VPC-001", "SharedVpc5E6F7A8B")]  # a nested stack's template: not a manifest stack
    assert shared["construct"] == "NetworkStack/Shared/SharedVpc" and "stack" not in shared
    for finding in report["findings"]:
        assert finding["message"].count("CDK construct") == 1, finding


def test_text_names_the_construct_once(capsys):
    code = main(["scan", "--config", str(FIXTURES / ".netguard.yaml"), str(ASSEMBLY)])
    out = capsys.readouterr().out
    assert code == 1
    line = next(line for line in out.splitlines() if "NatEip4D3C2B1A:" in line)
    assert line.count("Prod/AppStack/NatEip") == 1


def test_metadata_suppression_added_by_cdk(assembly_scan):
    """`cfnResource.addMetadata('netguard', {skip: [...]})` lands in the template: it is honoured."""
    bastion = next(f for f in assembly_scan.findings if f.resource == "BastionEip6C1D7E2F")
    assert bastion.suppressed == "attached by the bastion's user data at boot"
    assert bastion.suppressed_by is None


def test_sarif_carries_the_construct_and_validates(tmp_path, capsys):
    config = _config(
        tmp_path,
        "suppressions:\n  - {control: NG-VPC-003, construct: 'Prod/**', reason: DHCP options from the shared VPC}\n",
    )
    code = main(["scan", "--config", str(config), str(ASSEMBLY), "--format", "sarif"])
    sarif = json.loads(capsys.readouterr().out)
    assert code == 1
    schema = json.loads(pack_path("netguard.schemas", "sarif-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(sarif)
    results = sarif["runs"][0]["results"]
    nat = next(r for r in results if r["locations"][0]["logicalLocations"][0]["name"] == "NatEip4D3C2B1A")
    assert nat["properties"]["construct"] == "Prod/AppStack/NatEip"
    assert nat["properties"]["stack"] == "Prod/AppStack"
    assert nat["locations"][0]["logicalLocations"][1]["fullyQualifiedName"] == "Prod/AppStack/NatEip"
    assert "Prod/AppStack/NatEip" in nat["message"]["text"]
    kinds = {r["ruleId"]: r["suppressions"][0]["kind"] for r in results if "suppressions" in r}
    assert kinds == {"NG-EIP-001": "inSource", "NG-VPC-003": "external"}


def test_junit_and_github_name_the_construct(capsys):
    main(["scan", "--config", str(FIXTURES / ".netguard.yaml"), str(ASSEMBLY), "--format", "junit"])
    assert "Prod/AppStack/NatEip" in capsys.readouterr().out
    main(["scan", "--config", str(FIXTURES / ".netguard.yaml"), str(ASSEMBLY), "--format", "github"])
    assert "Prod/AppStack/NatEip" in capsys.readouterr().out


def test_config_suppression_covers_exactly_the_matching_constructs(tmp_path, capsys):
    config = _config(
        tmp_path,
        "suppressions:\n"
        "  - control: NG-VPC-003\n"
        "    construct: NetworkStack/*\n"  # one segment: not NetworkStack/Shared/SharedVpc
        "    reason: DHCP options come from the shared-services account\n",
    )
    _code, report = _scan_json(capsys, "--config", str(config), str(ASSEMBLY))
    suppressed = {(f["control"], f["construct"]) for f in report["findings"] if f.get("suppressed")}
    assert suppressed == {
        ("NG-VPC-003", "NetworkStack/Vpc"),
        ("NG-VPC-003", "NetworkStack/LoggedVpc"),
        ("NG-EIP-001", "NetworkStack/BastionEip"),  # its Metadata skip, not the config
    }
    vpc = _by_resource(report)[("NG-VPC-003", "NetworkStack/Vpc")]
    assert vpc["suppression_reason"] == "DHCP options come from the shared-services account"
    assert vpc["suppressed_by"] == str(config)
    assert not _by_resource(report)[("NG-VPC-001", "NetworkStack/Vpc")].get("suppressed")  # another control
    assert not _by_resource(report)[("NG-VPC-003", "Prod/AppStack/Vpc")].get("suppressed")  # another stack


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("Prod/**", "Prod/AppStack/Vpc", True),
        ("Prod/*", "Prod/AppStack/Vpc", False),
        ("Prod/*/Vpc", "Prod/AppStack/Vpc", True),
        ("/Prod/AppStack/Vpc", "Prod/AppStack/Vpc", True),
        ("Prod/AppStack/Vp?", "Prod/AppStack/Vpc", True),
        ("Prod/AppStack", "Prod/AppStack/Vpc", False),
        ("Net[work]", "Netw", False),  # brackets are literal, not a character class
        ("**/NatEip", "Prod/AppStack/NatEip", True),
    ],
)
def test_construct_glob(pattern, path, matches):
    assert bool(construct_glob(pattern).fullmatch(path)) is matches


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("{control: NG-VPC-003, construct: 'Prod/**'}", "'reason' is a required property"),
        ("{control: NG-VPC-003, construct: 'Prod/**', reason: '  '}", "suppressions/0/reason"),
        ("{control: NG-VPC-999, construct: 'Prod/**', reason: x}", "unknown control NG-VPC-999"),
        ("{control: NG-VPC-003, reason: x}", "'construct' is a required property"),
    ],
)
def test_config_suppression_needs_a_reason_and_a_known_control(tmp_path, capsys, entry, problem):
    config = _config(tmp_path, f"suppressions:\n  - {entry}\n")
    with pytest.raises(NetguardError) as raised:
        load_config(config)
    assert problem in str(raised.value) and str(config) in str(raised.value)
    code = main(["scan", "--config", str(config), str(ASSEMBLY)])
    assert code == 2 and str(config) in capsys.readouterr().err


def test_a_listed_template_that_is_missing_is_an_error_naming_the_manifest(tmp_path, capsys):
    copy = _copy(tmp_path)
    next(copy.glob("assembly-Prod/*.template.json")).unlink()
    code, report = _scan_json(capsys, str(copy))
    assert code == 2
    [error] = report["errors"]
    assert error["file"] == str(copy / "assembly-Prod" / "manifest.json")
    assert "Prod/AppStack" in error["message"] and "ProdAppStack8A1B2C3D.template.json" in error["message"]
    assert report["summary"]["files_scanned"] == 2  # the other stacks still are


def test_assembly_files_are_not_templates_even_when_broken(tmp_path, capsys):
    copy = _copy(tmp_path)
    (copy / "tree.json").write_text("{ not json")
    (copy / "NetworkStack.assets.json").write_text("[")
    asset = next(copy.glob("asset.*"))
    (asset / "template.yaml").write_text("Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n")
    code, report = _scan_json(capsys, str(copy))
    assert code == 1 and not report["errors"]
    assert not any("asset." in f["file"] for f in report["findings"])
    code, report = _scan_json(capsys, str(asset))  # named explicitly: scanned
    assert report["summary"]["files_scanned"] == 1


def test_a_broken_cdk_manifest_is_an_error(tmp_path, capsys):
    copy = _copy(tmp_path)
    (copy / "manifest.json").write_text("{")
    code, report = _scan_json(capsys, str(copy))
    assert code == 2
    assert [e["file"] for e in report["errors"]] == [str(copy / "manifest.json")]


def test_another_tools_manifest_is_not_an_assembly(tmp_path, capsys):
    (tmp_path / "manifest.json").write_text('{"name": "web app", "version": "1.0", "icons": []}')
    (tmp_path / "asset.x").mkdir()
    (tmp_path / "asset.x" / "vpc.yaml").write_text("Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n")
    code, report = _scan_json(capsys, str(tmp_path))
    assert code == 1 and not report["errors"] and not report["notices"]
    assert report["findings"][0]["file"] == str(tmp_path / "asset.x" / "vpc.yaml")


def test_the_manifest_named_scans_the_assembly_once(capsys):
    _, by_folder = _scan_json(capsys, str(ASSEMBLY))
    _, by_manifest = _scan_json(capsys, str(ASSEMBLY / "manifest.json"))
    assert by_manifest["findings"] == by_folder["findings"]
    _, twice = _scan_json(capsys, str(ASSEMBLY), str(ASSEMBLY / "NetworkStack.template.json"), str(ASSEMBLY))
    assert twice["summary"]["files_scanned"] == by_folder["summary"]["files_scanned"] == len(TEMPLATES)
    assert twice["findings"] == by_folder["findings"]


def test_a_stack_without_display_name_is_named_by_its_artifact_id(tmp_path, capsys):
    copy = _copy(tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["artifacts"]["NetworkStack"]["displayName"]
    manifest["artifacts"]["NetworkStack"]["metadata"] = {}  # no logical-id map either
    (copy / "manifest.json").write_text(json.dumps(manifest))
    _, report = _scan_json(capsys, str(copy))
    spare = _by_resource(report)[("NG-EIP-001", "SpareEip0A9B8C7D")]
    assert spare["stack"] == "NetworkStack" and "construct" not in spare
    assert spare["message"].endswith("(CDK stack NetworkStack)")


# --- the plug-ins: the same findings under plain cfn-lint and Checkov, config suppressions included ---


def _env(config: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(BC_SKIP_MAPPING="TRUE", CHECKOV_SKIP_PACKAGE_REGISTRY="TRUE", NETGUARD_CONFIG=str(config))
    return env


SUPPRESS_PROD = (
    "suppressions:\n"
    "  - {control: NG-EIP-001, construct: 'Prod/AppStack/NatEip', reason: reserved for the partner allow-list}\n"
    "  - {control: NG-VPC-003, construct: '**', reason: DHCP options come from the shared-services account}\n"
)


def _ours(config: Path) -> set[tuple[str, str, str]]:
    result = scan([str(ASSEMBLY)], load_config(config))
    assert not result.errors
    return {(f.control, str(Path(f.file).resolve()), f.resource) for f in result.findings if f.suppressed is None}


def test_plain_cfnlint_honours_config_suppressions(tmp_path):
    config = _config(tmp_path, SUPPRESS_PROD)
    proc = subprocess.run(
        [str(BIN / "cfn-lint"), "-a", str(FIXTURES.parent / "checks" / "cfnlint"), "--format", "json", "--"]
        + [str(p) for p in TEMPLATES],
        env=_env(config),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    from netguard.catalog import control_for_engine_id

    plain = set()
    for match in json.loads(proc.stdout or "[]"):
        control = control_for_engine_id("cfn_lint", match["Rule"]["Id"])
        if control:
            plain.add((control.id, str(Path(match["Filename"]).resolve()), match["Location"]["Path"][1]))
    ours = _ours(config)
    assert plain == ours
    assert not any(control == "NG-VPC-003" or resource == "NatEip4D3C2B1A" for control, _, resource in ours)
    assert any(resource == "SpareEip0A9B8C7D" for _, _, resource in ours)


def test_plain_checkov_honours_config_suppressions(tmp_path):
    from netguard.catalog import control_for_engine_id, load_catalog

    config = _config(tmp_path, SUPPRESS_PROD)
    ids = ",".join(c.engines["checkov"] for c in load_catalog().values() if "checkov" in c.engines)
    proc = subprocess.run(
        [
            str(BIN / "checkov"),
            *("-d", str(ASSEMBLY), "--external-checks-dir", str(FIXTURES.parent / "checks" / "checkov")),
            *("--check", ids, "-o", "json", "--compact", "--skip-download"),
        ],
        env=_env(config),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    reports = json.loads(proc.stdout)
    plain = set()
    for report in reports if isinstance(reports, list) else [reports]:
        for record in report["results"]["failed_checks"]:
            control = control_for_engine_id("checkov", record["check_id"])
            plain.add((control.id, str(Path(record["file_abs_path"]).resolve()), record["resource"].rsplit(".", 1)[-1]))
    assert plain == _ours(config)


def test_a_cdk_nested_stack_is_followed_through_its_asset_path():
    # Its TemplateURL is built from asset parameters; `aws:asset:path` names the file beside the parent.
    from netguard.config import DEFAULT_CONFIG
    from netguard.scan.run import scan_template

    unit = scan_template(str(ASSEMBLY / "NetworkStack.template.json"), DEFAULT_CONFIG)
    nested = [f for f in unit.findings if f.file.endswith(".nested.template.json")]
    assert nested and all(f.via and f.via.endswith("NetworkStack.template.json:106") for f in nested)
    assert not any("not a local file" in notice for notice in unit.notices)
