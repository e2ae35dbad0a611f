from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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


@contextmanager
def running_moto_server(env: Mapping[str, str] | None = None) -> Iterator[str]:
    """A real moto_server on a free 127.0.0.1 port (its URL), stopped when the block ends; env adds
    variables to its environment (MOTO_IAM_LOAD_MANAGED_POLICIES, say)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("moto_server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
