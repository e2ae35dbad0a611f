"""NG-DHCP-001: DHCP options set uses an unapproved DNS server..

Checked by Checkov for CloudFormation and Terraform.
The logic lives in netguard's rules; this file only registers the control with Checkov.
"""

from netguard.engines.checkov import register

checks = register("NG-DHCP-001")
