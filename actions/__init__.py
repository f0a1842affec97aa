"""kmo actions: the key lifecycle orchestrator (generate, rotate, deactivate, destroy, audit,
policy-check, inventory) across Vault, AWS KMS, GCP KMS, Azure Key Vault and PKCS#11 HSMs.

Not built yet: issue 5 delivers it. The package exists so the fixed layout holds and the
architecture tests can see where it will sit.
"""
