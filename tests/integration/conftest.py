"""Fixtures shared by the integration tests: SoftHSM2 tokens for the PKCS#11 backend and HSM operations."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SECOND_TOKEN = "kmo-test-2"  # a second HSM, for replication and the backup-key transport ceremony
SO_PIN = "5678"
USER_PIN = "pin-73915-kmo"
SOFTHSM_MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A SoftHSM2 token of its own (module, token label, user PIN). The module reads SOFTHSM2_CONF once,
    when the process first loads it, so the variable stays set for the session."""
    module = next((m for m in SOFTHSM_MODULES if Path(m).exists()), None)
    if module is None:
        pytest.fail("SoftHSM2 is not installed: run scripts/install-system-deps.sh as root (Debian softhsm2)")
    base = tmp_path_factory.mktemp("softhsm")
    (base / "tokens").mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {base / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SOFTHSM2_CONF", str(conf))
        for label in ("kmo-test", SECOND_TOKEN):  # both before the module loads: it lists tokens once
            subprocess.run(
                ["softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", USER_PIN],
                check=True,
                capture_output=True,
            )
        yield module, "kmo-test", USER_PIN
