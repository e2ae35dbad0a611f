from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

os.environ.setdefault("BC_SKIP_MAPPING", "TRUE")


def fixture_files() -> list[Path]:
    cfn = sorted((FIXTURES / "cloudformation").glob("*.y*ml")) + sorted((FIXTURES / "cloudformation").glob("*.json"))
    terraform = sorted((FIXTURES / "terraform").glob("*/*.tf")) + sorted((FIXTURES / "terraform").glob("*/*.tf.json"))
    called = sorted((FIXTURES / "terraform_modules").glob("*/*.tf"))  # scanned only through module calls
    return cfn + terraform + called


@pytest.fixture(scope="session")
def fixture_scan():
    """One scan of all fixtures, shared by the harness tests."""
    from netguard.scan.run import scan

    paths = [str(FIXTURES / "cloudformation"), str(FIXTURES / "terraform")]
    return scan(paths, fixture_config())


def fixture_config():
    """fixtures/.netguard.yaml: it sits below the repository root, so it is always named explicitly."""
    from netguard.config import load_config

    return load_config(FIXTURES / ".netguard.yaml")
