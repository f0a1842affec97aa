"""Key manager adapters: one module per system, one contract (:mod:`actions.backends.base`)."""
