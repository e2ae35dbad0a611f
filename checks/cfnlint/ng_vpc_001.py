"""NG-VPC-001: VPC has no flow log. cfn-lint rule E9501.

The logic lives in netguard's rules; this class only binds the control to cfn-lint.
"""

from netguard.engines import cfnlint_adapter


class VpcWithoutFlowLog(cfnlint_adapter.NetguardRule):
    control_id = "NG-VPC-001"
