"""The catalogue's controls on live resources: pure functions of what collect.py read.

The decisions are the IaC rules' own where one exists: the approved DNS servers through
ScanConfig.dns_approved, a default route through netaddr.is_default_route, and an IAM grant through
iam/statements.risky_statements with the catalogue's guarded actions. What differs is only what a
live resource looks like (a flow log's ResourceId, a VPC's DhcpOptionsId, an address's AssociationId).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

from netguard.audit.collect import IamSnapshot, RegionSnapshot, policy_document
from netguard.audit.fixes import Placeholder, ShellWords, shell_words
from netguard.catalog import load_catalog
from netguard.config import ScanConfig
from netguard.iam.statements import risky_statements
from netguard.netaddr import is_default_route

REGION_CONTROLS = ("NG-VPC-001", "NG-VPC-002", "NG-VPC-003", "NG-DHCP-001", "NG-EIP-001", "NG-PCX-001", "NG-PCX-002")
IAM_CONTROLS = tuple(c.id for c in load_catalog().values() if c.actions)
AUDITED = frozenset(REGION_CONTROLS + IAM_CONTROLS)  # docs/controls.md lists these as audited
_LIVE_PEERING = {"initiating-request", "pending-acceptance", "provisioning", "active"}
_SHARED = (("vpcs", "VPC"), ("route_tables", "route table"), ("dhcp_options", "DHCP options set"))
SERVICE_LINKED_PATH = "/aws-service-role/"


@dataclass(frozen=True)
class Hit:
    """One control failed by one live resource; values fill the catalogue's fix templates (one mapping
    per target, e.g. each VPC a DHCP options set must be moved off)."""

    control: str
    arn: str
    resource: str
    message: str
    values: tuple[Mapping[str, str], ...] = field(default=({},))


def name_of(item: Mapping) -> str:
    """' (Name: x)' from the resource's Name tag, '' without one; reports escape what it holds."""
    for tag in item.get("Tags") or ():
        if tag.get("Key") == "Name" and tag.get("Value"):
            return f" (Name: {tag['Value']})"
    return ""


def ec2_arn(region: str, account: str, kind: str, resource_id: str) -> str:
    return f"arn:aws:ec2:{region}:{account}:{kind}/{resource_id}"


def check_region(
    snapshot: RegionSnapshot, account: str, region: str, config: ScanConfig, enabled: frozenset[str]
) -> list[Hit]:
    """Every enabled region-scoped control on one account's region, on the resources the account owns:
    a VPC shared with it (VPC sharing) is described here too, but only its owner can log, associate or
    route it, so the owner's audit judges it (region_notices counts what was left)."""
    snapshot = owned(snapshot, account)
    checks = {
        "NG-VPC-001": _vpc_without_flow_log,
        "NG-VPC-002": _flow_log_not_all,
        "NG-VPC-003": _vpc_default_dhcp,
        "NG-DHCP-001": _dhcp_unapproved_dns,
        "NG-EIP-001": _eip_unattached,
        "NG-PCX-001": _peering_unapproved,
        "NG-PCX-002": _default_route_via_peering,
    }
    hits: list[Hit] = []
    for control, check in checks.items():
        if control in enabled:
            hits.extend(check(snapshot, account, region, config))
    return hits


def _owner(item: Mapping) -> str:
    return str(item.get("OwnerId") or "")


def owned(snapshot: RegionSnapshot, account: str) -> RegionSnapshot:
    """The snapshot without the resources another account owns (an answer without OwnerId is ours)."""
    return replace(
        snapshot,
        **{
            attribute: [item for item in getattr(snapshot, attribute) if _owner(item) in ("", account)]
            for attribute, _ in _SHARED
        },
    )


