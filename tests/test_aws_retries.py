"""AWS calls are bounded in time (issue #13): throttling, server errors, hung or dropped connections
are retried by one loop until the call's budget runs out, then an error names the call.

Fake clocks make the budget arithmetic exact; the end-to-end tests run a throttling or silent HTTP
server on 127.0.0.1 (started and stopped here) or moto in-process, with budgets of a second or two."""

from __future__ import annotations

import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.exceptions import ConnectionClosedError
from botocore.stub import Stubber
from moto import mock_aws

from netguard.cli import main
from netguard.iam.evaluator import FULL_AWS_ACCESS, Policy
from netguard.org import aws, rollout
from netguard.policy import replay as rp
from tests.conftest import FIXTURES

CONFIG = FIXTURES / "org" / "org-targets.yaml"
SEED = json.loads((FIXTURES / "cloudtrail" / "seed-events.json").read_text())["Records"]


pytestmark = pytest.mark.usefixtures("fake_aws_credentials")


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_clients_make_one_attempt_per_call_with_short_timeouts():
    client = aws.make_client("organizations")
    config = client.meta.config
    assert config.retries["total_max_attempts"] == 1
    assert (config.connect_timeout, config.read_timeout) == (aws.CONNECT_TIMEOUT, aws.READ_TIMEOUT) == (5.0, 30.0)


def test_a_call_throttled_every_time_gives_up_when_its_budget_runs_out():
    client = aws.make_client("organizations")
    fake = FakeTime()
    organization = rollout.Organization(client, budget=aws.Budget(10, clock=fake.clock, sleep=fake.sleep))
    with Stubber(client) as stubber:
        for _ in range(20):
            stubber.add_client_error("list_roots", "TooManyRequestsException", "Rate exceeded", 400)
        with pytest.raises(aws.AwsCallFailed) as caught:
            organization.root()
    assert fake.sleeps == [0.5, 1.0, 2.0, 4.0]  # the next wait (8 s) would pass the 10 s budget
    assert caught.value.file == "organization"
    assert caught.value.message == (
        "ListRoots failed after 5 attempts in 7.5 s, out of retry time (--aws-retry-seconds 10 per call);"
        " last answer: TooManyRequestsException: Rate exceeded"
    )


def test_the_run_budget_bounds_all_calls_together():
    client = aws.make_client("organizations")
    fake = FakeTime()
    budget = aws.Budget(call_seconds=100, run_seconds=5, clock=fake.clock, sleep=fake.sleep)
    organization = rollout.Organization(client, budget=budget)
    with Stubber(client) as stubber:
        for _ in range(3):
            stubber.add_client_error("list_roots", "ThrottlingException", "slow down", 400)
        stubber.add_response("list_roots", {"Roots": [{"Id": "r-1", "Name": "Root", "Arn": "arn:aws:x"}]})
        for _ in range(5):
            stubber.add_client_error("describe_policy", "ServiceException", "oops", 500)
        assert organization.root()["Id"] == "r-1"
        with pytest.raises(
            aws.AwsCallFailed, match=r"DescribePolicy p-1 failed after 3 attempts .*\(5 s of retries per run\)"
        ):
            organization.call("describe_policy", PolicyId="p-1")
    assert sum(fake.sleeps) <= 5


def test_errors_that_retrying_cannot_fix_fail_at_once():
    client = aws.make_client("organizations")
    fake = FakeTime()
    organization = rollout.Organization(client, budget=aws.Budget(clock=fake.clock, sleep=fake.sleep))
    with Stubber(client) as stubber:
        stubber.add_client_error("attach_policy", "AccessDeniedException", "not allowed", 403)
        with pytest.raises(aws.AwsCallFailed) as caught:
            organization.call("attach_policy", PolicyId="p-1", TargetId="ou-1")
    assert fake.sleeps == []
    assert caught.value.message == "AttachPolicy p-1 ou-1 failed: AccessDeniedException: not allowed"


class _Server:
    """An HTTP server on 127.0.0.1 that answers every request the same way, counting them."""

    def __init__(self, status: int, body: bytes, delay: float = 0.0) -> None:
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/x-amz-json-1.1")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up first

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


THROTTLED = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()


def test_org_apply_with_every_call_throttled_exits_within_its_budget(capsys):
    with _Server(400, THROTTLED) as url:
        start = time.monotonic()
        code = main(
            ["org", "apply", "--yes", "--config", str(CONFIG), "--endpoint-url", url, "--aws-retry-seconds", "2"]
        )
        elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert code == 2 and elapsed < 6, elapsed
    assert "netguard: error: organization: ListRoots failed after 3 attempts" in err
    assert "out of retry time (--aws-retry-seconds 2 per call); last answer: ThrottlingException" in err


def test_a_hung_endpoint_is_bounded_by_the_read_timeout(monkeypatch, capsys):
    monkeypatch.setattr(aws, "READ_TIMEOUT", 0.3)
    with _Server(200, b"{}", delay=3) as url:
        start = time.monotonic()
        code = main(["org", "plan", "--config", str(CONFIG), "--endpoint-url", url, "--aws-retry-seconds", "1"])
        elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    assert code == 2 and elapsed < 4, elapsed
    assert "ListRoots failed after 2 attempts" in err and "ReadTimeoutError" in err


def _policies():
    return rp.compile_policies([[Policy("FullAWSAccess", FULL_AWS_ACCESS)]])


def test_an_unreadable_s3_object_costs_its_budget_and_the_replay_goes_on():
    with mock_aws():
        s3 = aws.make_client("s3")  # as the command line makes it: botocore itself does not retry
        s3.create_bucket(Bucket="trail")
        for key in ("logs/good.json.gz", "logs/bad.json.gz"):
            s3.put_object(Bucket="trail", Key=key, Body=gzip.compress(json.dumps({"Records": SEED[:4]}).encode()))
        calls = []

        def drop(request, **_kwargs):
            if request.url.endswith("bad.json.gz"):
                calls.append(request.url)
                raise ConnectionClosedError(endpoint_url=request.url)

        s3.meta.events.register("before-send.s3.GetObject", drop)
        source = rp.Source("s3://trail/logs", s3, budget=aws.Budget(call_seconds=1.2))
        start = time.monotonic()
        totals = rp.replay(_policies(), source, rp.Filters())
        elapsed = time.monotonic() - start
    assert elapsed < 3, elapsed
    assert len(calls) == 2  # waits of 0.5 s, then 1 s would pass the 1.2 s budget
    assert totals.files == 2 and totals.records == 4
    (error,) = totals.errors
    assert error.file == "s3://trail/logs/bad.json.gz"
    assert error.message.startswith("cannot read: GetObject s3://trail/logs/bad.json.gz failed after 2 attempts")
    assert "ConnectionClosedError" in error.message


def test_s3_server_errors_are_retried_then_reported():
    client = boto3.client("s3", region_name="us-east-1")
    fake = FakeTime()
    source = rp.Source("s3://b/p", client, budget=aws.Budget(call_seconds=3, clock=fake.clock, sleep=fake.sleep))
    with Stubber(client) as stubber:
        for _ in range(4):
            stubber.add_client_error("get_object", "SlowDown", "Please reduce your request rate.", 503)
        found = source.read("s3://b/p/x.json.gz")
    assert fake.sleeps == [0.5, 1.0]
    assert found.message == (
        "cannot read: GetObject s3://b/p/x.json.gz failed after 3 attempts in 1.5 s, out of retry time"
        " (--aws-retry-seconds 3 per call); last answer: SlowDown: Please reduce your request rate."
    )
