"""NG-PCX-001: VPC peering to an unapproved account. cfn-lint rule E9509.

The logic lives in netguard's rules; this class only binds the control to cfn-lint.
"""

from netguard.engines.cfnlint import NetguardRule


class PeeringUnapprovedAccount(NetguardRule):
    control_id = "NG-PCX-001"
