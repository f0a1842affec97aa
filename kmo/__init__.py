"""kmo, the key management orchestrator: command line and settings shared by every package."""

__version__ = "0.1.0"
