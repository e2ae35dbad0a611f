"""netguard's cfn-lint rules. Importing the package exposes every rule for `cfn-lint -a netguard.checks.cfnlint`."""

from netguard.checks.cfnlint.ng_dhcp_001 import DhcpUnapprovedDns
from netguard.checks.cfnlint.ng_eip_001 import EipNotAttached
from netguard.checks.cfnlint.ng_iam_001 import IamNetworkDeletes
from netguard.checks.cfnlint.ng_iam_002 import IamAddressManagement
from netguard.checks.cfnlint.ng_iam_003 import IamTopologyCreation
from netguard.checks.cfnlint.ng_pcx_001 import PeeringUnapprovedAccount
from netguard.checks.cfnlint.ng_pcx_002 import PeeringDefaultRoute
from netguard.checks.cfnlint.ng_vpc_001 import VpcWithoutFlowLog
from netguard.checks.cfnlint.ng_vpc_002 import FlowLogNotAllTraffic
from netguard.checks.cfnlint.ng_vpc_003 import VpcWithoutDhcpOptions

__all__ = [
    "DhcpUnapprovedDns",
    "EipNotAttached",
    "FlowLogNotAllTraffic",
    "IamAddressManagement",
    "IamNetworkDeletes",
    "IamTopologyCreation",
    "PeeringDefaultRoute",
    "PeeringUnapprovedAccount",
    "VpcWithoutDhcpOptions",
    "VpcWithoutFlowLog",
]