def region_notices(snapshot: RegionSnapshot, account: str, region: str, enabled: frozenset[str]) -> list[str]:
    """What a reader should know about a region that fails no control: resources shared by another
    account (not judged here), and flow logs that are ACTIVE but whose delivery is failing."""
    notices = []
    where = f"account {account}, region {region}"
    shared: dict[str, list[str]] = {}
    for attribute, kind in _SHARED:
        for item in getattr(snapshot, attribute):
            if _owner(item) not in ("", account):
                shared.setdefault(_owner(item), []).append(kind)
    for owner, kinds in sorted(shared.items()):
        counts = ", ".join(f"{kinds.count(kind)} {kind}(s)" for kind in dict.fromkeys(kinds))
        notices.append(
            f"{where}: {counts} owned by account {owner} and shared with this one (VPC sharing): not judged"
            " here, the owner's audit judges them"
        )
    if enabled & {"NG-VPC-001", "NG-VPC-002"}:
        for log in snapshot.flow_logs:
            if _delivery_failing(log):
                error = f": {log['DeliverLogsErrorMessage']}" if log.get("DeliverLogsErrorMessage") else ""
                notices.append(
                    f"{where}: flow log {log.get('FlowLogId')} on {log.get('ResourceId')} is ACTIVE but its"
                    f" delivery is failing (DeliverLogsStatus FAILED{error}); it still counts for NG-VPC-001:"
                    " fix its destination or delivery role"
                )
    return notices


def _delivery_failing(log: Mapping) -> bool:
    return log.get("FlowLogStatus", "ACTIVE") == "ACTIVE" and str(log.get("DeliverLogsStatus", "")).upper() == "FAILED"


def _vpc_without_flow_log(snapshot: RegionSnapshot, account: str, region: str, config: ScanConfig) -> Iterator[Hit]:
    logs: dict[str, list[dict]] = {}
    for log in snapshot.flow_logs:
        logs.setdefault(log.get("ResourceId", ""), []).append(log)
    for vpc in snapshot.vpcs:
        vpc_id = vpc["VpcId"]
        own = logs.get(vpc_id, [])
        if any(log.get("FlowLogStatus", "ACTIVE") == "ACTIVE" for log in own):
            continue
        detail = f"; its flow logs {', '.join(str(log.get('FlowLogId')) for log in own)} are not ACTIVE" if own else ""
        yield Hit(
            "NG-VPC-001",
            ec2_arn(region, account, "vpc", vpc_id),
            vpc_id,
            f"VPC {vpc_id}{name_of(vpc)} has no active flow log{detail}",
            ({"vpc_id": vpc_id},),
        )


def _flow_log_not_all(snapshot: RegionSnapshot, account: str, region: str, config: ScanConfig) -> Iterator[Hit]:
    for log in snapshot.flow_logs:
        traffic = log.get("TrafficType")
        if traffic is None or str(traffic).upper() == "ALL":
            continue  # transit gateway flow logs have no traffic type: they always capture all
        log_id = log["FlowLogId"]
        values = {
            "flow_log_id": log_id,
            "resource_id": log.get("ResourceId", ""),
            "resource_type": _flow_log_resource_type(log.get("ResourceId", "")),
        }
        kind = log.get("LogDestinationType") or "cloud-watch-logs"
        if kind == "cloud-watch-logs":
            if log.get("LogGroupName") and log.get("DeliverLogsPermissionArn"):
                values.update(
                    log_group_name=log["LogGroupName"], deliver_logs_permission_arn=log["DeliverLogsPermissionArn"]
                )
        elif log.get("LogDestination"):
            values.update(log_destination_type=kind, log_destination=log["LogDestination"])
        if not values.get("log_group_name") and not values.get("log_destination"):  # never a delete without a create
            values.update(
                log_group_name=Placeholder("<LOG_GROUP>"), deliver_logs_permission_arn=Placeholder("<ROLE_ARN>")
            )
        yield Hit(
            "NG-VPC-002",
            ec2_arn(region, account, "vpc-flow-log", log_id),
            log_id,
            f"flow log {log_id}{name_of(log)} on {log.get('ResourceId')} captures {traffic} traffic, not ALL",
            ({k: v for k, v in values.items() if v},),
        )


def _flow_log_resource_type(resource_id: str) -> str:
    """create-flow-logs' --resource-type for the id of the resource a flow log watches."""
    prefix = resource_id.split("-", 1)[0]
    return {"vpc": "VPC", "subnet": "Subnet", "eni": "NetworkInterface"}.get(prefix, "")


