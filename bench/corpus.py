"""Generate a synthetic corpus of realistic CloudFormation (YAML and JSON) and Terraform modules.

Each CloudFormation template is a small VPC stack of about 19 resources; each Terraform module is a
folder of five files. A fixed share of files carries violations (missing flow log, REJECT-only flow
log, loose Elastic IP, broad IAM grant), chosen by a seeded random generator so runs are comparable.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import yaml

PLANTED = {
    "no-flow-log": ("NG-VPC-001", "Vpc"),
    "reject": ("NG-VPC-002", "FlowLog"),
    "loose-eip": ("NG-EIP-001", "SpareEip"),
    "iam": ("NG-IAM-001", "AppRole"),
}


def _template(i: int, rng: random.Random, violating: bool) -> tuple[dict, list[tuple[str, str]]]:
    az = ["a", "b"]
    resources: dict = {
        "Vpc": {
            "Type": "AWS::EC2::VPC",
            "Properties": {
                "CidrBlock": f"10.{i % 250}.0.0/16",
                "EnableDnsSupport": True,
                "Tags": [{"Key": "Name", "Value": f"vpc-{i}"}],
            },
        },
        "Igw": {"Type": "AWS::EC2::InternetGateway"},
        "IgwAttach": {
            "Type": "AWS::EC2::VPCGatewayAttachment",
            "Properties": {"VpcId": {"Ref": "Vpc"}, "InternetGatewayId": {"Ref": "Igw"}},
        },
        "Options": {"Type": "AWS::EC2::DHCPOptions", "Properties": {"DomainNameServers": ["AmazonProvidedDNS"]}},
        "OptionsAssoc": {
            "Type": "AWS::EC2::VPCDHCPOptionsAssociation",
            "Properties": {"VpcId": {"Ref": "Vpc"}, "DhcpOptionsId": {"Ref": "Options"}},
        },
        "PublicRoutes": {"Type": "AWS::EC2::RouteTable", "Properties": {"VpcId": {"Ref": "Vpc"}}},
        "DefaultRoute": {
            "Type": "AWS::EC2::Route",
            "Properties": {
                "RouteTableId": {"Ref": "PublicRoutes"},
                "DestinationCidrBlock": "0.0.0.0/0",
                "GatewayId": {"Ref": "Igw"},
            },
        },
        "NatEip": {"Type": "AWS::EC2::EIP", "Properties": {"Domain": "vpc"}},
        "Nat": {
            "Type": "AWS::EC2::NatGateway",
            "Properties": {"AllocationId": {"Fn::GetAtt": ["NatEip", "AllocationId"]}, "SubnetId": {"Ref": "PublicA"}},
        },
        "FlowLog": {
            "Type": "AWS::EC2::FlowLog",
            "Properties": {
                "ResourceId": {"Ref": "Vpc"},
                "ResourceType": "VPC",
                "TrafficType": "ALL",
                "LogDestinationType": "s3",
                "LogDestination": "arn:aws:s3:::flow-logs",
            },
        },
        "AppSg": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": "app",
                "VpcId": {"Ref": "Vpc"},
                "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "10.0.0.0/8"}],
            },
        },
        "AppRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
                    ],
                },
                "Policies": [
                    {
                        "PolicyName": "app",
                        "PolicyDocument": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": ["s3:GetObject"],
                                    "Resource": f"arn:aws:s3:::bucket-{i}/*",
                                }
                            ],
                        },
                    }
                ],
            },
        },
    }
    for zone in az:
        for tier, offset in (("Public", 0), ("Private", 10)):
            resources[f"{tier}{zone.upper()}"] = {
                "Type": "AWS::EC2::Subnet",
                "Properties": {
                    "VpcId": {"Ref": "Vpc"},
                    "CidrBlock": f"10.{i % 250}.{offset + az.index(zone)}.0/24",
                    "AvailabilityZone": {"Fn::Select": [az.index(zone), {"Fn::GetAZs": ""}]},
                },
            }
        resources[f"PublicAssoc{zone.upper()}"] = {
            "Type": "AWS::EC2::SubnetRouteTableAssociation",
            "Properties": {"SubnetId": {"Ref": f"Public{zone.upper()}"}, "RouteTableId": {"Ref": "PublicRoutes"}},
        }
    planted: list[tuple[str, str]] = []
    if violating:
        kind = rng.choice(sorted(PLANTED))
        planted.append(PLANTED[kind])
        if kind == "no-flow-log":
            del resources["FlowLog"]
        elif kind == "reject":
            resources["FlowLog"]["Properties"]["TrafficType"] = "REJECT"
        elif kind == "loose-eip":
            resources["SpareEip"] = {"Type": "AWS::EC2::EIP", "Properties": {"Domain": "vpc"}}
        else:
            resources["AppRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
                {"Effect": "Allow", "Action": "ec2:Delete*", "Resource": "*"}
            )
    template = {"AWSTemplateFormatVersion": "2010-09-09", "Description": f"network stack {i}", "Resources": resources}
    return template, planted


class _CfnDumper(yaml.SafeDumper):
    pass


def _terraform_module(i: int, violating: bool, rng: random.Random) -> dict[str, str]:
    traffic = "REJECT" if violating and rng.random() < 0.5 else "ALL"
    spare = violating and traffic == "ALL"
    return {
        "variables.tf": f'variable "cidr" {{\n  default = "10.{i % 250}.0.0/16"\n}}\n\n'
        'variable "azs" {\n  default = ["a", "b"]\n}\n',
        "vpc.tf": 'resource "aws_vpc" "main" {\n  cidr_block = var.cidr\n  enable_dns_support = true\n}\n\n'
        'resource "aws_subnet" "private" {\n  count      = length(var.azs)\n  vpc_id     = aws_vpc.main.id\n'
        "  cidr_block = cidrsubnet(var.cidr, 8, count.index)\n}\n",
        "dhcp.tf": 'resource "aws_vpc_dhcp_options" "main" {\n  domain_name_servers = ["AmazonProvidedDNS"]\n}\n\n'
        'resource "aws_vpc_dhcp_options_association" "main" {\n  vpc_id          = aws_vpc.main.id\n'
        "  dhcp_options_id = aws_vpc_dhcp_options.main.id\n}\n",
        "logs.tf": 'resource "aws_flow_log" "main" {\n  vpc_id       = aws_vpc.main.id\n'
        f'  traffic_type = "{traffic}"\n'
        '  log_destination_type = "s3"\n  log_destination = "arn:aws:s3:::flow-logs"\n}\n',
        "nat.tf": 'resource "aws_eip" "nat" {\n  domain = "vpc"\n}\n\nresource "aws_nat_gateway" "main" {\n'
        "  allocation_id = aws_eip.nat.id\n  subnet_id     = aws_subnet.private[0].id\n}\n"
        + ('\nresource "aws_eip" "spare" {\n  domain = "vpc"\n}\n' if spare else ""),
    }


def generate(root: Path, cfn_files: int, tf_files: int, violation_share: float = 0.3, seed: int = 7) -> dict:
    """Write the corpus under root; half of the CloudFormation files are YAML, half JSON.

    Returns the file counts and `planted`: every (file, control, resource) the corpus must produce,
    and nothing else, so the corpus doubles as an end-to-end check of the scanner.
    """
    rng = random.Random(seed)
    planted: list[tuple[str, str, str]] = []
    (root / "cloudformation").mkdir(parents=True, exist_ok=True)
    for i in range(cfn_files):
        template, marks = _template(i, rng, rng.random() < violation_share)
        if i % 2:
            path = root / "cloudformation" / f"stack-{i:04d}.json"
            path.write_text(json.dumps(template, indent=2))
        else:
            path = root / "cloudformation" / f"stack-{i:04d}.yaml"
            path.write_text(yaml.dump(template, Dumper=_CfnDumper, sort_keys=False))
        planted.extend((str(path), control, resource) for control, resource in marks)
    modules = max(tf_files // 5, 1) if tf_files else 0
    for m in range(modules):
        folder = root / "terraform" / f"module-{m:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        files = _terraform_module(m, rng.random() < violation_share, rng)
        for name, text in files.items():
            (folder / name).write_text(text)
        if 'traffic_type = "REJECT"' in files["logs.tf"]:
            planted.append((str(folder / "logs.tf"), "NG-VPC-002", "aws_flow_log.main"))
        if 'aws_eip" "spare"' in files["nat.tf"]:
            planted.append((str(folder / "nat.tf"), "NG-EIP-001", "aws_eip.spare"))
    return {"cloudformation": cfn_files, "terraform": modules * 5, "planted": planted}


def scaling_module(folder: Path, shape: str, size: int) -> None:
    """One module that grows: `pairs` writes size VPCs each with its flow log (one file, as teams
    generate them); `count` writes an EIP and a NAT gateway with count = size, linked by count.index."""
    folder.mkdir(parents=True, exist_ok=True)
    if shape == "pairs":
        blocks = [
            f'resource "aws_vpc" "v{i}" {{\n  cidr_block = "10.{i // 250}.{i % 250}.0/24"\n}}\n\n'
            f'resource "aws_flow_log" "f{i}" {{\n  vpc_id       = aws_vpc.v{i}.id\n  traffic_type = "ALL"\n}}\n'
            for i in range(size)
        ]
        (folder / "main.tf").write_text("\n".join(blocks))
        return
    (folder / "main.tf").write_text(
        f'variable "nat_count" {{\n  default = {size}\n}}\n\n'
        'resource "aws_eip" "nat" {\n  count  = var.nat_count\n  domain = "vpc"\n}\n\n'
        'resource "aws_nat_gateway" "nat" {\n  count         = var.nat_count\n'
        '  allocation_id = aws_eip.nat[count.index].id\n  subnet_id     = "subnet-1"\n}\n'
    )


def called_modules(folder: Path, calls: int = 20) -> tuple[Path, Path]:
    """A root calling one local child module `calls` times, and the same resources flattened into one
    module: the cost of following module calls is the difference."""
    child, root, flat = folder / "modules" / "network", folder / "root", folder / "flat"
    for path in (child, root, flat):
        path.mkdir(parents=True, exist_ok=True)
    body = (
        'resource "aws_vpc" "this" {\n  cidr_block = var.cidr\n}\n\n'
        'resource "aws_flow_log" "this" {\n  vpc_id       = aws_vpc.this.id\n  traffic_type = "ALL"\n}\n\n'
        'resource "aws_eip" "nat" {\n  count  = var.nat ? 2 : 0\n  domain = "vpc"\n}\n\n'
        'resource "aws_nat_gateway" "this" {\n  count         = var.nat ? 2 : 0\n'
        '  allocation_id = aws_eip.nat[count.index].id\n  subnet_id     = "subnet-1"\n}\n'
    )
    (child / "main.tf").write_text('variable "cidr" {}\n\nvariable "nat" {\n  default = true\n}\n\n' + body)
    (child / "outputs.tf").write_text('output "vpc_id" {\n  value = aws_vpc.this.id\n}\n')
    (root / "main.tf").write_text(
        "\n".join(
            f'module "net{i}" {{\n  source = "../modules/network"\n  cidr   = "10.{i}.0.0/16"\n}}\n'
            for i in range(calls)
        )
    )
    (flat / "main.tf").write_text(
        'variable "nat" {\n  default = true\n}\n\n'
        + "\n".join(
            body.replace('"this"', f'"this{i}"')
            .replace('"nat"', f'"nat{i}"')
            .replace("aws_vpc.this.", f"aws_vpc.this{i}.")
            .replace("aws_eip.nat[", f"aws_eip.nat{i}[")
            .replace("var.cidr", f'"10.{i}.0.0/16"')
            for i in range(calls)
        )
    )
    return root, flat


def terraform_plan(path: Path, resources: int) -> None:
    """`terraform show -json` of a plan with `resources` resources: VPCs with realistic planned values
    and one flow log each but the first, whose vpc_id is known only after apply."""
    pairs = resources // 2
    planned, changes = [], []
    for i in range(pairs):
        key = f"k{i:05d}"
        values = {
            "cidr_block": f"10.{i % 250}.0.0/16",
            "enable_dns_support": True,
            "enable_dns_hostnames": True,
            "instance_tenancy": "default",
            "tags": {"Name": f"vpc-{key}", "team": "network", "env": "prod"},
            "tags_all": {"Name": f"vpc-{key}", "team": "network", "env": "prod"},
        }
        planned.append(
            {
                "address": f'aws_vpc.main["{key}"]',
                "mode": "managed",
                "type": "aws_vpc",
                "name": "main",
                "index": key,
                "values": values,
            }
        )
        changes.append(
            {
                "address": f'aws_vpc.main["{key}"]',
                "change": {"actions": ["create"], "after": values, "after_unknown": {"id": True, "arn": True}},
            }
        )
        if i:
            log = {"traffic_type": "ALL", "log_destination_type": "s3", "log_destination": "arn:aws:s3:::flow-logs"}
            planned.append(
                {
                    "address": f'aws_flow_log.main["{key}"]',
                    "mode": "managed",
                    "type": "aws_flow_log",
                    "name": "main",
                    "index": key,
                    "values": log,
                }
            )
            changes.append(
                {
                    "address": f'aws_flow_log.main["{key}"]',
                    "change": {"actions": ["create"], "after": log, "after_unknown": {"id": True, "vpc_id": True}},
                }
            )
    configuration = {
        "root_module": {
            "resources": [
                {"address": "aws_vpc.main", "mode": "managed", "type": "aws_vpc", "name": "main", "expressions": {}},
                {
                    "address": "aws_flow_log.main",
                    "mode": "managed",
                    "type": "aws_flow_log",
                    "name": "main",
                    "for_each_expression": {"references": ["aws_vpc.main"]},
                    "expressions": {"vpc_id": {"references": ["each.value.id", "each.value"]}},
                },
            ]
        }
    }
    plan = {
        "format_version": "1.2",
        "terraform_version": "1.9.8",
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": configuration,
    }
    path.write_text(json.dumps(plan, indent=2))
