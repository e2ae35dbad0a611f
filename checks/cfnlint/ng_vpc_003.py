"""NG-VPC-003: VPC has no DHCP options set associated. cfn-lint rule W9503.

The logic lives in netguard's rules; this class only binds the control to cfn-lint.
"""

from netguard.engines.cfnlint import NetguardRule


class VpcWithoutDhcpOptions(NetguardRule):
    control_id = "NG-VPC-003"
