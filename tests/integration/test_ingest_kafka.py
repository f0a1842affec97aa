"""The CloudTrail collector against a real Kafka broker: events on their key's partition, re-runs produce
nothing new, bad input lands on the dead-letter topic with its exact bytes, crashes resume."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from ingest.collect import collect
from ingest.schema.batch import decode_events
from kmo.kafka import partition_for
from kmo.settings import Settings
from kmo.topics import Topics
from tests.conftest import FIXTURES, kmo_env
from tests.kafka_helpers import headers, read_all, read_events

pytestmark = pytest.mark.integration
KMO = [sys.executable, "-m", "kmo.cli"]


def test_corpus_file_becomes_events_on_their_keys_partitions(settings: Settings, corpus: Path) -> None:
    summary = collect(settings, "aws.cloudtrail", [str(corpus / "aws_cloudtrail_kms_awsdocs_examples.json")])
    assert (summary.records, summary.events, summary.skipped, summary.dead_lettered) == (62, 60, 2, 0)
    topics = Topics.for_settings(settings)
    records = read_all(settings.kafka_bootstrap, topics.events.name)
    assert len(records) < 60, "events travel several to a message (ingest.schema.batch)"
    partitions_by_key: dict[bytes, set[int]] = defaultdict(set)
    uids = []
    for rec in records:
        assert headers(rec)["kmo-source"] == "aws.cloudtrail"
        for event in decode_events(rec.value):
            assert rec.partition == partition_for(event.partition_key, topics.events.partitions)
            partitions_by_key[event.partition_key].add(rec.partition)
            uids.append(event.uid)
    assert len(uids) == len(set(uids)) == 60
    assert all(len(p) == 1 for p in partitions_by_key.values()), "one key's events must share a partition"
    assert read_all(settings.kafka_bootstrap, topics.dlq.name) == []


def test_a_second_run_over_the_same_input_produces_nothing(settings: Settings, corpus: Path) -> None:
    path = str(corpus / "aws_cloudtrail_kms_invictus_stratus_attack.json")
    first = collect(settings, "aws.cloudtrail", [path])
    second = collect(settings, "aws.cloudtrail", [path])
    assert first.events == 240 and (second.inputs_already_done, second.records, second.events) == (1, 0, 0)
    assert len(read_events(settings.kafka_bootstrap, Topics.for_settings(settings).events.name)) == 240


def _write_bad_inputs(root: Path) -> dict[str, bytes]:
    root.mkdir(parents=True)
    good = (FIXTURES / "cloudtrail" / "decrypt_assumed_role.json").read_bytes().strip()
    other = (FIXTURES / "cloudtrail" / "create_key_no_resources.json").read_bytes().strip()
    huge = json.loads(good)
    huge["requestParameters"]["encryptionContext"]["blob"] = "x" * (1_200_000)
    huge["eventID"] = "ffffffff-0000-4000-8000-00000000beef"
    huge_bytes = json.dumps(huge).encode()
    files = {
        "not_json.json": b"Time: 12/06/17 22:07:31\nOpcode: CN_LOGIN\n",
        "truncated.json.gz": gzip.compress(b'{"Records":[' + good + b"," + other + b"]}")[:-30],
        "mixed.json": b'{"Records":[' + good + b',{"eventName":"x"},{"a":"\xff\xfe"},' + other + b"]}",
        "huge.json": b'{"Records":[' + huge_bytes + b"," + other.replace(b"000000000002", b"000000000099") + b"]}",
        "vault.log": b'{"time":"2024-01-01T00:00:00Z","type":"request","request":{"path":"transit/encrypt/k"}}\n',
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


def test_bad_input_is_dead_lettered_with_exact_bytes_and_reasons(settings: Settings, tmp_path: Path) -> None:
    files = _write_bad_inputs(tmp_path / "bad")
    summary = collect(settings, "aws.cloudtrail", [str(tmp_path / "bad")])
    assert summary.records == summary.events + summary.skipped + summary.dead_lettered
    # truncated.json.gz: 1 event + the truncated tail; mixed: 2 events + 2 dead; huge: 1 event + 1 dead;
    # not_json: 1 dead; vault.log: 1 dead
    assert (summary.events, summary.dead_lettered) == (4, 6)
    unreadable = {name.rsplit("/", 1)[-1]: reason for name, reason in summary.unreadable}
    assert set(unreadable) == {"not_json.json", "vault.log"}
    assert "dead-letter" in unreadable["not_json.json"]

    letters = read_all(settings.kafka_bootstrap, Topics.for_settings(settings).dlq.name)
    by_file: dict[str, list] = defaultdict(list)
    for rec in letters:
        h = headers(rec)
        assert h["kmo-stage"] == "ingest" and h["kmo-source"] == "aws.cloudtrail" and h["kmo-reason"]
        by_file[h["kmo-origin"].split("#")[0].rsplit("/", 1)[-1]].append((rec, h))
    assert by_file["not_json.json"][0][0].value == files["not_json.json"]
    assert "not valid JSON" in by_file["not_json.json"][0][1]["kmo-reason"]
    mixed = sorted(by_file["mixed.json"], key=lambda x: x[1]["kmo-origin"])
    assert [m[0].value for m in mixed] == [b'{"eventName":"x"}', b'{"a":"\xff\xfe"}']
    assert "not a CloudTrail record" in mixed[0][1]["kmo-reason"] and "UTF-8" in mixed[1][1]["kmo-reason"]
    assert "truncated gzip" in by_file["truncated.json.gz"][0][1]["kmo-reason"]
    ((huge_rec, huge_h),) = by_file["huge.json"]
    assert "too large" in huge_h["kmo-reason"] and huge_rec.value == b""  # over 1 MiB: quarantined
    quarantined = Path(huge_h["kmo-quarantine"])
    assert quarantined.read_bytes() == files["huge.json"][len(b'{"Records":[') :].split(b',{"eventVersion"')[0]
    assert quarantined.stat().st_mode & 0o777 == 0o600


def test_cli_exit_codes_and_messages(settings: Settings, tmp_path: Path) -> None:
    env = kmo_env(settings)
    missing = subprocess.run(
        [*KMO, "ingest", "cloudtrail", str(tmp_path / "nope")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 1 and "no such file or directory" in missing.stderr
    (tmp_path / "bad.json").write_bytes(b"\x00\x01 not json")
    bad = subprocess.run(
        [*KMO, "ingest", "cloudtrail", "--json", str(tmp_path / "bad.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "bad.json" in bad.stderr and json.loads(bad.stdout)["dead_lettered"] == 1
    env.pop("KMO_KAFKA_BOOTSTRAP")
    no_broker = subprocess.run(
        [*KMO, "ingest", "cloudtrail", str(tmp_path / "bad.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert no_broker.returncode == 2 and "kmo broker start" in no_broker.stderr


def test_s3_prefix_through_moto_server(settings: Settings, corpus: Path) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        s3.create_bucket(Bucket="trail-bucket")
        base = "AWSLogs/123837392027/CloudTrail/us-east-1/2023/07/10"
        body = gzip.compress((corpus / "aws_cloudtrail_kms_invictus_stratus_attack.json").read_bytes())
        s3.put_object(
            Bucket="trail-bucket",
            Key=f"{base}/123837392027_CloudTrail_us-east-1_20230710T1200Z_a.json.gz",
            Body=body,
            ContentEncoding="gzip",
        )
        s3.put_object(
            Bucket="trail-bucket",
            Key=f"{base}/second.json",
            Body=(corpus / "aws_cloudtrail_kms_streamalert_tests.json").read_bytes(),
        )
        digest = "AWSLogs/123837392027/CloudTrail-Digest/us-east-1/2023/07/10/digest.json.gz"
        s3.put_object(Bucket="trail-bucket", Key=digest, Body=gzip.compress(b'{"digestStartTime":"x"}'))
        summary = collect(settings, "aws.cloudtrail", ["s3://trail-bucket/AWSLogs/"], s3_client=s3)
        assert (summary.inputs, summary.events, summary.skipped, summary.dead_lettered) == (2, 242, 377, 0)
        again = collect(settings, "aws.cloudtrail", ["s3://trail-bucket/AWSLogs/"], s3_client=s3)
        assert (again.inputs_already_done, again.events) == (2, 0)
        missing = collect(settings, "aws.cloudtrail", ["s3://no-such-bucket/AWSLogs/"], s3_client=s3)
        assert not missing.ok and "NoSuchBucket" in missing.unreadable[0][1]
    finally:
        server.stop()


def test_a_crash_mid_file_resumes_without_loss(settings: Settings, corpus: Path) -> None:
    path = str(corpus / "aws_cloudtrail_kms_invictus_stratus_attack.json")
    env = kmo_env(settings) | {"KMO_FAULT": "collector.before_checkpoint:2"}
    cmd = [*KMO, "ingest", "cloudtrail", "--no-progress", "--json", "--batch-records", "100", path]
    crashed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == 137 and "fault injected" in crashed.stderr
    topic = Topics.for_settings(settings).events.name
    after_crash = {e.uid for e in read_events(settings.kafka_bootstrap, topic)}
    assert 0 < len(after_crash) < 240, "the crash must land mid-file for this test to mean anything"
    env.pop("KMO_FAULT")
    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["records"] < 617, "the second run resumed from its checkpoint, not from the start"
    uids = [e.uid for e in read_events(settings.kafka_bootstrap, topic)]
    assert len(set(uids)) == 240  # nothing lost; copies of the last unsaved batch are deduplicated downstream
