"""NG-IAM-002: IAM policy allows Elastic IP address management without conditions. cfn-lint rule E9507.

The logic lives in netguard's rules; this class only binds the control to cfn-lint.
"""

from netguard.engines.cfnlint import NetguardRule


class IamAddressManagement(NetguardRule):
    control_id = "NG-IAM-002"
