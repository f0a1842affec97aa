"""The worker's Faust app: two of faust-streaming's fixed settings changed, each of which held its streams.

Both found by issue #8's latency benchmark at 1,000 events/s (bench/README.md has the runs).

* **How long the broker may hold a fetch.** faust-streaming 0.15 builds its aiokafka consumer with
  ``fetch_max_wait_ms=1500``, fixed. aiokafka keeps at most one fetch in flight per broker, and a
  fetch asks only for partitions whose last records have all been handed out. So when the events
  partitions still hold records at the moment a fetch goes out, it names only the forwarded
  (by-principal) partitions, and if none of those receive anything (a handful of principals leave
  some of them quiet for seconds) the broker holds it the full 1.5 s while new events wait behind
  it. Seen: the key stream idle 1.0-1.5 s at a time, every ~1.8 s, for the rest of the run once it
  began; records reaching the worker 1.2-1.9 s after the broker had acked them; in 5 of 11 runs.
  Here the broker holds a fetch at most ``fetch_wait_ms`` (20 by default).
* **How many writes may wait in the producer buffer** before Faust's conductor stops handing records
  to the streams. Faust's 100 suits tables written on every change; the worker writes its tables
  all at once, at commit, one record per bucket changed since the last (about 250 at 1,000 events/s
  here), and while those drained the conductor held every stream: records that arrived during a
  commit reached their agent up to ~100 ms late, the tail of the key-scoped finding latency. Here
  ``state_writes_buffered`` (20,000): a commit's writes queue while the streams go on. Offsets still
  wait for every one of them (Faust flushes its producer, buffer included, before it commits), and
  more than that many pending still stops the streams until they drain.

Both are set through Faust's own seams (the app's transport, its consumer thread and producer), on
objects Faust creates when the worker starts.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

DEFAULT_FETCH_WAIT_MS = 20
STATE_WRITES_BUFFERED = 20_000


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):  # type: ignore[misc]
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # the constructor's value, kept by aiokafka for the fetcher it builds at start; Faust
        # offers no setting for it
        consumer._fetch_max_wait_ms = getattr(self.app, "fetch_wait_ms", DEFAULT_FETCH_WAIT_MS)
        return consumer


class _Consumer(faust_aiokafka.Consumer):  # type: ignore[misc]
    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Producer(faust_aiokafka.Producer):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.buffer.max_messages = getattr(self.app, "state_writes_buffered", STATE_WRITES_BUFFERED)


class _Transport(faust_aiokafka.Transport):  # type: ignore[misc]
    Consumer = _Consumer
    Producer = _Producer


class App(faust.App):  # type: ignore[misc]
    """A Faust app with a bounded fetch wait and room for a commit's table writes."""

    def __init__(
        self,
        *args: Any,
        fetch_wait_ms: int = DEFAULT_FETCH_WAIT_MS,
        state_writes_buffered: int = STATE_WRITES_BUFFERED,
        **kwargs: Any,
    ) -> None:
        self.fetch_wait_ms = fetch_wait_ms
        self.state_writes_buffered = state_writes_buffered
        super().__init__(*args, **kwargs)

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)
