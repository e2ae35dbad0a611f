"""The org and replay command lines as a user meets them (issue #17): exit codes that gate a pipeline,
the safety flag, and mistakes (no credentials, no network, a wrong bucket) reported as the user's to
fix, quickly, never as an internal error.

Each command runs as its own process, as in a pipeline, against a moto_server started here on
127.0.0.1 or against a local port nothing listens on. Nothing here ran against AWS.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests import test_org
from tests.conftest import FIXTURES, ROOT

CONFIG = FIXTURES / "org" / "org-targets.yaml"
moto_server = test_org.moto_server  # the fixture: a real moto_server on 127.0.0.1, stopped after the test
BOUND = 30  # seconds: a safety net only; the measured times are printed (pytest -s) and are a few seconds

pytestmark = pytest.mark.usefixtures("fake_aws_credentials")


def netguard(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    """netguard as a pipeline runs it; (the finished process, seconds it took)."""
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "netguard", *args],
        capture_output=True,
        text=True,
        timeout=120,  # a hang fails the test instead of the suite
        cwd=ROOT,
        env=env if env is not None else os.environ.copy(),
        check=False,
    )
    return done, time.monotonic() - start


def closed_port() -> str:
    """An endpoint URL on 127.0.0.1 whose port nothing listens on: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def no_credentials() -> dict[str, str]:
    """The environment of a machine with no AWS credentials anywhere: no variables, no files, no
    instance metadata to ask."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return env


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scp")
    done, _ = netguard("policy", "render", "--config", str(CONFIG), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def assert_user_error(done: subprocess.CompletedProcess[str], seconds: float, *expected: str) -> None:
    print(f"\n{done.args[3:5]}: exit {done.returncode} in {seconds:.2f} s: {done.stderr.strip()}")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.startswith("netguard: error: ")
    for text in expected:
        assert text in done.stderr
    assert seconds < BOUND


# --- 4. mistakes are the user's to fix, and fail fast ---------------------------------------------


@pytest.mark.parametrize("command", ["plan", "drift", "apply"])
def test_org_with_no_network_fails_fast_saying_so(command):
    done, seconds = netguard("org", command, "--config", str(CONFIG), "--endpoint-url", closed_port())
    assert_user_error(
        done,
        seconds,
        "netguard: error: organization: ListRoots failed: no connection could be made (3 attempts in ",
        "likely fix: check the network and any proxy (HTTPS_PROXY), the --endpoint-url and the --region",
    )
    assert seconds < 10  # two retries, 0.5 s and 1 s apart, on a refused connection


@pytest.mark.parametrize("command", ["plan", "drift"])
def test_org_with_no_credentials_fails_at_once_saying_how_to_give_them(command):
    done, seconds = netguard("org", command, "--config", str(CONFIG), env=no_credentials())
    assert_user_error(
        done,
        seconds,
        "netguard: error: organization: ListRoots failed: NoCredentialsError: Unable to locate credentials;"
        " likely fix: no usable AWS credentials: pass --profile (or set AWS_PROFILE), run `aws configure`",
    )


def test_org_with_an_unknown_profile_names_it():
    done, seconds = netguard("org", "plan", "--config", str(CONFIG), "--profile", "no-such-profile")
    assert_user_error(done, seconds, "ProfileNotFound", "check --profile and AWS_PROFILE")


def test_org_access_denied_names_the_call_and_the_fix():
    from tests.test_aws_retries import _Server

    denied = json.dumps({"__type": "AccessDeniedException", "message": "not for you"}).encode()
    with _Server(400, denied) as url:
        done, seconds = netguard("org", "plan", "--config", str(CONFIG), "--endpoint-url", url)
    assert_user_error(
        done,
        seconds,
        "ListRoots failed: AccessDeniedException: not for you; likely fix: the identity these credentials belong"
        " to may not call organizations:ListRoots",
    )


def test_replay_from_s3_with_no_network_fails_fast_even_with_worker_processes(rendered):
    # --jobs 2: the listing fails inside the worker pool's task feeder; the error once hung the pool
    done, seconds = netguard(
        "policy", "replay", "--policies", str(rendered), "--config", str(CONFIG), "--jobs", "2",
        "--source", "s3://org-trail/AWSLogs", "--endpoint-url", closed_port(),
    )  # fmt: skip
    assert_user_error(
        done,
        seconds,
        "netguard: error: s3://org-trail/AWSLogs: ListObjectsV2 s3://org-trail/AWSLogs failed: no connection could"
        " be made (3 attempts in ",
        "likely fix: check the network",
    )


def test_replay_from_s3_with_no_credentials(rendered):
    done, seconds = netguard(
        "policy", "replay", "--policies", str(rendered), "--config", str(CONFIG),
        "--source", "s3://org-trail/AWSLogs", env=no_credentials(),
    )  # fmt: skip
    assert_user_error(done, seconds, "ListObjectsV2 s3://org-trail/AWSLogs failed: NoCredentialsError",
                      "likely fix: no usable AWS credentials")  # fmt: skip


def test_replay_with_an_unknown_profile_is_not_an_internal_error(rendered):
    done, seconds = netguard(
        "policy", "replay", "--policies", str(rendered), "--config", str(CONFIG),
        "--source", "s3://org-trail/AWSLogs", "--profile", "no-such-profile",
    )  # fmt: skip
    assert_user_error(done, seconds, "ProfileNotFound", "check --profile and AWS_PROFILE")


def test_replay_from_a_bucket_that_does_not_exist(rendered, moto_server):
    boto3.client("s3", region_name="us-east-1", endpoint_url=moto_server).create_bucket(Bucket="org-trail")
    for jobs in ("1", "2"):
        done, seconds = netguard(
            "policy", "replay", "--policies", str(rendered), "--config", str(CONFIG), "--jobs", jobs,
            "--source", "s3://org-trial/AWSLogs", "--endpoint-url", moto_server,
        )  # fmt: skip
        assert_user_error(
            done,
            seconds,
            "netguard: error: s3://org-trial/AWSLogs: ListObjectsV2 s3://org-trial/AWSLogs failed: NoSuchBucket:",
            "likely fix: check the bucket name in the s3:// location",
        )
