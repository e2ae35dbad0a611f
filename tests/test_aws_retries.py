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
    assert caught.value.message.startswith(
        "AttachPolicy p-1 ou-1 failed: AccessDeniedException: not allowed; likely fix: the identity these"
        " credentials belong to may not call organizations:AttachPolicy: allow it"
    )
    assert "management account or a delegated administrator" in caught.value.message


def test_a_connection_that_cannot_be_made_gets_two_quick_retries():
    from botocore.exceptions import EndpointConnectionError

    fake = FakeTime()
    attempts = []

    def refused():
        attempts.append(fake.now)
        raise EndpointConnectionError(endpoint_url="https://organizations.us-east-1.amazonaws.com/")

    with pytest.raises(aws.AwsCallFailed) as caught:
        aws.call(refused, "ListRoots", aws.Budget(clock=fake.clock, sleep=fake.sleep), where="organization")
    assert fake.sleeps == [0.5, 1.0]  # not a minute of backoff on a network that is not there
    assert caught.value.message.startswith(
        "ListRoots failed: no connection could be made (3 attempts in 1.5 s): EndpointConnectionError:"
    )
    assert "likely fix: check the network and any proxy (HTTPS_PROXY), the --endpoint-url and the --region" in (
        caught.value.message
    )
    assert caught.value.uncertain is False  # the request never left: nothing may have been carried out


def test_connect_timeouts_bound_a_call_to_about_ten_seconds():
    from botocore.exceptions import ConnectTimeoutError

    fake = FakeTime()

    def black_hole():
        fake.now += aws.CONNECT_TIMEOUT  # what a network that drops packets costs each attempt
        raise ConnectTimeoutError(endpoint_url="https://s3.amazonaws.com/")

    with pytest.raises(aws.AwsCallFailed, match=r"no connection could be made \(2 attempts in 10.5 s\)"):
        aws.call(black_hole, "ListObjectsV2 s3://b/p", aws.Budget(clock=fake.clock, sleep=fake.sleep), where="s3://b/p")
    assert fake.now <= aws.CONNECT_SECONDS + 1


def test_throttling_still_gets_the_whole_budget_after_a_refused_connection():
    from botocore.exceptions import ClientError, EndpointConnectionError

    fake = FakeTime()
    answers = [EndpointConnectionError(endpoint_url="x")] + [
        ClientError({"Error": {"Code": "Throttling", "Message": "slow"}}, "ListRoots") for _ in range(4)
    ]

    def flaky():
        if answers:
            raise answers.pop(0)
        return "ok"

    assert aws.call(flaky, "ListRoots", aws.Budget(clock=fake.clock, sleep=fake.sleep)) == "ok"
    assert fake.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]


@pytest.mark.parametrize(
    ("code", "fix"),
    [
        ("NoSuchBucket", "check the bucket name in the s3:// location"),
        ("AccessDenied", "may not call s3:ListObjectsV2"),
        ("ExpiredToken", "the credentials have expired"),
        ("InvalidAccessKeyId", "the credentials were refused"),
        ("PermanentRedirect", "pass --region with the bucket's region"),
    ],
)
def test_s3_mistakes_fail_at_once_saying_the_likely_fix(code, fix):
    from botocore.exceptions import ClientError

    fake = FakeTime()

    def answer():
        raise ClientError({"Error": {"Code": code, "Message": "no"}}, "ListObjectsV2")

    with pytest.raises(aws.AwsCallFailed) as caught:
        aws.call(answer, "ListObjectsV2 s3://b/p", aws.Budget(clock=fake.clock, sleep=fake.sleep), where="s3://b/p")
    assert fake.sleeps == []
    assert caught.value.message.startswith(f"ListObjectsV2 s3://b/p failed: {code}: no; likely fix: ")
    assert fix in caught.value.message


def test_no_credentials_fail_at_once_saying_where_credentials_come_from():
    from botocore.exceptions import NoCredentialsError

    fake = FakeTime()

    def unsigned():
        raise NoCredentialsError()

    with pytest.raises(aws.AwsCallFailed) as caught:
        aws.call(unsigned, "ListRoots", aws.Budget(clock=fake.clock, sleep=fake.sleep), where="organization")
    assert fake.sleeps == []
    assert caught.value.message == (
        "ListRoots failed: NoCredentialsError: Unable to locate credentials; likely fix: no usable AWS credentials:"
        " pass --profile (or set AWS_PROFILE), run `aws configure` or `aws sso login`, or set AWS_ACCESS_KEY_ID and"
        " AWS_SECRET_ACCESS_KEY; netguard finds credentials as the AWS CLI does"
    )


def test_a_failed_call_survives_pickling_so_a_worker_pool_does_not_hang():
    import pickle

    failed = aws.AwsCallFailed(
        "s3://b/p", "ListObjectsV2 s3://b/p failed: NoSuchBucket", code="NoSuchBucket", uncertain=True
    )
    again = pickle.loads(pickle.dumps(failed))
    assert (type(again), again.file, again.message, again.code, again.uncertain) == (
        aws.AwsCallFailed,
        "s3://b/p",
        "ListObjectsV2 s3://b/p failed: NoSuchBucket",
        "NoSuchBucket",
        True,
    )


def test_an_unknown_profile_and_a_bad_endpoint_are_user_errors():
    from netguard.errors import NetguardError

    with pytest.raises(
        NetguardError,
        match=r"creating the s3 client failed: ProfileNotFound: .*likely fix: the"
        r" profile is in neither ~/.aws/config",
    ):
        aws.make_client("s3", profile="no-such-profile-netguard")
    with pytest.raises(NetguardError, match="is not a usable endpoint URL"):
        aws.make_client("s3", endpoint_url="not a url")


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
