"""Detection rules: one module each, listed explicitly in :func:`load_rules`."""
