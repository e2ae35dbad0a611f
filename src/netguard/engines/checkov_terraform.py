"""The Terraform side of the Checkov adapters, imported only when Terraform is scanned."""

from __future__ import annotations

from typing import Any

from checkov.terraform.checks.data.base_check import BaseDataCheck
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck as TfResourceCheck

from netguard.catalog import Control
from netguard.engines.checkov_adapter import DATA_SOURCES, CheckResult, _category, _tf_result


class NetguardTfCheck(TfResourceCheck):
    """One netguard control as a Checkov Terraform resource check."""

    def __init__(self, control: Control, resource_types: list[str]) -> None:
        self.control = control
        super().__init__(
            name=f"{control.id}: {control.title}",
            id=control.engines["checkov"],
            categories=[_category(control)],
            supported_resources=resource_types,
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        return _tf_result(self, "resource", conf, self.entity_type)


class NetguardTfDataCheck(BaseDataCheck):
    """One netguard control as a Checkov Terraform data-source check."""

    def __init__(self, control: Control, data_types: list[str]) -> None:
        self.control = control
        super().__init__(
            name=f"{control.id}: {control.title}",
            id=control.engines["checkov"],
            categories=[_category(control)],
            supported_data=data_types,
        )

    def scan_data_conf(self, conf: dict[str, Any]) -> CheckResult:
        return _tf_result(self, "data", conf, self.entity_type)


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
