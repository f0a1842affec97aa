"""Settings from the environment, validated once at start-up.

Why plain environment variables: the same names work in a shell, in docker-compose and in CI, and
secrets (later: Kafka SASL passwords) never need to appear on a command line.

================================ ============================================================
variable                         meaning (default)
================================ ============================================================
``KMO_HOME``                     state directory: broker data, checkpoints, warehouse (``./.kmo``)
``KMO_KAFKA_BOOTSTRAP``          an existing Kafka to use instead of the embedded broker
``KMO_TOPIC_PREFIX``             prefix for every topic name (empty); tests isolate themselves with it
``KMO_EVENTS_PARTITIONS``        partitions of the events topic (6)
``KMO_WAREHOUSE``                DuckDB file (``$KMO_HOME/warehouse.duckdb``)
``KMO_CACHE_DIR``                where broker jars are cached (``$XDG_CACHE_HOME/kmo`` or ``~/.cache/kmo``)
``KMO_KAFKA_SESSION_TIMEOUT_MS`` consumer-group session timeout: how soon a dead consumer's
                                 partitions move to another (10000)
``KMO_PARQUET``                  where the sink also writes events as hive-partitioned Parquet
                                 (a directory, or ``s3://bucket/prefix``); unset: DuckDB only
``KMO_WAREHOUSE_MEMORY_MB``      the sink's DuckDB memory limit (512): DuckDB's default, 80 % of
                                 RAM, lets its page cache grow with the warehouse file
================================ ============================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path


class ConfigError(ValueError):
    """An operator's configuration is wrong; the message names the variable."""


def env_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """A whole-number variable within [low, high], or ``default`` when unset; ConfigError names it."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _parquet(raw: str | None) -> str | None:
    if not raw:
        return None
    if raw.startswith("s3://"):
        if not raw[len("s3://") :].split("/", 1)[0]:
            raise ConfigError(f"KMO_PARQUET must name a bucket: s3://bucket[/prefix], got {raw!r}")
        return raw.rstrip("/")
    if "://" in raw:
        raise ConfigError(f"KMO_PARQUET is a directory or s3://bucket/prefix, got {raw!r}")
    return str(Path(raw).absolute())


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a kmo process needs to find its state and its broker."""

    home: Path
    kafka_bootstrap: str | None
    topic_prefix: str
    events_partitions: int
    warehouse: Path
    cache_dir: Path
    session_timeout_ms: int = 10000
    parquet: str | None = None
    warehouse_memory_mb: int = 512

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the ``KMO_*`` variables (see the module docstring)."""
        env = os.environ if env is None else env
        home = Path(env.get("KMO_HOME") or ".kmo").absolute()
        xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        prefix = env.get("KMO_TOPIC_PREFIX", "")
        if prefix and not all(c.isalnum() or c in "._-" for c in prefix):
            raise ConfigError(f"KMO_TOPIC_PREFIX may hold only letters, digits, '.', '_' and '-': {prefix!r}")
        return cls(
            home=home,
            kafka_bootstrap=env.get("KMO_KAFKA_BOOTSTRAP") or None,
            topic_prefix=prefix,
            events_partitions=env_int(env, "KMO_EVENTS_PARTITIONS", 6, 1, 1024),
            warehouse=Path(env.get("KMO_WAREHOUSE") or home / "warehouse.duckdb").absolute(),
            cache_dir=Path(env.get("KMO_CACHE_DIR") or Path(xdg) / "kmo").absolute(),
            session_timeout_ms=env_int(env, "KMO_KAFKA_SESSION_TIMEOUT_MS", 10000, 1000, 300000),
            parquet=_parquet(env.get("KMO_PARQUET")),
            warehouse_memory_mb=env_int(env, "KMO_WAREHOUSE_MEMORY_MB", 512, 64, 1024 * 1024),
        )

    def with_(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and the demo use it)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def state_dir(self) -> Path:
        """Checkpoints and other small state files; created 0700."""
        path = self.home / "state"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path
