"""Inputs a file-based collector reads: local files (recursively) and S3 objects.

Each input has a stable identity for checkpoints: a local file is its real path, size and mtime
(an edited file is a new input); an S3 object is its bucket, key and ETag. CloudTrail's own digest
files (``CloudTrail-Digest/``) are integrity proofs, not records, and are skipped in directory and
prefix walks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

LOG_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".log", ".log.gz", ".gz")
_SKIP_PARTS = ("CloudTrail-Digest",)


class Input(Protocol):
    """Something with bytes to read and an identity to checkpoint."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    def read_bytes(self) -> bytes: ...


class InputError(Exception):
    """A whole input could not be listed or read; says which and why."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LocalInput:
    path: Path
    size: int
    mtime_ns: int

    @property
    def id(self) -> str:
        return f"file://{self.path}|{self.size}|{self.mtime_ns}"

    @property
    def name(self) -> str:
        return f"file://{self.path}"

    def read_bytes(self) -> bytes:
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise InputError(self.name, exc.strerror or str(exc)) from exc


@dataclass(frozen=True, slots=True)
class S3Input:
    client: Any  # boto3 S3 client
    bucket: str
    key: str
    etag: str
    size: int

    @property
    def id(self) -> str:
        return f"s3://{self.bucket}/{self.key}|{self.etag}"

    @property
    def name(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def read_bytes(self) -> bytes:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key)["Body"]
            return bytes(body.read())
        except Exception as exc:  # botocore raises many types; all mean "could not read this object"
            raise InputError(self.name, f"{type(exc).__name__}: {exc}") from exc


def _wanted(name: str) -> bool:
    return name.endswith(LOG_SUFFIXES) and not any(part in name for part in _SKIP_PARTS)


def local_inputs(path: str | Path) -> Iterator[LocalInput]:
    """A file, or every log file under a directory in sorted order (so runs are reproducible).

    Raises:
        InputError: when the path does not exist or cannot be listed.
    """
    root = Path(path).absolute()
    if root.is_file():
        st = root.stat()
        yield LocalInput(root, st.st_size, st.st_mtime_ns)
        return
    if not root.is_dir():
        raise InputError(f"file://{root}", "no such file or directory")
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=errors.append):
        dirnames.sort()
        for fname in sorted(filenames):
            full = Path(dirpath) / fname
            if _wanted(str(full)):
                try:
                    st = full.stat()
                except OSError as exc:
                    errors.append(exc)
                    continue
                yield LocalInput(full, st.st_size, st.st_mtime_ns)
    if errors:
        raise InputError(f"file://{root}", f"could not list part of the tree: {errors[0]}")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise InputError(uri, "not an s3:// uri")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise InputError(uri, "no bucket in the s3:// uri")
    return bucket, prefix


def s3_inputs(uri: str, client: Any) -> Iterator[S3Input]:
    """Every log object under an ``s3://bucket/prefix``, in key order (S3 lists keys sorted).

    Raises:
        InputError: when the bucket cannot be listed (missing, access denied, endpoint down).
    """
    bucket, prefix = parse_s3_uri(uri)
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                if _wanted(obj["Key"]):
                    yield S3Input(client, bucket, obj["Key"], obj.get("ETag", "").strip('"'), obj.get("Size", 0))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(uri, f"{type(exc).__name__}: {exc}") from exc
