"""The worker's Faust app, with one of faust-streaming's fixed settings changed: how long the broker may
hold a fetch. Found by issue #8's latency benchmark at 1,000 events/s (bench/README.md has the runs).

faust-streaming 0.15 builds its aiokafka consumer with ``fetch_max_wait_ms=1500``, fixed. aiokafka
keeps at most one fetch in flight per broker, and a fetch asks only for partitions whose last
records have all been handed out. So when the events partitions still hold records at the moment a
fetch goes out, it names only the worker's forwarded (by-principal) partitions, and if none of those
receive anything (a handful of principals leave some of them quiet for seconds) the broker holds it
the full 1.5 s while new events wait behind it. Seen: the key stream idle 1.0-1.5 s at a time, every
~1.8 s, for the rest of the run once it began; records reaching the worker 1.2-1.9 s after the
broker had acked them; findings seconds late in 5 of 13 runs. Here the broker holds a fetch at most
``fetch_wait_ms`` (20 ms by default), which a quiet partition can then add to a record's latency.

It is set through Faust's own seams (the app's transport and its consumer thread), on the consumer
Faust creates when the worker starts.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

DEFAULT_FETCH_WAIT_MS = 20


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):  # type: ignore[misc]
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # the constructor's value, kept by aiokafka for the fetcher it builds at start; Faust
        # offers no setting for it
        consumer._fetch_max_wait_ms = self.app.fetch_wait_ms  # built only by App, below
        return consumer


class _Consumer(faust_aiokafka.Consumer):  # type: ignore[misc]
    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):  # type: ignore[misc]
    Consumer = _Consumer


class App(faust.App):  # type: ignore[misc]
    """A Faust app whose consumer's fetch waits at most ``fetch_wait_ms`` on the broker."""

    def __init__(self, *args: Any, fetch_wait_ms: int = DEFAULT_FETCH_WAIT_MS, **kwargs: Any) -> None:
        self.fetch_wait_ms = fetch_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)
