"""kmo ingest: collectors read key-manager audit logs, normalise them into the one event contract
(:mod:`ingest.schema`) and produce them to Kafka."""
