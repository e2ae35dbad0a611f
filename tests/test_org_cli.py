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


# --- 1. exit codes that gate, 2. the safety flag, 3. the canary cycle, as a pipeline runs them --------


def _org(url: str, *args: str, config: Path = CONFIG) -> subprocess.CompletedProcess[str]:
    done, _ = netguard("org", *args, "--config", str(config), "--endpoint-url", url)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    return done


def _json(url: str, *args: str, config: Path = CONFIG) -> tuple[int, dict]:
    done = _org(url, *args, "--format", "json", config=config)
    return done.returncode, json.loads(done.stdout) if done.stdout else {}


def _variant(tmp_path: Path, old: str, new: str, name: str = "org.yaml") -> Path:
    text = CONFIG.read_text()
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new))
    return path


def test_exit_codes_gate_plan_apply_and_drift(moto_server, tmp_path):
    client = boto3.client("organizations", region_name="us-east-1", endpoint_url=moto_server)
    test_org.build_org(client)

    assert _org(moto_server, "plan").returncode == 0  # without the flag: 0 whatever is pending, as before
    code, planned = _json(moto_server, "plan", "--detailed-exitcode")
    assert code == 1 and planned["summary"]["changes"] == 15
    assert _org(moto_server, "apply", "--detailed-exitcode").returncode == 1  # no --yes: a plan
    assert _org(moto_server, "plan", "--stage", "canary", "--detailed-exitcode").returncode == 1
    code, drifted = _json(moto_server, "drift")
    assert code == 3 and drifted["summary"] == {"changes": 15, "hand-edit": 0, "unapplied": 15}

    code, applied = _json(moto_server, "apply", "--yes", "--detailed-exitcode")
    assert code == 0 and applied["write_calls"] == 15
    assert _org(moto_server, "plan", "--detailed-exitcode").returncode == 0
    assert _org(moto_server, "apply", "--detailed-exitcode").returncode == 0
    assert _org(moto_server, "drift").returncode == 0

    changed = _variant(
        tmp_path,
        "    guardrails: [ng-deny-network-deletes, ng-deny-eip-management]\n",
        "    guardrails: [ng-deny-network-deletes, ng-deny-eip-management, ng-deny-topology-creation]\n",
    )
    code, drifted = _json(moto_server, "drift", config=changed)
    assert code == 3  # org.yaml changed and not applied yet; nobody edited the organization
    assert {c["kind"] for c in drifted["changes"]} == {"unapplied"}
    assert _org(moto_server, "plan", "--detailed-exitcode", config=changed).returncode == 1

    flow = next(
        p["Id"]
        for p in client.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"]
        if p["Name"] == "netguard-ng-protect-flow-logs"
    )
    client.update_policy(
        PolicyId=flow,
        Content='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}',
    )
    code, drifted = _json(moto_server, "drift", config=changed)
    assert code == 1  # a hand edit, whatever else is pending
    kinds = {(c["action"], c["policy"], c["kind"]) for c in drifted["changes"]}
    assert ("update", "netguard-ng-protect-flow-logs", "hand-edit") in kinds
    assert ("attach", "netguard-ng-deny-topology-creation", "unapplied") in kinds
    text = _org(moto_server, "drift", config=changed)
    assert text.returncode == 1
    assert "update  netguard-ng-protect-flow-logs  (content differs)  [hand edit: changed outside netguard]" in (
        text.stdout
    )
    assert "attach  netguard-ng-deny-topology-creation to /Sandbox  [config not applied yet]" in text.stdout
    assert "netguard: 3 changes drifted: 1 hand edits, 2 config not applied yet" in text.stdout

    missing = tmp_path / "nope.yaml"
    for command in ("plan", "apply", "drift"):
        done = _org(moto_server, command, "--detailed-exitcode" if command != "drift" else "--format=text",
                    config=missing)  # fmt: skip
        assert done.returncode == 2 and done.stderr.startswith(f"netguard: error: {missing}: cannot read")


def test_apply_refuses_a_config_with_no_targets_unless_told(moto_server, tmp_path):
    client = boto3.client("organizations", region_name="us-east-1", endpoint_url=moto_server)
    ids = test_org.build_org(client)
    assert _org(moto_server, "apply", "--yes").returncode == 0
    bare = tmp_path / "org.yaml"
    bare.write_text(CONFIG.read_text().split("targets:")[0])  # the same org.yaml with its targets cut off
    for args in (("apply", "--yes"), ("apply",)):
        done = _org(moto_server, *args, config=bare)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr == (
            f"netguard: error: {bare}: the config has no targets, so applying it would detach every guardrail"
            " netguard manages; check that this is the right org.yaml, or pass --allow-detach-all if that is what"
            " you want\n"
        )
    assert len(test_org._names(client, ids["prod"])) == 5  # nothing detached
    shown = _org(moto_server, "plan", config=bare)
    assert shown.returncode == 0 and "apply refuses it without --allow-detach-all" in shown.stdout
    done = _org(moto_server, "apply", "--yes", "--allow-detach-all", config=bare)
    assert done.returncode == 0, done.stderr
    for target in ids.values():
        assert test_org._names(client, target) == {"FullAWSAccess"}


