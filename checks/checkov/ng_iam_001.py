"""NG-IAM-001: IAM policy allows network-destructive deletes without conditions.

Checked by Checkov for CloudFormation and Terraform.
The logic lives in netguard's rules; this file only registers the control with Checkov.
"""

from netguard.engines.checkov import register

checks = register("NG-IAM-001")
