"""NG-IAM-001: IAM policy allows network-destructive deletes without conditions. cfn-lint rule E9506.

The logic lives in netguard's rules; this class only binds the control to cfn-lint.
"""

from netguard.engines import cfnlint_adapter


class IamNetworkDeletes(cfnlint_adapter.NetguardRule):
    control_id = "NG-IAM-001"