def _vpc_default_dhcp(snapshot: RegionSnapshot, account: str, region: str, config: ScanConfig) -> Iterator[Hit]:
    for vpc in snapshot.vpcs:
        if str(vpc.get("DhcpOptionsId") or "default").lower() != "default":
            continue
        vpc_id = vpc["VpcId"]
        yield Hit(
            "NG-VPC-003",
            ec2_arn(region, account, "vpc", vpc_id),
            vpc_id,
            f"VPC {vpc_id}{name_of(vpc)} has no DHCP options set associated (DhcpOptionsId default)",
            ({"vpc_id": vpc_id},),
        )


def _dhcp_unapproved_dns(snapshot: RegionSnapshot, account: str, region: str, config: ScanConfig) -> Iterator[Hit]:
    for options in snapshot.dhcp_options:
        servers = [
            str(value.get("Value"))
            for entry in options.get("DhcpConfigurations") or ()
            if entry.get("Key") == "domain-name-servers"
            for value in entry.get("Values") or ()
        ]
        bad = list(dict.fromkeys(s for s in servers if not config.dns_approved(s)))
        if not bad:
            continue
        options_id = options["DhcpOptionsId"]
        users = [vpc["VpcId"] for vpc in snapshot.vpcs if vpc.get("DhcpOptionsId") == options_id]
        approved = ", ".join(config.approved_dns_servers) or "none"
        used = f"; used by {', '.join(users)}" if users else "; associated with no VPC"
        common = {"dhcp_options_id": options_id, "dhcp_configurations": _replacement_dhcp(options, config)}
        yield Hit(
            "NG-DHCP-001",
            ec2_arn(region, account, "dhcp-options", options_id),
            options_id,
            f"DHCP options set {options_id}{name_of(options)} has domain-name-servers {', '.join(bad)},"
            f" outside the approved list ({approved}){used}",
            tuple({**common, "vpc_id": vpc_id} for vpc_id in users) or (common,),
        )


MAX_DNS_SERVERS = 4  # CreateDhcpOptions takes up to four domain-name-servers
_SHORTHAND_VALUE = re.compile(r"^[A-Za-z0-9._:/@<>-]+$")


def _replacement_dhcp(options: Mapping, config: ScanConfig) -> ShellWords:
    """create-dhcp-options' --dhcp-configurations for the set's replacement: the approved DNS servers
    (the first four, AWS's limit; <APPROVED_DNS> when the config approves none) and every other option
    of the set as it is, since the VPCs moved to it must keep their domain name, NTP servers and the rest.

    The CLI's shorthand (`Key=domain-name-servers,Values=10.0.0.2,10.0.0.3`, one argument per option)
    when every value is a plain word; JSON otherwise, as a value with a comma or a space (a domain-name
    list) would be split or misread by the shorthand parser."""
    servers = list(config.approved_dns_servers)[:MAX_DNS_SERVERS] or ["<APPROVED_DNS>"]
    entries = [("domain-name-servers", servers)]
    for entry in options.get("DhcpConfigurations") or ():
        key = str(entry.get("Key") or "")
        values = [str(v.get("Value")) for v in entry.get("Values") or () if v.get("Value") is not None]
        if key and key != "domain-name-servers" and values:
            entries.append((key, values))
    if all(_SHORTHAND_VALUE.match(word) for key, values in entries for word in (key, *values)):
        return shell_words(f"Key={key},Values={','.join(values)}" for key, values in entries)
    return shell_words([json.dumps([{"Key": key, "Values": values} for key, values in entries])])


