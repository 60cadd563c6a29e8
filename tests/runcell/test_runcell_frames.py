"""Frames: the result envelope in a log, found among other output, checked, read back."""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
import random
import zlib
from collections import OrderedDict
from enum import IntEnum

import pytest

from kubeflow_jupyter.runcell import frames
from kubeflow_jupyter.runcell.frames import (
    CorruptFrame,
    FrameReader,
    decode_frames,
    encode_frames,
    error_envelope,
    filter_output,
    json_exact,
    result_envelope,
)


def big_envelope(size: int = 60_000) -> dict:
    rng = random.Random(7)
    noise = "".join(rng.choice("abcdefghij0123456789") for _ in range(size))  # compresses poorly enough
    return {"v": 1, "replica": "chief-0", "status": "ok", "encoding": "json", "value": {"noise": noise}}


def test_round_trip_in_many_short_lines():
    envelope = big_envelope()
    lines = encode_frames(envelope)
    assert len(lines) > 5
    assert all(len(line.encode()) < 4096 for line in lines)  # one atomic write each (PIPE_BUF)
    assert all(line.startswith("@@kfj-result v1 ") for line in lines)
    assert decode_frames(lines) == envelope


def test_frames_found_among_other_output_and_hidden_from_it():
    envelope = big_envelope(20_000)
    lines = encode_frames(envelope)
    log = ["epoch 1\n", "loss 0.3\n"]
    for i, line in enumerate(lines):
        log.append(line + "\n")
        log.append(f"tensorflow chatter {i}\n")
    log[2] = "no newline before it" + log[2]  # print(..., end="") just before the frame
    reader = FrameReader()
    visible = [v for v in (reader.feed(line) for line in log) if v is not None]
    assert reader.result() == envelope
    assert visible[:3] == ["epoch 1\n", "loss 0.3\n", "no newline before it\n"]
    assert all("@@kfj" not in v for v in visible) and len(visible) == 3 + len(lines)
    assert list(filter_output(log)) == visible


def test_a_log_prefix_before_each_line_is_tolerated():
    envelope = {"v": 1, "replica": "worker-0", "status": "ok", "encoding": "json", "value": [1, 2]}
    stamped = [f"2024-05-01T10:00:0{i}.000Z {line}\r\n" for i, line in enumerate(encode_frames(envelope))]
    assert decode_frames(stamped) == envelope


def test_no_frame_is_none():
    assert decode_frames(["hello\n", "@@kfj-result is mentioned here\n"]) is None


def test_corrupted_chunk_is_detected():
    lines = encode_frames(big_envelope())
    seq, _, chunk = lines[3].rpartition(" ")
    flipped = ("A" if chunk[10] != "A" else "B").join([chunk[:10], chunk[11:]])
    lines[3] = f"{seq} {flipped}"
    with pytest.raises(CorruptFrame, match="checksum mismatch"):
        decode_frames(lines)


def test_missing_lines_are_detected():
    lines = encode_frames(big_envelope())
    with pytest.raises(CorruptFrame, match="incomplete"):
        decode_frames(lines[:-1])
    with pytest.raises(CorruptFrame, match="incomplete"):
        decode_frames(lines[1:])  # header lost


def test_altered_header_and_wrong_counts_are_detected():
    lines = encode_frames({"v": 1, "status": "ok", "encoding": "json", "value": 1, "replica": "w"})
    with pytest.raises(CorruptFrame, match="unreadable header"):
        decode_frames([lines[0].replace("zlib:crc32:", "gzip:crc32:"), *lines[1:]])
    with pytest.raises(CorruptFrame, match="out of range"):
        decode_frames([line.replace(" 1/1 ", " 2/1 ") for line in lines])


def test_the_header_carries_the_crc32_of_the_compressed_bytes():
    envelope = {"v": 1, "status": "ok", "encoding": "json", "value": 1, "replica": "w"}
    header, *chunks = encode_frames(envelope, frame_id="0badcafe")
    blob = base64.b64decode("".join(line.rpartition(" ")[2] for line in chunks))
    assert header == f"@@kfj-result v1 0badcafe 0/1 zlib:crc32:{zlib.crc32(blob):08x}"
    assert json.loads(zlib.decompress(blob)) == envelope


