# A Terraform network module with the mistakes netguard looks for.

variable "flow_logs_enabled" {
  type    = bool
  default = true
}

resource "aws_vpc" "main" {
  cidr_block = "10.10.0.0/16"
}

resource "aws_flow_log" "main" {
  count        = var.flow_logs_enabled ? 1 : 0
  vpc_id       = aws_vpc.main.id
  traffic_type = "REJECT"
}

resource "aws_eip" "bastion" {
  domain = "vpc"
}

resource "aws_vpc_peering_connection" "partner" {
  vpc_id        = aws_vpc.main.id
  peer_vpc_id   = "vpc-0a1b2c3d4e5f67890"
  peer_owner_id = "210987654321"
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.main.id
  route {
    cidr_block                = "0.0.0.0/0"
    vpc_peering_connection_id = aws_vpc_peering_connection.partner.id
  }
}

data "aws_iam_policy_document" "ops" {
  statement {
    actions   = ["ec2:ReleaseAddress", "ec2:DisassociateAddress"]
    resources = ["*"]
  }
}
