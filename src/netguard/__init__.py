"""netguard: policy-as-code guardrails for AWS networks."""

__version__ = "0.1.0"
