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


@pytest.fixture
def fake_aws_credentials(monkeypatch):
    """Credentials moto accepts, and none of the machine's profile or retry settings."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"):
        monkeypatch.delenv(key, raising=False)
