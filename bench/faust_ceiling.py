"""The ceiling Faust itself puts on the worker: a Faust agent that does nothing, over 1.5 KB records.

    python bench/faust_ceiling.py [--records 60000] [--without-wait-first]

A fresh embedded broker; ``--records`` messages of 1,500 bytes on a 6-partition topic; then a Faust
app like ``kmo worker`` as it was when measured (memory store, raw bytes, ``stream.take(1000,
within=0.05)``; the worker's window is now 0.02 s and its fetch bounded) whose agent only counts.
Prints the records/s it was handed, from its first batch to its last.

``--without-wait-first`` replaces the consumer's per-message hand-off (faust-streaming 0.15.3,
``transport/consumer.py``, ``_drain_messages``: ``await self.wait_first(callback(message),
self.suspend_flow.wait())``, two tasks per message) with a direct ``await callback(message)``
while flow is not suspended. It is an experiment to size the cost of that line, not something the
worker does: the original guards against a deadlock at rebalance (faust-streaming issue #229).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import faust
import faust.transport.consumer as faust_consumer

from kmo.kafka import ensure_topics, make_producer
from kmo.settings import Settings
from kmo.topics import Topic
from streams.broker.embedded import EmbeddedKafka


async def _drain_without_wait_first(self: Any, fetcher: Any) -> None:
    """faust's _drain_messages, with the per-message wait_first only while flow is suspended."""
    callback, getmany = self.callback, self.getmany
    stopped, fetcher_stopped, suspended = self._stopped.is_set, fetcher._stopped.is_set, self.suspend_flow.is_set
    read_offset, set_read_offset = self._read_offset.__getitem__, self._read_offset.__setitem__
    since_yield = 0
    while not (stopped() or fetcher_stopped()):
        batch = getmany(timeout=1.0)
        await self.sleep(0)
        if self.should_stop:
            continue
        async for tp, message in batch:
            since_yield += 1
            if since_yield > 100:
                await asyncio.sleep(0)
                since_yield = 0
            last = read_offset(tp)
            if last is None or message.offset >= last:
                if suspended():
                    await self.wait_first(callback(message), self.suspend_flow.wait())
                else:
                    await callback(message)
                set_read_offset(tp, message.offset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--without-wait-first", action="store_true")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="kmo-faust-ceiling-"))
    broker = EmbeddedKafka(Settings.from_env(dict(os.environ, KMO_HOME=str(home))))
    bootstrap = broker.start()
    ensure_topics(bootstrap, [Topic("ceiling.events", 6)])
    producer = make_producer(bootstrap)
    for i in range(args.records):
        producer.send("ceiling.events", key=str(i % 300).encode(), value=b"x" * 1500)
    producer.flush()
    producer.close()
    if args.without_wait_first:
        faust_consumer.Consumer._drain_messages = _drain_without_wait_first
    app = faust.App(
        "ceiling", broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False, topic_partitions=6,
        datadir=str(home / "faust"), stream_buffer_maxsize=8192,
    )  # fmt: skip
    topic = app.topic("ceiling.events", key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    seen = {"n": 0, "first": 0.0}

    @app.agent(topic)
    async def count(stream: Any) -> None:
        async for batch in stream.take(1000, within=0.05):
            seen["first"] = seen["first"] or time.monotonic()
            seen["n"] += len(batch)
            if seen["n"] >= args.records:
                rate = args.records / (time.monotonic() - seen["first"])
                variant = "without wait_first" if args.without_wait_first else "as shipped"
                line = f'{{"faust_consumer_records_per_s": {rate:.0f}, "variant": "{variant}"}}\n'
                os.write(1, line.encode())  # Faust has replaced sys.stdout and sys.stderr with its logger
                broker.stop()
                os._exit(0)

    faust.Worker(app, loglevel="error", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
