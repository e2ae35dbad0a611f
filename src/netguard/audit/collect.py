"""Reading live accounts, read-only: sessions (the caller's, or a role assumed in each account), the
enabled regions, and the resources the controls judge.

Every call goes through org/aws.py's `call`, netguard's one retry loop (throttling and server errors
with backoff and a deadline, access denied never retried), one page at a time, so a throttled page is
retried alone and a service that repeats a page token stops the read instead of looping. The exact set
of operations called here is what policies/iam/ng-audit-readonly.json and ng-audit-caller.json allow;
tests/test_audit.py records the calls against moto and compares.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from netguard.errors import NetguardError
from netguard.org import aws

SESSION_NAME = "netguard-audit"
_TOKENS = {"iam": ("Marker", "Marker"), "ec2": ("NextToken", "NextToken"), "organizations": ("NextToken", "NextToken")}


def new_session(**kwargs: Any) -> Any:
    """A boto3 Session; one per account, so threads never share one. Tests wrap this to record calls."""
    import boto3

    return boto3.session.Session(**kwargs)


def _client_config() -> Any:
    """One attempt per call and short timeouts, as every netguard AWS command uses: aws.call retries."""
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=aws.CONNECT_TIMEOUT,
        read_timeout=aws.READ_TIMEOUT,
    )


@dataclass
class Reader:
    """The calls of one account (or of the caller), all through aws.call with this account's budget.

    `where` names the account in every error; a client is made once per (service, region)."""

    session: Any
    where: str
    home_region: str
    endpoint_url: str | None = None
    budget: aws.Budget = field(default_factory=aws.Budget)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or self.home_region)
        if key not in self._clients:
            from botocore.exceptions import BotoCoreError

            try:
                self._clients[key] = self.session.client(
                    service, region_name=key[1], endpoint_url=self.endpoint_url, config=_client_config()
                )
            except BotoCoreError as exc:
                raise aws.user_error(exc, f"creating the {service} client for {self.where}") from None
            except ValueError as exc:  # botocore's answer to a malformed --endpoint-url
                raise NetguardError("--endpoint-url", f"{self.endpoint_url!r} is not usable: {exc}") from None
        return self._clients[key]

    def call(self, service: str, operation: str, region: str | None = None, **params: Any) -> dict[str, Any]:
        method = getattr(self.client(service, region), operation)
        where = f"{self.where}, region {region}" if region else self.where
        return aws.call(lambda: method(**params), aws.api_name(operation), self.budget, where=where)

    def pages(self, service: str, operation: str, keys: tuple[str, ...], region: str | None = None, **params: Any):
        """Every item under each of keys, following the service's page token to the last page."""
        token_in, token_out = _TOKENS[service]
        items: dict[str, list[Any]] = {key: [] for key in keys}
        seen: set[str] = set()
        token = None
        while True:
            response = self.call(service, operation, region, **params, **({token_in: token} if token else {}))
            for key in keys:
                items[key].extend(response.get(key) or [])
            token = response.get(token_out)
            if service == "iam" and not response.get("IsTruncated"):
                token = None
            if not token:
                return items
            if token in seen:  # a token handed back twice would keep the reader looping forever
                where = f"{self.where}, region {region}" if region else self.where
                raise NetguardError(where, f"{aws.api_name(operation)} returned the same page token twice")
            seen.add(token)


def caller(profile: str | None, endpoint_url: str | None, budget_seconds: float) -> tuple[Reader, str]:
    """The identity running the audit, and its account id (sts:GetCallerIdentity)."""
    from botocore.exceptions import BotoCoreError

    try:
        session = new_session(profile_name=profile)
    except BotoCoreError as exc:  # an unknown --profile
        raise aws.user_error(exc, "reading the AWS profile") from None
    reader = Reader(
        session,
        "caller",
        session.region_name or "us-east-1",
        endpoint_url,
        aws.Budget(call_seconds=budget_seconds),
    )
    account = reader.call("sts", "get_caller_identity")["Account"]
    reader.where = f"account {account} (caller)"
    return reader, str(account)


def own_account(profile: str | None, caller_reader: Reader, account: str) -> Reader:
    """The caller's own account, read with the caller's credentials through a session of its own
    (a boto3 Session is not thread-safe, and the caller's is busy assuming roles for the others)."""
    return Reader(
        new_session(profile_name=profile),
        f"account {account}",
        caller_reader.home_region,
        caller_reader.endpoint_url,
        aws.Budget(call_seconds=caller_reader.budget.call_seconds),
    )


def organization_accounts(reader: Reader) -> dict[str, str]:
    """Every account of the caller's organization and its state (organizations:ListAccounts).

    AWS is replacing the account's `Status` with `State` (which adds PENDING_ACTIVATION and CLOSED), so
    `State` is read when present and the deprecated `Status` otherwise; an account with neither is
    UNKNOWN, never silently taken for ACTIVE."""
    accounts = reader.pages("organizations", "list_accounts", ("Accounts",))["Accounts"]
    return {str(a["Id"]): str(a.get("State") or a.get("Status") or "UNKNOWN").upper() for a in accounts if a.get("Id")}


def assume(caller_reader: Reader, account: str, role: str, external_id: str | None, budget_seconds: float) -> Reader:
    """A Reader in account through its audit role (sts:AssumeRole from the caller's credentials)."""
    role_arn = f"arn:aws:iam::{account}:role/{role.strip('/')}"
    params: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": SESSION_NAME}
    if external_id:
        params["ExternalId"] = external_id
    where = f"account {account}"
    try:
        credentials = caller_reader.call("sts", "assume_role", **params)["Credentials"]
    except aws.AwsCallFailed as exc:
        raise aws.AwsCallFailed(
            where, f"cannot assume {role_arn}: {exc.message}", code=exc.code, uncertain=False
        ) from None
    session = new_session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    return Reader(
        session, where, caller_reader.home_region, caller_reader.endpoint_url, aws.Budget(call_seconds=budget_seconds)
    )


