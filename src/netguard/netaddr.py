"""Small network-address facts shared by the CloudFormation and Terraform rules."""

from __future__ import annotations

import ipaddress
from typing import Any


def is_default_route(value: Any) -> bool:
    """True for a destination that matches every address: 0.0.0.0/0, ::/0 and their spellings."""
    if not isinstance(value, str):
        return False
    try:
        return ipaddress.ip_network(value.strip(), strict=False).prefixlen == 0
    except ValueError:
        return False