def _eip_unattached(snapshot: RegionSnapshot, account: str, region: str, config: ScanConfig) -> Iterator[Hit]:
    detached = {eni.get("NetworkInterfaceId") for eni in snapshot.interfaces if eni.get("Status") == "available"}
    for address in snapshot.addresses:
        allocation = address.get("AllocationId")
        resource = allocation or str(address.get("PublicIp"))
        eni = address.get("NetworkInterfaceId")
        if address.get("AssociationId") and address.get("InstanceId"):
            continue  # on an instance
        if address.get("AssociationId") and eni not in detached:
            continue  # on a network interface in use (a NAT gateway's included)
        if address.get("AssociationId"):  # on an interface attached to nothing: as idle as no association
            yield Hit(
                "NG-EIP-001",
                ec2_arn(region, account, "elastic-ip", resource),
                resource,
                f"Elastic IP {address.get('PublicIp')} ({resource}){name_of(address)} is associated with network"
                f" interface {eni}, which is attached to nothing (status available)",
                (
                    {
                        "allocation_id": allocation,
                        "association_id": address["AssociationId"],
                        "network_interface_id": eni,
                    },
                ),
            )
            continue
        yield Hit(
            "NG-EIP-001",
            ec2_arn(region, account, "elastic-ip", resource),
            resource,
            f"Elastic IP {address.get('PublicIp')} ({resource}){name_of(address)} is not associated with an"
            " instance or a network interface",
            ({"allocation_id": allocation, "idle_allocation_id": allocation},) if allocation else ({},),
        )


def _peering_unapproved(snapshot: RegionSnapshot, account: str, region: str, config: ScanConfig) -> Iterator[Hit]:
    approved = {account, *config.approved_peer_accounts}
    for peering in snapshot.peerings:
        status = str((peering.get("Status") or {}).get("Code", "")).lower()
        if status not in _LIVE_PEERING:
            continue
        owners = {
            side: str((peering.get(f"{side.capitalize()}VpcInfo") or {}).get("OwnerId", ""))
            for side in ("requester", "accepter")
        }
        bad = [f"{side} {owner or '(unknown)'}" for side, owner in owners.items() if owner not in approved]
        if not bad:
            continue
        pcx_id = peering["VpcPeeringConnectionId"]
        # AWS lets the accepter of a pending request only reject it; delete is the requester's or, once active, either's
        pending_here = (
            status == "pending-acceptance" and owners["accepter"] == account and owners["requester"] != account
        )
        # the connection is the requester's resource: its ARN names the requester's account and region
        requester = peering.get("RequesterVpcInfo") or {}
        owner_region = str(requester.get("Region") or region)
        yield Hit(
            "NG-PCX-001",
            ec2_arn(owner_region, owners["requester"] or account, "vpc-peering-connection", pcx_id),
            pcx_id,
            f"peering connection {pcx_id}{name_of(peering)} ({status}) joins an account that is neither this one"
            f" nor in approved_peer_accounts: {', '.join(bad)}",
            ({"reject_pcx_id": pcx_id},) if pending_here else ({"pcx_id": pcx_id},),
        )


def _default_route_via_peering(
    snapshot: RegionSnapshot, account: str, region: str, config: ScanConfig
) -> Iterator[Hit]:
    for table in snapshot.route_tables:
        table_id = table["RouteTableId"]
        values = []
        routes = []
        for route in table.get("Routes") or ():
            if not route.get("VpcPeeringConnectionId"):
                continue
            for key, placeholder in (
                ("DestinationCidrBlock", "ipv4_destination"),
                ("DestinationIpv6CidrBlock", "ipv6_destination"),
            ):
                if is_default_route(route.get(key)):
                    values.append({"route_table_id": table_id, placeholder: route[key]})
                    routes.append(f"{route[key]} -> {route['VpcPeeringConnectionId']}")
        if routes:
            yield Hit(
                "NG-PCX-002",
                ec2_arn(region, account, "route-table", table_id),
                table_id,
                f"route table {table_id}{name_of(table)} sends a default route through a VPC peering connection"
                f" ({', '.join(routes)}); route only the peer's CIDR blocks",
                tuple(values),
            )


@dataclass(frozen=True)
class PolicyUse:
    """One policy document to judge, where it sits and how its fix addresses it."""

    arn: str  # the managed policy's ARN, or the principal's ARN for an inline policy
    resource: str
    label: str
    document: object
    values: tuple[Mapping[str, str], ...]


def _kind_name(kind: str) -> str:
    return {"Role": "role", "User": "user", "Group": "group"}[kind]