def test_apply_refuses_a_plan_that_strips_a_target_of_every_guardrail(moto_server, tmp_path):
    client = boto3.client("organizations", region_name="us-east-1", endpoint_url=moto_server)
    ids = test_org.build_org(client)
    assert _org(moto_server, "apply", "--yes").returncode == 0
    no_sandbox = _variant(
        tmp_path,
        "  - target: /Sandbox\n    guardrails: [ng-deny-network-deletes, ng-deny-eip-management]\n    stage: canary\n",
        "",
    )
    done = _org(moto_server, "apply", "--yes", config=no_sandbox)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        f"netguard: error: {no_sandbox}: refusing to apply: the plan detaches every netguard guardrail from"
        f" {ids['sandbox']}; pass --allow-detach-all if that is what you want\n"
    )
    assert len(test_org._names(client, ids["sandbox"])) == 3
    fewer = _variant(  # one of the sandbox's two guardrails removed: not every one, so no refusal
        tmp_path,
        "    guardrails: [ng-deny-network-deletes, ng-deny-eip-management]\n    stage",
        "    guardrails: [ng-deny-network-deletes]\n    stage",
        name="fewer.yaml",
    )
    assert _org(moto_server, "apply", "--detailed-exitcode", config=fewer).returncode == 1
    done = _org(moto_server, "apply", "--yes", "--allow-detach-all", config=no_sandbox)
    assert done.returncode == 0, done.stderr
    assert test_org._names(client, ids["sandbox"]) == {"FullAWSAccess"}


def test_the_canary_cycle_through_the_command_line(moto_server, tmp_path):
    client = boto3.client("organizations", region_name="us-east-1", endpoint_url=moto_server)
    ids = test_org.build_org(client)
    assert _org(moto_server, "apply", "--yes").returncode == 0
    new = _variant(tmp_path, *test_org.ADD_EXEMPTION)

    def content(target: str) -> tuple[str, str]:
        (name,) = [n for n in test_org._names(client, target) if n.startswith("netguard-ng-deny-network-deletes")]
        policy = next(p for p in client.list_policies(Filter="SERVICE_CONTROL_POLICY")["Policies"] if p["Name"] == name)
        return name, client.describe_policy(PolicyId=policy["Id"])["Policy"]["Content"]

    shown = _org(moto_server, "plan", "--stage", "canary", config=new)
    assert shown.returncode == 0
    for line in (
        "create  netguard-ng-deny-network-deletes-canary  (canary version of netguard-ng-deny-network-deletes with"
        " its new content,",
        "attach  netguard-ng-deny-network-deletes-canary to /Sandbox  (canary: in place of"
        " netguard-ng-deny-network-deletes)",
        "detach  netguard-ng-deny-network-deletes from /Sandbox  (canary: replaced by"
        " netguard-ng-deny-network-deletes-canary)",
    ):
        assert line in shown.stdout
    assert '    +            "arn:aws:iam::*:role/network/Automation"' in shown.stdout  # the canary diff

    assert _org(moto_server, "apply", "--yes", "--stage", "canary", config=new).returncode == 0
    assert content(ids["sandbox"])[0] == "netguard-ng-deny-network-deletes-canary"
    assert "Automation" in content(ids["sandbox"])[1]
    assert content(ids["prod"])[0] == "netguard-ng-deny-network-deletes"
    assert "Automation" not in content(ids["prod"])[1]
    assert _org(moto_server, "plan", "--stage", "canary", "--detailed-exitcode", config=new).returncode == 0
    assert _org(moto_server, "drift", config=new).returncode == 3  # the promotion is config not applied yet

    shown = _org(moto_server, "plan", config=new)
    for line in (
        "update  netguard-ng-deny-network-deletes  (content differs; promotes the content tried on the canary"
        " targets as netguard-ng-deny-network-deletes-canary)",
        "attach  netguard-ng-deny-network-deletes to /Sandbox  (promote: in place of"
        " netguard-ng-deny-network-deletes-canary)",
        "detach  netguard-ng-deny-network-deletes-canary from /Sandbox  (promote: replaced by"
        " netguard-ng-deny-network-deletes)",
        "delete  netguard-ng-deny-network-deletes-canary  (promoted: canary version retired)",
    ):
        assert line in shown.stdout
    assert _org(moto_server, "apply", "--yes", config=new).returncode == 0
    for target in (ids["sandbox"], ids["prod"]):
        name, text = content(target)
        assert name == "netguard-ng-deny-network-deletes" and "Automation" in text
    assert _org(moto_server, "drift", config=new).returncode == 0
