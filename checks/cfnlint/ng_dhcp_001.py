"""NG-DHCP-001: DHCP options set uses an unapproved DNS server. cfn-lint rule E9504.

The logic lives in netguard's rules; this class only binds the control to cfn-lint.
"""

from netguard.engines.cfnlint import NetguardRule


class DhcpUnapprovedDns(NetguardRule):
    control_id = "NG-DHCP-001"
