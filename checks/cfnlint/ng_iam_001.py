"""NG-IAM-001: IAM policy allows network-destructive deletes without conditions. cfn-lint rule E9506.

The logic lives in netguard's rules; this class only binds the control to cfn-lint.
"""

from netguard.engines.cfnlint import NetguardRule


class IamNetworkDeletes(NetguardRule):
    control_id = "NG-IAM-001"
