"""NG-DHCP-001: DHCP options set uses an unapproved DNS server. cfn-lint rule E9504.

The logic lives in netguard's rules; this class only binds the control to cfn-lint.
"""

from netguard.engines import cfnlint_adapter


class DhcpUnapprovedDns(cfnlint_adapter.NetguardRule):
    control_id = "NG-DHCP-001"
