"""NG-VPC-001: VPC has no flow log. cfn-lint rule E9501.

The logic lives in netguard's rules; this class only binds the control to cfn-lint.
"""

from netguard.engines.cfnlint import NetguardRule


class VpcWithoutFlowLog(NetguardRule):
    control_id = "NG-VPC-001"
