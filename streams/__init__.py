"""kmo streams: the embedded Kafka broker and (later) the Faust workers that turn events into findings."""
