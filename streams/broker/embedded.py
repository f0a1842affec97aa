"""Start, stop and inspect a real single-node Apache Kafka (KRaft) as a child process.

Why a real broker: kmo's guarantees (offsets committed only after data is written, idempotent
producers, consumer-group rebalancing, restart without loss) are properties of Kafka, and a test
against anything else proves nothing about them. The jars come from Maven Central through the
project's own ``pom.xml`` (no tarball download), cached once per machine; the broker's data
directory lives under ``$KMO_HOME/kafka`` so a restart keeps topics, records and committed offsets.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from actions.private_files import write_private
from kmo.kafka import MAX_MESSAGE_BYTES, bootstrap_file, wait_ready
from kmo.settings import Settings

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"  # must match <kafka.version> in pom.xml (a test checks)
_READY_MARK = ".complete"


class BrokerError(RuntimeError):
    """The embedded broker could not be fetched, formatted, started or stopped; says why."""


def jars_dir(settings: Settings) -> Path:
    return settings.cache_dir / f"kafka-{KAFKA_VERSION}" / "libs"


def fetch_jars(settings: Settings, *, offline: bool = False) -> Path:
    """Resolve the broker's jars from Maven Central into the cache (once); return the libs dir.

    Raises:
        BrokerError: when Maven is missing or the resolution fails (with Maven's output).
    """
    libs = jars_dir(settings)
    if (libs / _READY_MARK).exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is needed once to fetch the Kafka jars: apt-get install maven")
    libs.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
    with resources.as_file(resources.files("streams.broker") / "pom.xml") as pom:
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
        ]
        if offline:
            cmd.insert(1, "-o")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise BrokerError(f"mvn could not resolve Kafka {KAFKA_VERSION}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    (staging / _READY_MARK).write_text(KAFKA_VERSION)
    if libs.exists():  # a concurrent fetch won the race; keep theirs
        shutil.rmtree(staging, ignore_errors=True)
    else:
        staging.rename(libs)
    return libs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"kafka.Kafka" in cmdline


@dataclass
class BrokerState:
    """What survives a restart: the ports (clients keep their address) and the cluster id."""

    port: int
    controller_port: int
    cluster_id: str
    tls_port: int = 0  # SSL listener (0: none yet)
    sasl_port: int = 0  # SASL_SSL listener, PLAIN mechanism


class EmbeddedKafka:
    """One embedded broker rooted at ``$KMO_HOME/kafka``.

    Not thread-safe; one process manages a given home at a time (the pid file says which broker).
    """

    def __init__(
        self, settings: Settings, *, port: int | None = None, heap_mb: int | None = None, tls: bool = False
    ) -> None:
        self.settings = settings
        self.tls = tls
        self.dir = settings.home / "kafka"
        self.data_dir = self.dir / "data"
        self.requested_port = port
        self.heap_mb = heap_mb or int(os.environ.get("KMO_KAFKA_HEAP_MB", "768"))

    # -- state files -------------------------------------------------------------------------
    @property
    def _state_file(self) -> Path:
        return self.dir / "broker.json"

    @property
    def _pid_file(self) -> Path:
        return self.dir / "broker.pid"

    def _load_state(self) -> BrokerState:
        if self._state_file.exists():
            state = BrokerState(**json.loads(self._state_file.read_text()))
            if self.requested_port and self.requested_port != state.port:
                state.port = self.requested_port
            return state
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        return BrokerState(self.requested_port or _free_port(), _free_port(), cluster_id)

    def pid(self) -> int | None:
        """The broker's pid if it is running."""
        try:
            pid = int(self._pid_file.read_text())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def bootstrap(self) -> str | None:
        path = bootstrap_file(self.settings)
        return path.read_text().strip() if path.exists() and self.pid() else None

    # -- lifecycle ---------------------------------------------------------------------------
    def _write_config(self, state: BrokerState) -> Path:
        listeners = [f"PLAINTEXT://127.0.0.1:{state.port}"]
        tls: dict[str, str] = {}
        if self.tls:  # TLS and SASL_SSL listeners beside the plaintext one (streams/broker/tls.py)
            from streams.broker.tls import SASL_USER, ensure_material

            state.tls_port = state.tls_port or _free_port()
            state.sasl_port = state.sasl_port or _free_port()
            material = ensure_material(self.dir / "tls")
            listeners += [f"SSL://127.0.0.1:{state.tls_port}", f"SASL_SSL://127.0.0.1:{state.sasl_port}"]
            sasl_password = material["sasl_password"].read_text()
            tls = {
                "ssl.keystore.type": "PKCS12",
                "ssl.keystore.location": str(material["keystore"]),
                "ssl.keystore.password": material["keystore_password"].read_text(),
                "ssl.key.password": material["keystore_password"].read_text(),
                "sasl.enabled.mechanisms": "PLAIN",
                "listener.name.sasl_ssl.plain.sasl.jaas.config": "org.apache.kafka.common.security.plain."
                f'PlainLoginModule required user_{SASL_USER}="{sasl_password}";',
                "inter.broker.listener.name": "PLAINTEXT",
            }
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{state.controller_port}",
            "listeners": ",".join([*listeners, f"CONTROLLER://127.0.0.1:{state.controller_port}"]),
            "advertised.listeners": ",".join(listeners),
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL",
            **tls,
            "log.dirs": str(self.data_dir),
            "num.partitions": "4",
            # kmo creates every topic explicitly with its partition count; a typo must fail loudly.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Lets tests and demos use short consumer sessions, so a killed consumer's partitions
            # move on in seconds (Kafka's default floor is 6 s).
            "group.min.session.timeout.ms": "1000",
            "message.max.bytes": str(MAX_MESSAGE_BYTES + 65536),
            "log.retention.hours": "168",
        }
        path = self.dir / "server.properties"
        write_private(path, "".join(f"{k}={v}\n" for k, v in props.items()).encode())  # may hold a password
        return path

    def start(self, *, timeout: float = 90.0) -> str:
        """Start the broker (or find it running); return its bootstrap address once it answers.

        Raises:
            BrokerError: when Java is missing, formatting fails, or the broker does not become ready
                (the tail of its log is in the message).
        """
        running = self.bootstrap()
        if running:
            return running
        java = shutil.which("java")
        if java is None:
            raise BrokerError("Java 17+ is needed for the embedded Kafka: apt-get install openjdk-17-jre-headless")
        libs = fetch_jars(self.settings)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        state = self._load_state()
        config = self._write_config(state)
        classpath = f"{libs}/*"
        if not (self.data_dir / "meta.properties").exists():
            proc = subprocess.run(
                [
                    java,
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    # "=" form: a base64 cluster id may start with "-", which would read as an option
                    f"--cluster-id={state.cluster_id}",
                    "-c",
                    str(config),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise BrokerError(f"formatting the Kafka data dir failed:\n{proc.stdout}{proc.stderr}")
        self._state_file.write_text(json.dumps(state.__dict__))
        self.state = state
        with resources.as_file(resources.files("streams.broker") / "log4j2.properties") as log_config:
            args = [
                java,
                f"-Xms{min(256, self.heap_mb)}m",
                f"-Xmx{self.heap_mb}m",
                "-XX:+UseG1GC",
                f"-Dkafka.logs.dir={self.dir}",
                f"-Dlog4j2.configurationFile={log_config}",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(config),
            ]
            with open(self.dir / "broker.out", "ab") as out:
                proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self._pid_file.write_text(str(proc.pid))
        bootstrap = f"127.0.0.1:{state.port}"
        try:
            waited = wait_ready(bootstrap, timeout, security={"security_protocol": "PLAINTEXT"})
        except Exception as exc:
            self.stop()
            raise BrokerError(f"Kafka did not become ready: {exc}\n{self.log_tail()}") from exc
        if proc.poll() is not None:
            raise BrokerError(f"Kafka exited with {proc.returncode} right after start:\n{self.log_tail()}")
        bootstrap_file(self.settings).write_text(bootstrap)
        log.info("embedded Kafka %s ready at %s in %.1fs", KAFKA_VERSION, bootstrap, waited)
        return bootstrap

    def stop(self, *, timeout: float = 30.0) -> bool:
        """Controlled shutdown (SIGTERM), SIGKILL after ``timeout``; True if a broker was running."""
        bootstrap_file(self.settings).unlink(missing_ok=True)
        pid = self.pid()
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _pid_alive(pid):
            _reap(pid)
            time.sleep(0.1)
        if _pid_alive(pid):
            log.warning("Kafka (pid %d) ignored SIGTERM for %.0fs; killing it", pid, timeout)
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                _reap(pid)
                time.sleep(0.05)
        self._pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL the broker (fault-injection tests: a crash, not a shutdown)."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                _reap(pid)
                time.sleep(0.05)

    def status(self) -> dict[str, object]:
        """Whether it runs, where, and where its data and log are."""
        pid = self.pid()
        return {
            "running": pid is not None,
            "pid": pid,
            "bootstrap": self.bootstrap(),
            "version": KAFKA_VERSION,
            "data_dir": str(self.data_dir),
            "log": str(self.dir / "broker.log"),
            "jars": str(jars_dir(self.settings)),
        }

    def log_tail(self, lines: int = 30) -> str:
        for name in ("broker.log", "broker.out"):
            path = self.dir / name
            if path.exists():
                return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        return "(no broker log)"


def _reap(pid: int) -> None:
    """Collect a child's exit status so it does not linger as a zombie (when we started it)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
