"""NG-EIP-001: Elastic IP is not attached. cfn-lint rule W9505.

The logic lives in netguard's rules; this class only binds the control to cfn-lint.
"""

from netguard.engines.cfnlint import NetguardRule


class EipNotAttached(NetguardRule):
    control_id = "NG-EIP-001"
