"""Retrying key-manager calls safely when a provider throttles or times out.

Adapters never retry (see ``actions.backends.base``); callers do, here, and only where it is safe:

* :func:`retrying` for operations the contract makes idempotent by target state (describe, list,
  generate by name, disable, enable, schedule or cancel destruction): retried with exponential
  backoff on :class:`Throttled` and :class:`BackendUnavailable`.
* :func:`rotate_once` for rotation, which is *not* idempotent: a timeout may hide a rotation that
  happened. Before any retry the key is described; if its version moved on, the rotation took place
  and is not repeated. If the key cannot even be described, :class:`OutcomeUnknown` says so, and the
  caller's audit entry records that the rotation may or may not have happened: never half-done and
  silent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from actions.backends.base import BackendError, BackendUnavailable, KeyBackend, KeyInfo, Throttled

T = TypeVar("T")
RETRYABLE = (Throttled, BackendUnavailable)
ATTEMPTS = 4
BASE_DELAY = 0.5  # seconds: 0.5, 1, 2 between the four attempts


class OutcomeUnknown(BackendError):
    """A change was sent, the provider did not answer, and its state cannot be read back."""


def retrying(call: Callable[[], T], *, attempts: int = ATTEMPTS, base_delay: float = BASE_DELAY) -> T:
    """``call()``, retried with exponential backoff while the provider throttles or is unavailable."""
    for attempt in range(attempts):
        try:
            return call()
        except RETRYABLE:
            if attempt == attempts - 1:
                raise
            time.sleep(base_delay * 2**attempt)
    raise AssertionError("unreachable")


def rotate_once(
    backend: KeyBackend, name: str, *, attempts: int = ATTEMPTS, base_delay: float = BASE_DELAY
) -> tuple[KeyInfo, int]:
    """Rotate ``name`` exactly once despite throttling and timeouts; returns the key after it and how
    many attempts it took (a rotation found done after a failed attempt counts as that attempt)."""
    before = retrying(lambda: backend.describe(name), attempts=attempts, base_delay=base_delay)
    for attempt in range(1, attempts + 1):
        try:
            return backend.rotate(name), attempt
        except RETRYABLE as exc:
            try:
                now = retrying(lambda: backend.describe(name), attempts=attempts, base_delay=base_delay)
            except RETRYABLE:
                raise OutcomeUnknown(
                    str(backend.system),
                    "rotate",
                    name,
                    f"{type(exc).__name__} during rotation and the key cannot be read back: it may or may not "
                    f"have rotated (it was at version {before.version})",
                ) from exc
            if now.version != before.version:
                return now, attempt  # the provider rotated; the answer was lost: do not rotate again
            if attempt == attempts:
                raise
            time.sleep(base_delay * 2 ** (attempt - 1))
    raise AssertionError("unreachable")
