"""NG-PCX-001: VPC peering to an unapproved account..

Checked by Checkov for CloudFormation and Terraform.
The logic lives in netguard's rules; this file only registers the control with Checkov.
"""

from netguard.engines.checkov import register

checks = register("NG-PCX-001")
