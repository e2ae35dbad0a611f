"""NG-VPC-001: VPC has no flow log..

Checked by Checkov for CloudFormation and Terraform.
The logic lives in netguard's rules; this file only registers the control with Checkov.
"""

from netguard.engines.checkov import register

checks = register("NG-VPC-001")
