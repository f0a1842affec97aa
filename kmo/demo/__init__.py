"""The demo: a synthetic key estate written as real audit-log files, run end to end."""