def test_frames_of_earlier_versions_with_sha256_are_read_and_checked():
    envelope = {"v": 1, "status": "ok", "encoding": "json", "value": [1, "a"], "replica": "chief-0"}
    _, *chunks = encode_frames(envelope, frame_id="0badcafe")
    blob = base64.b64decode("".join(line.rpartition(" ")[2] for line in chunks))
    old_header = f"@@kfj-result v1 0badcafe 0/1 zlib:sha256:{hashlib.sha256(blob).hexdigest()}"
    assert decode_frames([old_header, *chunks]) == envelope
    wrong = old_header[:-1] + ("0" if old_header[-1] != "0" else "1")
    with pytest.raises(CorruptFrame, match="checksum mismatch"):
        decode_frames([wrong, *chunks])


def test_the_last_complete_frame_wins_and_a_cut_earlier_one_is_ignored():
    first = encode_frames({"v": 1, "status": "ok", "encoding": "json", "value": "first", "replica": "w"})
    second = encode_frames({"v": 1, "status": "ok", "encoding": "json", "value": "second", "replica": "w"})
    assert decode_frames(first + second)["value"] == "second"
    assert decode_frames(first[:1] + second)["value"] == "second"


def test_a_valid_frame_that_is_not_an_envelope_is_refused():
    with pytest.raises(CorruptFrame, match="not a result envelope"):
        decode_frames(encode_frames({"something": "else"}))


def test_zip_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(frames, "MAX_ENVELOPE_BYTES", 1000)
    with pytest.raises(CorruptFrame, match="unreadable"):
        decode_frames(encode_frames(big_envelope(5000)))


class Level(IntEnum):
    LOW = 1


@pytest.mark.parametrize(
    ("value", "exact"),
    [
        ({"a": [1, 2.5, None, True, "x", {"b": []}]}, True),
        (-0.0, True),
        (10**30, True),
        ((1, 2), False),
        ({1: "a"}, False),
        (float("nan"), False),
        (float("inf"), False),
        ({1, 2}, False),
        (Level.LOW, False),
        (OrderedDict(a=1), False),
        ([[[[]]]] * 3, True),
        (b"bytes", False),
    ],
)
def test_json_exact(value, exact):
    assert json_exact(value) is exact
    if exact:
        assert json.loads(json.dumps(value)) == value


def test_json_exact_gives_up_on_very_deep_values():
    deep: list = []
    for _ in range(500):
        deep = [deep]
    assert json_exact(deep) is False


def test_result_envelope_encodings():
    assert result_envelope("w", {"a": 1}) == {
        "v": 1,
        "replica": "w",
        "status": "ok",
        "type": "dict",
        "encoding": "json",
        "value": {"a": 1},
    }
    pickled = result_envelope("w", (1, 2))
    assert pickled["encoding"] == "pickle" and pickled["repr"] == "(1, 2)" and "pickle" in pickled["notice"]
    assert pickle.loads(base64.b64decode(pickled["value"])) == (1, 2)
    gen = result_envelope("w", (i for i in range(2)))
    assert gen["encoding"] == "repr" and gen["type"] == "generator" and "cannot be pickled" in gen["notice"]


def test_result_envelope_size_limit():
    assert result_envelope("w", "x" * 100, max_bytes=200)["status"] == "ok"
    too_big = result_envelope("chief-0", "x" * 300, max_bytes=200)
    assert too_big["status"] == "error" and too_big["error"]["origin"] == "runner"
    assert "write it to a file or a volume" in too_big["error"]["message"]
    assert result_envelope("w", {1, 2, 3}, max_bytes=10)["error"]["type"] == "ResultTooLarge"


def test_a_broken_repr_does_not_lose_the_result():
    class Broken:
        def __repr__(self):
            raise RuntimeError("no repr")

        def __reduce__(self):
            raise TypeError("no pickle")

    envelope = result_envelope("w", Broken())
    assert envelope["encoding"] == "repr" and "repr() failed" in envelope["value"]


def test_error_envelope_frames_round_trip():
    envelope = error_envelope("worker-1", "ValueError", "builtins", "boom", "Traceback...\nValueError: boom\n")
    assert decode_frames(encode_frames(envelope)) == envelope
