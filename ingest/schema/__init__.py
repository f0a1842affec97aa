"""The event contract: every kmo package imports its event types from here and nowhere else."""

from ingest.schema.codec import DecodeError, EncodeError, decode, encode
from ingest.schema.event import Actor, KeyEvent, event_uid
from ingest.schema.keyops import USAGE_OPS, KeyOp
from ingest.schema.keyref import KeyRef, KeyRefError, Provider
from ingest.schema.ocsf import OCSF_VERSION, EventClass, type_uid
from ingest.schema.timestamps import TimestampError, format_timestamp, parse_timestamp

__all__ = [
    "OCSF_VERSION",
    "USAGE_OPS",
    "Actor",
    "DecodeError",
    "EncodeError",
    "EventClass",
    "KeyEvent",
    "KeyOp",
    "KeyRef",
    "KeyRefError",
    "Provider",
    "TimestampError",
    "decode",
    "encode",
    "event_uid",
    "format_timestamp",
    "parse_timestamp",
    "type_uid",
]
