"""NG-VPC-002: Flow log does not capture all traffic. cfn-lint rule W9502.

The logic lives in netguard's rules; this class only binds the control to cfn-lint.
"""

from netguard.engines.cfnlint import NetguardRule


class FlowLogNotAllTraffic(NetguardRule):
    control_id = "NG-VPC-002"
