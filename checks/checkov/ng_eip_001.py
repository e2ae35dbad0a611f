"""NG-EIP-001: Elastic IP is not attached..

Checked by Checkov for CloudFormation and Terraform.
The logic lives in netguard's rules; this file only registers the control with Checkov.
"""

from netguard.engines.checkov import register

checks = register("NG-EIP-001")