def enabled_regions(reader: Reader) -> list[str]:
    """The account's enabled regions: DescribeRegions leaves out disabled ones, and an opt-in region the
    account has not opted in to is listed by some endpoints as not-opted-in, so that status is dropped."""
    regions = reader.call("ec2", "describe_regions")["Regions"]
    return sorted(r["RegionName"] for r in regions if r.get("OptInStatus") != "not-opted-in")


@dataclass
class RegionSnapshot:
    """The network resources of one account and region, as EC2 describes them."""

    vpcs: list[dict] = field(default_factory=list)
    flow_logs: list[dict] = field(default_factory=list)
    dhcp_options: list[dict] = field(default_factory=list)
    addresses: list[dict] = field(default_factory=list)
    peerings: list[dict] = field(default_factory=list)
    route_tables: list[dict] = field(default_factory=list)
    interfaces: list[dict] = field(default_factory=list)  # only those holding an Elastic IP

    def count(self) -> int:
        """Resources examined (an interface read for an address is part of the address)."""
        return sum(len(v) for k, v in vars(self).items() if k != "interfaces")


# which reads each control needs: a control that does not run costs no call
EC2_READS: dict[str, tuple[str, str, int | None, tuple[str, ...]]] = {
    # snapshot attribute: (operation, response key, MaxResults (AWS's largest), the controls that need it)
    "vpcs": ("describe_vpcs", "Vpcs", 1000, ("NG-VPC-001", "NG-VPC-003", "NG-DHCP-001")),  # DHCP: VPCs to move
    "flow_logs": ("describe_flow_logs", "FlowLogs", 1000, ("NG-VPC-001", "NG-VPC-002")),
    "dhcp_options": ("describe_dhcp_options", "DhcpOptions", 1000, ("NG-DHCP-001",)),
    "addresses": ("describe_addresses", "Addresses", None, ("NG-EIP-001",)),  # not paginated by AWS
    "peerings": ("describe_vpc_peering_connections", "VpcPeeringConnections", 1000, ("NG-PCX-001",)),
    "route_tables": ("describe_route_tables", "RouteTables", 100, ("NG-PCX-002",)),
}


def read_region(reader: Reader, region: str, enabled: frozenset[str]) -> RegionSnapshot:
    """Describe what the enabled controls judge in one region, every list to its last page.
    DescribeAddresses is the one call here that AWS does not paginate."""
    snapshot = RegionSnapshot()
    for attribute, (operation, key, page_size, controls) in EC2_READS.items():
        if not enabled.intersection(controls):
            continue
        if page_size is None:
            items = reader.call("ec2", operation, region).get(key) or []
        else:
            items = reader.pages("ec2", operation, (key,), region, MaxResults=page_size)[key]
        setattr(snapshot, attribute, items)
    if "NG-EIP-001" in enabled:
        snapshot.interfaces = _address_interfaces(reader, region, snapshot.addresses)
    return snapshot


ENI_FILTER_VALUES = 200  # EC2's limit on the values of one filter


def _address_interfaces(reader: Reader, region: str, addresses: list[dict]) -> list[dict]:
    """The network interfaces that hold an Elastic IP (DescribeNetworkInterfaces, filtered by id, so an
    account pays for its addresses, not its interfaces): an address on a detached interface is idle.
    No address on an interface, no call."""
    ids = sorted(
        {str(a["NetworkInterfaceId"]) for a in addresses if a.get("NetworkInterfaceId") and not a.get("InstanceId")}
    )
    found: list[dict] = []
    for start in range(0, len(ids), ENI_FILTER_VALUES):
        chunk = ids[start : start + ENI_FILTER_VALUES]
        found += reader.pages(
            "ec2",
            "describe_network_interfaces",
            ("NetworkInterfaces",),
            region,
            Filters=[{"Name": "network-interface-id", "Values": chunk}],
            MaxResults=1000,
        )["NetworkInterfaces"]
    return found


@dataclass
class IamSnapshot:
    """The account's IAM principals and managed policies (one GetAccountAuthorizationDetails read)."""

    users: list[dict] = field(default_factory=list)
    groups: list[dict] = field(default_factory=list)
    roles: list[dict] = field(default_factory=list)
    policies: list[dict] = field(default_factory=list)

    def count(self) -> int:
        """Principals and customer managed policies (the AWS managed ones are AWS's, not the account's)."""
        local = [p for p in self.policies if str(p.get("Arn", "")).split(":")[4:5] != ["aws"]]
        return len(self.users) + len(self.groups) + len(self.roles) + len(local)


def read_iam(reader: Reader) -> IamSnapshot:
    """GetAccountAuthorizationDetails, every page: inline policies, attachments and the documents of
    customer managed policies and of the AWS managed policies attached in this account."""
    keys = ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies")
    found = reader.pages(
        "iam",
        "get_account_authorization_details",
        keys,
        Filter=["User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy"],
        MaxItems=1000,
    )
    return IamSnapshot(*(found[key] for key in keys))


def policy_document(raw: Any) -> dict | None:
    """An IAM policy document: botocore decodes IAM's URL-encoded JSON, but a proxy or an older SDK may
    hand the string over as it came; None for anything that is not a JSON object."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        return None
    for text in (raw, unquote(raw)):
        try:
            parsed = json.loads(text)
        except ValueError:
            continue
        return parsed if isinstance(parsed, dict) else None
    return None
