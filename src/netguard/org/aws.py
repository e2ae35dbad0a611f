"""AWS calls whose time is bounded: one retry loop with a deadline, instead of retries inside retries.

botocore's own retries are off (one attempt per call), its connect and read timeouts are short, and
netguard retries throttling, server errors and dropped connections itself with exponential backoff,
until the next wait would pass the call's budget (--aws-retry-seconds) or the run's. Then the call is
an error naming it (operation and what it was for), the attempts, the time spent and the last answer.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from netguard.errors import NetguardError

CONNECT_TIMEOUT = 5.0  # seconds to open a connection
READ_TIMEOUT = 30.0  # seconds without a byte from AWS before an attempt fails
CALL_SECONDS = 60.0  # per call: no retry starts after this (--aws-retry-seconds)
RUN_SECONDS = 600.0  # per run (per worker process): all retry waits together
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 8.0

THROTTLED = {
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "ConcurrentModificationException",  # Organizations: another change to the same entity is under way
    "PriorRequestNotComplete",
}
SERVER_ERRORS = {"InternalError", "InternalFailure", "ServiceUnavailable", "ServiceException", "RequestTimeout"}

T = TypeVar("T")


class AwsCallFailed(NetguardError):
    """An AWS call that failed for good: not retried, or retried until its budget ran out."""

    def __init__(self, file: str, message: str, *, code: str | None, uncertain: bool) -> None:
        super().__init__(file, message)
        self.code = code  # the AWS error code of the last answer, None for a transport error
        self.uncertain = uncertain  # an earlier attempt may have been carried out (its answer was lost)


@dataclass
class Budget:
    """How long retries of one call, and of all calls of a run, may take."""

    call_seconds: float = CALL_SECONDS
    run_seconds: float = RUN_SECONDS
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    waited: float = field(default=0.0, init=False)


def make_client(
    service: str,
    *,
    endpoint_url: str | None = None,
    profile: str | None = None,
    region: str | None = None,
) -> Any:
    """A boto3 client making one attempt per call with short timeouts; `call` does the retrying."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(profile_name=profile, region_name=region or "us-east-1")
    config = Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )
    return session.client(service, endpoint_url=endpoint_url, config=config)


def api_name(operation: str) -> str:
    """create_policy -> CreatePolicy, as AWS names the call."""
    return "".join(part[:1].upper() + part[1:] for part in operation.split("_"))


_CREDENTIALS = re.compile(r"(Signature|Credential|X-Amz-Security-Token)=[^&\s]+")


def _describe(exc: BaseException) -> tuple[str | None, str, bool, bool]:
    """(error code, text, retryable, may have been carried out) for an exception of one attempt."""
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        HTTPClientError,
        IncompleteReadError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        text = f"{code}: {error.get('Message') or ''}".rstrip(": ")
        return code, text, code in THROTTLED or code in SERVER_ERRORS or status >= 500, False
    text = _CREDENTIALS.sub(r"\1=...", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        return None, text, True, False  # the request never reached AWS
    if isinstance(exc, (BotoConnectionError, HTTPClientError, IncompleteReadError)):
        return None, text, True, True  # sent, but the answer was lost: AWS may have carried it out
    return None, text, False, False


def call(fn: Callable[[], T], label: str, budget: Budget, *, where: str = "aws") -> T:
    """fn(), retried while it fails for a reason worth retrying and the budgets allow another wait."""
    from botocore.exceptions import BotoCoreError, ClientError

    start = budget.clock()
    attempts = 0
    uncertain = False
    while True:
        attempts += 1
        try:
            return fn()
        except (ClientError, BotoCoreError) as exc:
            code, text, retryable, maybe_done = _describe(exc)
            wait = min(BACKOFF_FIRST * 2 ** (attempts - 1), BACKOFF_MAX)
            spent = budget.clock() - start
            if not retryable:
                raise AwsCallFailed(where, f"{label} failed: {text}", code=code, uncertain=uncertain) from None
            uncertain = uncertain or maybe_done
            if spent + wait > budget.call_seconds or budget.waited + wait > budget.run_seconds:
                which = (
                    f"--aws-retry-seconds {budget.call_seconds:g} per call"
                    if spent + wait > budget.call_seconds
                    else f"{budget.run_seconds:g} s of retries per run"
                )
                raise AwsCallFailed(
                    where,
                    f"{label} failed after {attempts} attempts in {spent:.1f} s, out of retry time ({which});"
                    f" last answer: {text}",
                    code=code,
                    uncertain=uncertain,
                ) from None
            budget.waited += wait
            budget.sleep(wait)


def add_retry_option(parser: argparse.ArgumentParser) -> None:
    """--aws-retry-seconds, the same for every command that calls AWS."""
    parser.add_argument(
        "--aws-retry-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="how long one AWS call may be retried (throttling, server errors, dropped connections) before it"
        " is an error naming the call; each attempt times out after 5 s to connect, 30 s to read (default 60)",
    )
