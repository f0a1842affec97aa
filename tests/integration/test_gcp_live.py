"""The live GCP path: the real google-cloud-logging client against a local server that speaks the
Logging API's ``entries:list`` (REST), with the cursor (timestamp + insertIds) across runs."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import logging as gcl

from ingest.collect import collect_gcp_live
from ingest.schema import KeyOp, parse_timestamp
from kmo.settings import Settings
from kmo.topics import Topics
from tests.kafka_helpers import read_events

pytestmark = pytest.mark.integration
KEY = "projects/demo/locations/global/keyRings/ring/cryptoKeys/k1"


def entry(n: int, ts: str, method: str = "Decrypt", code: int = 0) -> dict:
    return {
        "logName": "projects/demo/logs/cloudaudit.googleapis.com%2Fdata_access",
        "resource": {"type": "cloudkms_cryptokey", "labels": {"project_id": "demo", "crypto_key_id": "k1"}},
        "timestamp": ts,
        "insertId": f"id-{n:04d}",
        "protoPayload": {
            "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
            "serviceName": "cloudkms.googleapis.com",
            "methodName": method,
            "resourceName": f"{KEY}/cryptoKeyVersions/3" if method != "Decrypt" else KEY,
            "authenticationInfo": {"principalEmail": "svc@demo.iam.gserviceaccount.com"},
            "requestMetadata": {"callerIp": "10.0.0.5", "callerSuppliedUserAgent": "grpc-go/1.60"},
            "status": {"code": code, "message": "denied"} if code else {},
        },
    }


class FakeLogging:
    """Just enough of logging.googleapis.com/v2/entries:list: filters by timestamp, pages, orders."""

    def __init__(self) -> None:
        self.entries: list[dict] = []
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                fake.requests.append(body)
                since = re.search(r'timestamp>="([^"]+)"', body.get("filter", ""))
                selected = [
                    e
                    for e in fake.entries
                    if not since or parse_timestamp(e["timestamp"]) >= parse_timestamp(since.group(1))
                ]
                selected.sort(key=lambda e: parse_timestamp(e["timestamp"]))
                start = int(body.get("pageToken") or 0)
                size = int(body.get("pageSize") or 1000)
                page = {"entries": selected[start : start + size]}
                if start + size < len(selected):
                    page["nextPageToken"] = str(start + size)  # never "" on the last page: the pager loops
                data = json.dumps(page).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def fake() -> Iterator[FakeLogging]:
    server = FakeLogging()
    yield server
    server.server.shutdown()


def test_live_listing_with_cursor(settings: Settings, fake: FakeLogging) -> None:
    client = gcl.Client(
        project="demo",
        credentials=AnonymousCredentials(),
        _use_grpc=False,
        client_options={"api_endpoint": fake.endpoint},
    )
    fake.entries = [entry(i, f"2026-12-01T10:00:{i:02d}.123456Z") for i in range(5)]
    fake.entries.append(entry(5, "2026-12-01T10:00:04.123456Z", "DestroyCryptoKeyVersion"))  # same ts as id-4
    since = parse_timestamp("2026-11-30T00:00:00Z")
    first = collect_gcp_live(settings, "demo", client=client, since=since)
    assert (first.events, first.dead_lettered, first.ok) == (6, 0, True)
    body = fake.requests[0]
    assert body["resourceNames"] == ["projects/demo"] and body["orderBy"] == "timestamp asc"
    assert 'protoPayload.serviceName="cloudkms.googleapis.com"' in body["filter"]
    assert 'timestamp>="2026-11-30T00:00:00.000000Z"' in body["filter"]

    # new entries, one sharing the last timestamp seen: only the new ones arrive
    fake.entries.append(entry(6, "2026-12-01T10:00:04.123456Z", "Decrypt", code=7))
    fake.entries.append(entry(7, "2026-12-01T11:00:00Z", "UpdateCryptoKeyPrimaryVersion"))
    second = collect_gcp_live(settings, "demo", client=client)
    assert second.events == 2
    assert 'timestamp>="2026-12-01T10:00:04.123456Z"' in fake.requests[-1]["filter"]
    third = collect_gcp_live(settings, "demo", client=client)
    assert third.events == 0

    events = read_events(settings.kafka_bootstrap, Topics.for_settings(settings).events.name)
    assert sorted(e.provider_event_id for e in events) == [f"id-{i:04d}" for i in range(8)]
    by_id = {e.provider_event_id: e for e in events}
    assert by_id["id-0005"].op is KeyOp.SCHEDULE_DESTROY and by_id["id-0005"].key_version == "3"
    assert by_id["id-0006"].error_code == "PERMISSION_DENIED" and not by_id["id-0006"].success
    assert by_id["id-0007"].op is KeyOp.ROTATE
    assert {e.key.uri for e in events} == {KEY} and {e.src_ip for e in events} == {"10.0.0.5"}


def test_an_unreachable_api_is_reported_and_the_cursor_stays(settings: Settings) -> None:
    client = gcl.Client(
        project="demo",
        credentials=AnonymousCredentials(),
        _use_grpc=False,
        client_options={"api_endpoint": "http://127.0.0.1:9"},
    )
    summary = collect_gcp_live(settings, "demo", client=client, since=parse_timestamp("2026-01-01T00:00:00Z"))
    assert not summary.ok and "gcp-logging://projects/demo" in summary.unreadable[0][0]
