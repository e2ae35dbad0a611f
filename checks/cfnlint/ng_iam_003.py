"""NG-IAM-003: IAM policy allows network topology creation without conditions. cfn-lint rule E9508.

The logic lives in netguard's rules; this class only binds the control to cfn-lint.
"""

from netguard.engines.cfnlint import NetguardRule


class IamTopologyCreation(NetguardRule):
    control_id = "NG-IAM-003"
