"""AWS calls whose time is bounded: one retry loop with a deadline, instead of retries inside retries.

botocore's own retries are off (one attempt per call), its connect and read timeouts are short, and
netguard retries throttling, server errors and dropped connections itself with exponential backoff,
until the next wait would pass the call's budget (--aws-retry-seconds) or the run's. Then the call is
an error naming it (operation and what it was for), the attempts, the time spent and the last answer.

A connection that cannot be made at all (no network, a wrong --endpoint-url, a proxy or DNS failure)
is not worth a minute of retries: it gets at most CONNECT_RETRIES quick retries and fails within
about CONNECT_SECONDS. Mistakes only the user can fix (no credentials, an unknown profile, access
denied, a bucket that does not exist) are never retried, and their error says the likely fix.
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
CONNECT_RETRIES = 2  # a connection that cannot be made: at most this many retries (0.5 s, then 1 s apart)
CONNECT_SECONDS = 10.0  # ... and no retry of it starts after this long (two 5 s connect timeouts)

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

    def __reduce__(self) -> tuple[Any, ...]:
        """Picklable, so a failure raised while a worker pool reads S3 reaches the parent as itself;
        the default pickling calls __init__ with one argument, which killed the worker and hung the pool."""
        return (_rebuild, (self.file, self.message, self.code, self.uncertain))


def _rebuild(file: str, message: str, code: str | None, uncertain: bool) -> AwsCallFailed:
    return AwsCallFailed(file, message, code=code, uncertain=uncertain)


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
    from botocore.exceptions import BotoCoreError

    config = Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region or "us-east-1")
        return session.client(service, endpoint_url=endpoint_url, config=config)
    except BotoCoreError as exc:  # an unknown --profile, a broken config file: the user's to fix
        raise user_error(exc, f"creating the {service} client") from None
    except ValueError as exc:  # botocore's answer to a malformed --endpoint-url
        raise NetguardError("--endpoint-url", f"{endpoint_url!r} is not a usable endpoint URL: {exc}") from None


def api_name(operation: str) -> str:
    """create_policy -> CreatePolicy, as AWS names the call."""
    return "".join(part[:1].upper() + part[1:] for part in operation.split("_"))


_CREDENTIALS = re.compile(r"(Signature|Credential|X-Amz-Security-Token)=[^&\s]+")


@dataclass(frozen=True)
class Failure:
    """What one failed attempt means for the retry loop and for the user."""

    code: str | None  # the AWS error code, None for a transport or local error
    text: str  # the exception as the error shows it, credentials masked
    retryable: bool
    maybe_done: bool  # the request was sent and its answer lost: AWS may have carried it out
    unreachable: bool  # no connection could be made: the request never left this machine


def describe(exc: BaseException) -> Failure:
    """How netguard reads an exception of one attempt of an AWS call."""
    from botocore.exceptions import (
        ClientError,
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
        return Failure(code, text, code in THROTTLED or code in SERVER_ERRORS or status >= 500, False, False)
    text = _CREDENTIALS.sub(r"\1=...", f"{type(exc).__name__}: {exc}")
    # ConnectTimeoutError, ProxyConnectionError and SSLError are ConnectionErrors raised before a
    # request is sent, like EndpointConnectionError (refused, DNS, no route).
    if isinstance(exc, EndpointConnectionError) or (
        isinstance(exc, BotoConnectionError) and not isinstance(exc, HTTPClientError)
    ):
        return Failure(None, text, True, False, True)
    if isinstance(exc, (HTTPClientError, IncompleteReadError)):
        return Failure(None, text, True, True, False)  # sent, but the answer was lost
    return Failure(None, text, False, False, False)


def call(fn: Callable[[], T], label: str, budget: Budget, *, where: str = "aws") -> T:
    """fn(), retried while it fails for a reason worth retrying and the budgets allow another wait."""
    from botocore.exceptions import BotoCoreError, ClientError

    start = budget.clock()
    attempts = 0
    unreachable = 0
    uncertain = False
    while True:
        attempts += 1
        try:
            return fn()
        except (ClientError, BotoCoreError) as exc:
            failure = describe(exc)
            code, text = failure.code, failure.text
            wait = min(BACKOFF_FIRST * 2 ** (attempts - 1), BACKOFF_MAX)
            spent = budget.clock() - start
            if not failure.retryable:
                message = f"{label} failed: {text}" + _fix(exc, failure, where)
                raise AwsCallFailed(where, message, code=code, uncertain=uncertain) from None
            uncertain = uncertain or failure.maybe_done
            if failure.unreachable:
                unreachable += 1
                if unreachable > CONNECT_RETRIES or spent + wait > min(CONNECT_SECONDS, budget.call_seconds):
                    raise AwsCallFailed(
                        where,
                        f"{label} failed: no connection could be made ({attempts} attempts in {spent:.1f} s):"
                        f" {text}" + _fix(exc, failure, where),
                        code=code,
                        uncertain=uncertain,
                    ) from None
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


_CREDENTIALS_MISSING = (
    "no usable AWS credentials: pass --profile (or set AWS_PROFILE), run `aws configure` or `aws sso login`,"
    " or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; netguard finds credentials as the AWS CLI does"
)
_CREDENTIALS_INVALID = (
    "the credentials were refused as unknown or malformed: check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and"
    " AWS_SESSION_TOKEN or the --profile, and that --endpoint-url is the service they belong to"
)
_CREDENTIALS_EXPIRED = "the credentials have expired: refresh them (`aws sso login`, or new session credentials)"
_UNREACHABLE = (
    "check the network and any proxy (HTTPS_PROXY), the --endpoint-url and the --region; netguard gives up on an"
    f" endpoint it cannot connect to after {CONNECT_RETRIES} quick retries"
)

# AWS error codes a retry cannot fix, and what the user can do about each.
_CODE_FIXES = {
    **dict.fromkeys(
        (
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AuthFailure",
            "IncompleteSignature",
            "InvalidToken",
            "MissingAuthenticationToken",
        ),
        _CREDENTIALS_INVALID,
    ),
    **dict.fromkeys(
        ("ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"), _CREDENTIALS_EXPIRED
    ),
    "NoSuchBucket": "check the bucket name in the s3:// location given to replay, and that --profile and"
    " --endpoint-url point at the account that holds it",
    "NoSuchKey": "the object was deleted or moved after it was listed; run again",
    **dict.fromkeys(
        ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"),
        "the bucket is in another region: pass --region with the bucket's region",
    ),
    "AWSOrganizationsNotInUseException": "these credentials belong to an account outside any organization: use"
    " the organization's management account (or its delegated administrator for policies) with --profile",
    **dict.fromkeys(
        (
            "TargetNotFoundException",
            "ParentNotFoundException",
            "ChildNotFoundException",
            "AccountNotFoundException",
            "OrganizationalUnitNotFoundException",
        ),
        "a target in the organization config (an OU id, an account id) does not exist in this"
        " organization: check the targets",
    ),
    "ConstraintViolationException": "an AWS Organizations quota was reached (SCPs per target, policies per"
    " organization, or the last SCP on a target): check max_scps_per_target against the organization's quota",
    "PolicyTypeNotEnabledException": "enable service control policies on the root with `aws organizations"
    " enable-policy-type --root-id <r-...> --policy-type SERVICE_CONTROL_POLICY`",
}
_ACCESS_DENIED = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "Forbidden",
    "AccessDeniedForDependencyException",
}


def _service(where: str) -> str:
    """The IAM service prefix of the calls made for `where` (the name aws.call's callers give)."""
    if where.startswith("s3://"):
        return "s3"
    return {"organization": "organizations", "access-analyzer": "access-analyzer"}.get(where, "")


def _fix(exc: BaseException, failure: Failure, where: str, operation: str | None = None) -> str:
    """'; likely fix: ...' for a failure the user can fix, else ''."""
    from botocore.exceptions import (
        ClientError,
        CredentialRetrievalError,
        NoCredentialsError,
        PartialCredentialsError,
        ProfileNotFound,
        SSOError,
        TokenRetrievalError,
    )

    fix = ""
    if isinstance(
        exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError, SSOError, TokenRetrievalError)
    ):
        fix = _CREDENTIALS_MISSING
    elif isinstance(exc, ProfileNotFound):
        fix = (
            "the profile is in neither ~/.aws/config nor ~/.aws/credentials (nor AWS_CONFIG_FILE,"
            " AWS_SHARED_CREDENTIALS_FILE): check --profile and AWS_PROFILE"
        )
    elif failure.unreachable:
        fix = _UNREACHABLE
    elif failure.code in _ACCESS_DENIED:
        operation = operation or (exc.operation_name if isinstance(exc, ClientError) else "") or "this call"
        service = _service(where)
        action = f"{service}:{operation}" if service and operation != "this call" else operation
        fix = (
            f"the identity these credentials belong to may not call {action}: allow it in that identity's IAM"
            " policy (or pick another --profile), and check that no SCP, permission boundary or resource policy"
            " denies it"
        )
        if service == "organizations":
            fix += "; Organizations policies are managed from the management account or a delegated administrator"
    elif failure.code in _CODE_FIXES:
        fix = _CODE_FIXES[failure.code]
    elif isinstance(exc, ClientError) and exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 403:
        fix = (
            "AWS refused these credentials or this call (HTTP 403): check --profile and the credentials in use,"
            " and that their identity may make the call"
        )
    return f"; likely fix: {fix}" if fix else ""


def user_error(exc: BaseException, doing: str = "an AWS call") -> NetguardError | None:
    """A botocore exception that escaped aws.call (raised while creating a client, say) as an error
    naming the call and the likely fix; None for anything that is not botocore's."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - botocore is a dependency of netguard
        return None
    if not isinstance(exc, (BotoCoreError, ClientError)):
        return None
    failure = describe(exc)
    if isinstance(exc, ClientError):
        doing = api_name(exc.operation_name) if exc.operation_name else doing
    return NetguardError("aws", f"{doing} failed: {failure.text}" + _fix(exc, failure, "aws"))


def add_retry_option(parser: argparse.ArgumentParser) -> None:
    """--aws-retry-seconds, the same for every command that calls AWS."""
    parser.add_argument(
        "--aws-retry-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="how long one AWS call may be retried (throttling, server errors, dropped connections) before it"
        " is an error naming the call; each attempt times out after 5 s to connect, 30 s to read (default 60)."
        " An endpoint that cannot be connected to at all gets only 2 quick retries (about 10 s at most)",
    )
