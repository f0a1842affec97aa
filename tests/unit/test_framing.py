"""Framing: every record's exact text, and every unframeable stretch returned (never dropped)."""

from __future__ import annotations

import gzip

from ingest.framing import decode_bytes, frame_records


def frames(text: str):
    return [(f.index, f.text, f.error is None) for f in frame_records(text)]


def test_container_records_keep_their_exact_text() -> None:
    text = '{"Records":[ {"a": 1},\n  {"b" : [2, 3]} ]}'
    assert frames(text) == [(0, '{"a": 1}', True), (1, '{"b" : [2, 3]}', True)]


def test_container_keys_before_and_after_the_array() -> None:
    text = '{"meta": {"x": 1}, "Records": [{"a":1},{"b":2}], "more": [1]}'
    assert [t for _, t, _ in frames(text)] == ['{"a":1}', '{"b":2}']
    assert [t for _, t, _ in frames('{"Records":[{"a":1}],"tail":{"z":[]}}')] == ['{"a":1}']


def test_azure_style_lowercase_container() -> None:
    assert [t for _, t, _ in frames('{"records":[{"a":1}]}')] == ['{"a":1}']


def test_json_lines_and_concatenated_pretty_objects() -> None:
    assert frames('{"a":1}\n{"b":2}\n') == [(0, '{"a":1}', True), (1, '{"b":2}', True)]
    assert [t for _, t, _ in frames('{\n  "a": 1\n}\n{\n  "b": 2\n}')] == ['{\n  "a": 1\n}', '{\n  "b": 2\n}']


def test_a_bad_json_line_costs_one_line_only() -> None:
    got = frames('{"a":1}\n{"b": oops}\n{"c":3}\n')
    assert got[0] == (0, '{"a":1}', True)
    assert got[1][2] is False and "oops" in got[1][1]
    assert got[2] == (2, '{"c":3}', True)


def test_truncated_container_returns_the_tail_as_an_error_frame() -> None:
    got = list(frame_records('{"Records":[{"a":1},{"b":2},{"c":'))
    assert [f.text for f in got[:2]] == ['{"a":1}', '{"b":2}']
    assert got[2].error and got[2].text == ',{"c":'  # every byte after the last good record


def test_not_json_at_all_is_one_error_frame_holding_everything() -> None:
    got = list(frame_records("Time: 12/06/17 22:07:31\nOpcode: CN_LOGIN\n"))
    assert len(got) == 1 and got[0].error and got[0].text.startswith("Time:")


def test_empty_inputs() -> None:
    assert frames("") == [] and frames('{"Records":[]}') == [] and frames("  \n") == []


def test_invalid_utf8_is_flagged_per_record_and_bytes_survive() -> None:
    raw = b'{"Records":[{"a":"\xff\xfe"},{"b":"ok"}]}'
    got = list(frame_records(decode_bytes(raw).text))
    assert got[0].error and "UTF-8" in got[0].error and got[0].raw == b'{"a":"\xff\xfe"}'
    assert got[1].error is None


def test_gzip_is_detected_by_magic_and_concatenated_members_are_read() -> None:
    data = gzip.compress(b'{"a":1}\n') + gzip.compress(b'{"b":2}\n')
    decoded = decode_bytes(data)
    assert decoded.problem is None and frames(decoded.text) == [(0, '{"a":1}', True), (1, '{"b":2}', True)]


def test_truncated_gzip_yields_the_readable_prefix_and_says_so() -> None:
    data = gzip.compress(b'{"Records":[{"a":1},{"b":2},{"c":3}]}' * 1)
    decoded = decode_bytes(data[:-10])
    assert decoded.problem and "truncated" in decoded.problem
    assert decoded.text.startswith('{"Records":[{"a":1}')


def test_corrupt_gzip_keeps_the_undecodable_bytes() -> None:
    data = gzip.compress(b'{"a":1}')
    corrupt = data[:12] + b"\x00\x00\x00garbage" + data[20:]
    decoded = decode_bytes(corrupt)
    assert decoded.problem and decoded.tail


def test_byte_order_mark_is_ignored() -> None:
    assert frames(decode_bytes(b'\xef\xbb\xbf{"a":1}').text) == [(0, '{"a":1}', True)]
