"""The embedded single-node Apache Kafka broker (KRaft) kmo starts for the demo and the tests."""
