"""The Terraform checks of the Checkov plug-in (resource and data-source checks)."""

from __future__ import annotations

from typing import Any

from checkov.common.models.enums import CheckResult
from checkov.terraform.checks.data.base_check import BaseDataCheck
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck as TfResourceCheck

from netguard.catalog import Control
from netguard.engines.checkov import category, verdict
from netguard.terraform.module import DATA_SOURCES


def _address(conf: dict[str, Any], entity_type: str, prefix: str) -> str:
    address = str(conf.get("__address__", ""))
    if not address:
        address = f"{entity_type}.{conf.get('__name__', 'unknown')}"
    return address if address.startswith(prefix) else prefix + address


class NetguardTfCheck(TfResourceCheck):
    """One netguard control as a Checkov Terraform resource check."""

    def __init__(self, control: Control, resource_types: list[str]) -> None:
        self.control = control
        super().__init__(
            name=f"{control.id}: {control.title}",
            id=control.engines["checkov"],
            categories=[category(control)],
            supported_resources=resource_types,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        return verdict(self, self.control, "terraform", _address(conf, self.entity_type, ""), conf)


class NetguardTfDataCheck(BaseDataCheck):
    """One netguard control as a Checkov Terraform data-source check."""

    def __init__(self, control: Control, data_types: list[str]) -> None:
        self.control = control
        super().__init__(
            name=f"{control.id}: {control.title}",
            id=control.engines["checkov"],
            categories=[category(control)],
            supported_data=data_types,
        )

    def scan_data_conf(self, conf: dict[str, Any]) -> CheckResult:
        return verdict(self, self.control, "terraform", _address(conf, self.entity_type, "data."), conf)


def terraform_checks(control: Control) -> list[Any]:
    types = control.resource_types("terraform")
    resources = [t for t in types if t not in DATA_SOURCES]
    data = [t for t in types if t in DATA_SOURCES]
    checks: list[Any] = []
    if resources:
        checks.append(NetguardTfCheck(control, resources))
    if data:
        checks.append(NetguardTfDataCheck(control, data))
    return checks