def iam_policies(snapshot: IamSnapshot) -> tuple[list[PolicyUse], list[str], list[str]]:
    """Every customer managed policy (its default version), every inline policy, and every AWS managed
    policy attached to a principal here; the problems (an attached policy IAM returned no document for);
    and the notices: service-linked roles are left out, as AWS owns their policies and refuses to let
    anyone in the account detach or edit them, so a finding there could not be fixed."""
    uses: list[PolicyUse] = []
    problems: list[str] = []
    notices: list[str] = []
    attached: dict[str, list[tuple[str, str]]] = {}
    linked = sorted(r.get("RoleName", "") for r in snapshot.roles if _service_linked(r))
    if linked:
        notices.append(
            f"{len(linked)} service-linked role(s) not judged (path {SERVICE_LINKED_PATH}: AWS manages their"
            f" policies and no one in the account can change them): {', '.join(linked)}"
        )
    for kind, principals, inline_key, name_key in (
        ("Role", snapshot.roles, "RolePolicyList", "RoleName"),
        ("User", snapshot.users, "UserPolicyList", "UserName"),
        ("Group", snapshot.groups, "GroupPolicyList", "GroupName"),
    ):
        for principal in principals:
            if kind == "Role" and _service_linked(principal):
                continue
            name = principal.get(name_key, "")
            for policy in principal.get(inline_key) or ():
                policy_name = policy.get("PolicyName", "")
                uses.append(
                    PolicyUse(
                        principal.get("Arn", ""),
                        f"{name}/{policy_name}",
                        f"inline policy {policy_name} of {_kind_name(kind)} {name}",
                        policy.get("PolicyDocument"),
                        ({f"{_kind_name(kind)}_name": name, "policy_name": policy_name},),
                    )
                )
            for policy in principal.get("AttachedManagedPolicies") or ():
                attached.setdefault(policy.get("PolicyArn", ""), []).append((_kind_name(kind), name))
    documents = {}
    for policy in snapshot.policies:
        arn = policy.get("Arn", "")
        default = next((v for v in policy.get("PolicyVersionList") or () if v.get("IsDefaultVersion")), None)
        name = policy.get("PolicyName") or arn.rsplit("/", 1)[-1]
        documents[arn] = (name, default.get("Document") if default else None)
    for arn, (name, document) in documents.items():
        if _aws_managed(arn):
            continue
        uses.append(
            PolicyUse(arn, name, f"customer managed policy {name} (default version)", document, ({"policy_arn": arn},))
        )
    for arn, principals in attached.items():
        if not _aws_managed(arn):
            continue  # a customer managed policy is judged once above, attached or not
        holders = ", ".join(f"{kind} {who}" for kind, who in principals)
        if arn not in documents:
            problems.append(f"IAM returned no document for {arn} (AWS managed, attached to {holders}): not judged")
            continue
        name, document = documents[arn]
        uses.append(
            PolicyUse(
                arn,
                name,
                f"AWS managed policy {name} (attached to {holders})",
                document,
                tuple({"managed_policy_arn": arn, f"attached_{kind}": who} for kind, who in principals),
            )
        )
    return uses, problems, notices


def _service_linked(role: Mapping) -> bool:
    return str(role.get("Path") or "").startswith(SERVICE_LINKED_PATH)


def _aws_managed(arn: str) -> bool:
    return arn.split(":")[4:5] == ["aws"]  # arn:PARTITION:iam::aws:policy/...


def check_iam(snapshot: IamSnapshot, enabled: frozenset[str]) -> tuple[list[Hit], list[str], list[str]]:
    """NG-IAM-* on every policy document the account's principals hold, with the IaC rules' analysis:
    the findings, the problems (errors) and the notices (what was left out and why)."""
    catalog = load_catalog()
    uses, problems, notices = iam_policies(snapshot)
    hits: list[Hit] = []
    for use in uses:
        document = policy_document(use.document)
        if document is None:
            problems.append(f"{use.label}: the policy document is not a JSON object")
            continue
        for control in IAM_CONTROLS:
            if control not in enabled:
                continue
            risky = risky_statements(document, catalog[control].actions)
            if risky:
                message = f"{use.label}: " + "; ".join(hit.describe() for hit in risky)
                hits.append(Hit(control, use.arn, use.resource, message, use.values))
    return hits, problems, notices
