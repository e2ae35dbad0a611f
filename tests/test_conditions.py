"""The CloudFormation condition solver behind condition-aware coverage."""

from __future__ import annotations

from netguard.cfn.conditions import TRUE, ConditionSet, conj, disj, neg

PARAMS = {"Env": {"Type": "String", "AllowedValues": ["prod", "dev", "test"]}, "Free": {"Type": "String"}}
CONDS = {
    "IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]},
    "IsDev": {"Fn::Equals": ["dev", {"Ref": "Env"}]},
    "NotProd": {"Fn::Not": [{"Condition": "IsProd"}]},
    "ProdOrDev": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "IsDev"}]},
    "FreeX": {"Fn::Equals": [{"Ref": "Free"}, "x"]},
    "Loop": {"Fn::Not": [{"Condition": "Loop"}]},
}


def solver() -> ConditionSet:
    return ConditionSet(CONDS, PARAMS)


def test_implication_and_counterexamples():
    cs = solver()
    assert cs.implies(cs.named("IsProd"), cs.named("IsProd"))[0] is True
    assert cs.implies(TRUE, disj(cs.named("IsProd"), cs.named("NotProd")))[0] is True
    holds, scenario = cs.implies(TRUE, cs.named("ProdOrDev"))
    assert holds is False and scenario["parameters"] == {"Env": "test"}
    assert "Env is 'test'" in cs.describe(scenario)


def test_one_parameter_cannot_equal_two_values():
    cs = solver()
    assert not cs.satisfiable(conj(cs.named("IsProd"), cs.named("IsDev")))
    assert cs.satisfiable(conj(cs.named("IsProd"), neg(cs.named("IsDev"))))


def test_free_parameters_can_take_another_value():
    cs = solver()
    holds, scenario = cs.implies(TRUE, cs.named("FreeX"))
    assert holds is False
    assert "Free has another value" in cs.describe(scenario)


def test_unknown_and_circular_conditions_are_opaque_not_crashes():
    cs = solver()
    assert cs.implies(TRUE, cs.named("Loop"))[0] is False
    assert cs.implies(TRUE, cs.named("Missing"))[0] is False
    assert cs.implies(cs.named("Missing"), cs.named("Missing"))[0] is True


def test_too_many_scenarios_is_unknown():
    params = {f"P{i}": {"Type": "String"} for i in range(20)}
    conds = {f"C{i}": {"Fn::Equals": [{"Ref": f"P{i}"}, "on"]} for i in range(20)}
    cs = ConditionSet(conds, params)
    everything = conj(*(cs.named(f"C{i}") for i in range(20)))
    holds, _ = cs.implies(TRUE, everything)
    assert holds is None
