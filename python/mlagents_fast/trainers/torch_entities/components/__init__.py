"""Training components that sit beside the policy (reward providers)."""
