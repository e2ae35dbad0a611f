"""NG-PCX-002: Default route through a VPC peering connection. cfn-lint rule E9510.

The logic lives in netguard's rules; this class only binds the control to cfn-lint.
"""

from netguard.engines.cfnlint import NetguardRule


class PeeringDefaultRoute(NetguardRule):
    control_id = "NG-PCX-002"
