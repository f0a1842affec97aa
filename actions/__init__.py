"""kmo actions: the key lifecycle orchestrator (generate, rotate, deactivate, destroy, audit,
policy-check, inventory) across Vault, AWS KMS, GCP KMS, Azure Key Vault and PKCS#11 HSMs.

Built so far (issue 5, in progress): the specification's request and response schemas with strict
validation (``request``), the backend contract with NIST SP 800-57 states (``backends.base``), kmo's
own encrypted, versioned software keystore (``backends.local``), the hash-chained audit log
(``audit_log``, ``kmo verify-audit``) and Ed25519-signed destruction certificates (``certificate``,
``kmo verify-certificate``). Still to come: the cloud, Vault and PKCS#11 adapters, the destruction
pipeline with dual control, coordinated rotation, ``kmo run`` and the responder.
"""
