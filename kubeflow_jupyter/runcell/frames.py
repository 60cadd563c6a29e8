"""The result channel: how a replica's result or error travels back in its log.

Standard library only and Python ≥ 3.8: this file is shipped to every replica beside the
runner (``_kfj/frames.py``), which runs in a plain TensorFlow image, and the notebook reads
the same format with it. So nothing here may import kubeflow_jupyter.

An *envelope* is a small JSON object::

    {"v": 1, "replica": "worker-1", "status": "ok",
     "encoding": "json" | "pickle" | "repr", "value": ..., "type": "builtins.dict",
     "notice": "...", "repr": "..."}                       # notice, repr: only when useful
    {"v": 1, "replica": "worker-1", "status": "error",
     "error": {"type": "ValueError", "module": "builtins", "message": "boom",
               "traceback": "Traceback ...", "origin": "user" | "runner"}}

It travels as *frames*: lines of the replica's stdout (so the notebook needs only the
pods/log permission it already has)::

    @@kfj-result v1 <id> 0/<n> zlib:crc32:<hex of the compressed bytes' CRC-32>
    @@kfj-result v1 <id> 1/<n> <base64 chunk>
    ...
    @@kfj-result v1 <id> <n>/<n> <base64 chunk>

The envelope's JSON is zlib-compressed, base64-encoded and cut in chunks of 4000 characters,
so each line stays under PIPE_BUF (4096 bytes): the runner writes each line with one
``write`` and other writers (threads, the stderr of the same process in a shared log file)
cannot split it; the 16 KiB line limit of container runtimes is far. The marker is searched
anywhere in a line, so output without a trailing newline before the frame, or a prefix added
by a log pipeline, does not hide it. The CRC-32 detects truncated or corrupted frames (lost
or altered lines, not a forger: whoever can write the log can write a valid frame); the header
names its algorithm, and ``zlib:sha256:<hex>``, what earlier versions wrote, is read too. The
random ``<id>`` tells apart the frames of two runs in one log (a restarted container), the
last complete one wins.
"""

import json
import os

# binascii, zlib, pickle, re: imported where used (startup cost on every replica; a replica
# that returns JSON needs no pickle). binascii, not base64 (which imports struct and re), and
# zlib's CRC-32, not hashlib (OpenSSL): the result replica loads them on its way out.

MARKER = "@@kfj-result"
VERSION = "v1"
#: base64 characters per line: a whole frame line (marker, id, counters) stays < 4096 bytes.
CHUNK_CHARS = 4000
#: The largest encoded value (JSON text or pickle bytes) a replica sends back.
MAX_RESULT_BYTES = 8 * 1024 * 1024
#: Guards the reader against absurd frames (8 MiB of pickle → ~3,800 lines).
MAX_CHUNKS = 8192
MAX_ENVELOPE_BYTES = 64 * 1024 * 1024
#: A repr is a last resort shown to a person: the first 100 KiB say enough.
MAX_REPR_CHARS = 100 * 1024
PICKLE_PROTOCOL = 4  # readable by every Python ≥ 3.4: the notebook's may differ from the image's

_FRAME_PATTERN = MARKER + r" v1 ([0-9a-f]{8}) (\d{1,6})/(\d{1,6}) ([A-Za-z0-9+/=:]*)\s*$"
_HEADER_PATTERN = r"zlib:(crc32:[0-9a-f]{8}|sha256:[0-9a-f]{64})$"


class CorruptFrame(ValueError):
    """A result frame was found in the log but cannot be read back (truncated or altered)."""


# --- value encoding ---------------------------------------------------------------------------

_JSON_SCALARS = (str, int, bool, type(None))


def json_exact(value, _depth: int = 0) -> bool:
    """True when ``json.loads(json.dumps(value))`` gives back an equal value *of the same types*.

    Tuples (come back as lists), non-str dict keys (come back as str), NaN/inf (not JSON),
    subclasses of int/str/dict/list (IntEnum, OrderedDict…) are not exact: they go by pickle."""
    if _depth > 200:
        return False
    kind = type(value)
    if kind in _JSON_SCALARS:
        return True
    if kind is float:
        return value - value == 0.0  # math.isfinite without importing math: inf - inf and nan - nan are nan
    if kind is list:
        return all(json_exact(item, _depth + 1) for item in value)
    if kind is dict:
        return all(type(k) is str and json_exact(v, _depth + 1) for k, v in value.items())
    return False


def checked_pickle(value) -> "tuple[bytes, list[str]]":
    """Pickle ``value``; also return the names of the ``__main__`` classes and functions it
    refers to by name: they pickle fine here and fail (or, worse, find another object of the
    same name) where they are unpickled, because ``__main__`` is another program there."""
    import io
    import pickle

    main_refs: list[str] = []

    class Pickler(pickle.Pickler):
        def reducer_override(self, obj):
            named = isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__"))
            if named and getattr(obj, "__module__", None) == "__main__":
                name = getattr(obj, "__qualname__", repr(obj))
                if name not in main_refs:
                    main_refs.append(name)
            return NotImplemented

    buffer = io.BytesIO()
    Pickler(buffer, protocol=PICKLE_PROTOCOL).dump(value)
    return buffer.getvalue(), main_refs


def type_name(value) -> str:
    kind = type(value)
    module = getattr(kind, "__module__", "") or ""
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def safe_repr(value) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not lose the run's outcome
        text = f"<{type_name(value)} object: repr() failed: {type(exc).__name__}: {exc}>"
    if len(text) > MAX_REPR_CHARS:
        text = text[:MAX_REPR_CHARS] + f"… ({len(text) - MAX_REPR_CHARS} more characters)"
    return text


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def result_envelope(replica: str, value, max_bytes: int = MAX_RESULT_BYTES) -> dict:
    """The envelope for a value: JSON when exact, else pickle, else its repr.

    Above ``max_bytes`` of encoded value, an error envelope (origin "runner") that says so."""
    envelope = {"v": 1, "replica": replica, "status": "ok", "type": type_name(value)}
    if json_exact(value):
        try:
            size = len(json.dumps(value, allow_nan=False).encode("utf-8"))
        except (TypeError, ValueError, RecursionError):
            size = -1
        if size >= 0:
            if size > max_bytes:
                return _too_large(replica, size, "JSON", max_bytes)
            envelope.update(encoding="json", value=value)
            return envelope
    try:
        data, main_refs = checked_pickle(value)
    except Exception as exc:
        why = f"{type(exc).__name__}: {exc}".splitlines()[0]
        envelope.update(
            encoding="repr",
            value=safe_repr(value),
            notice=f"the result ({envelope['type']}) cannot be pickled ({why}): you get its repr() as a string",
        )
        return envelope
    if main_refs:
        names = ", ".join(main_refs[:3])
        envelope.update(
            encoding="repr",
            value=safe_repr(value),
            notice=(
                f"the result ({envelope['type']}) uses {names} defined in the code that ran, which the notebook "
                "cannot import: you get its repr() as a string; define it in a module shipped with --files "
                "to get the object back"
            ),
        )
        return envelope
    if len(data) > max_bytes:
        return _too_large(replica, len(data), "pickle", max_bytes)
    import binascii

    envelope.update(
        encoding="pickle",
        value=binascii.b2a_base64(data, newline=False).decode("ascii"),
        notice=f"the result ({envelope['type']}) is not JSON: it came back by pickle",
        repr=safe_repr(value)[:2000],
    )
    return envelope


def _too_large(replica: str, size: int, encoding: str, max_bytes: int) -> dict:
    return error_envelope(
        replica,
        "ResultTooLarge",
        "kubeflow_jupyter.runcell",
        f"the result is {_mib(size)} as {encoding}, over the {_mib(max_bytes)} limit: write it to a file "
        "or a volume and return its path instead",
        origin="runner",
    )


def error_envelope(
    replica: str, type_name: str, module: str, message: str, traceback: str = "", origin: str = "user"
) -> dict:
    """``origin``: "user" for the user's exception, "runner" when the runner itself could not
    deliver (result too large, packages not installed)."""
    return {
        "v": 1,
        "replica": replica,
        "status": "error",
        "error": {"type": type_name, "module": module, "message": message, "traceback": traceback, "origin": origin},
    }


# --- framing ----------------------------------------------------------------------------------


def encode_frames(envelope: dict, frame_id: "str | None" = None) -> "list[str]":
    """The log lines (without newlines) that carry ``envelope``."""
    import binascii
    import zlib

    text = json.dumps(envelope, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    blob = zlib.compress(text.encode("ascii"), 6)
    encoded = binascii.b2a_base64(blob, newline=False).decode("ascii")
    chunks = [encoded[i : i + CHUNK_CHARS] for i in range(0, len(encoded), CHUNK_CHARS)]
    fid = frame_id or os.urandom(4).hex()
    total = len(chunks)
    lines = [f"{MARKER} {VERSION} {fid} 0/{total} zlib:{checksum(blob)}"]
    lines += [f"{MARKER} {VERSION} {fid} {seq}/{total} {chunk}" for seq, chunk in enumerate(chunks, 1)]
    return lines


def checksum(blob: bytes, algorithm: str = "crc32") -> str:
    """``<algorithm>:<hex digest>`` of the frame's compressed bytes."""
    if algorithm == "sha256":  # frames of earlier versions: the notebook reads them, never writes them
        import hashlib

        return "sha256:" + hashlib.sha256(blob).hexdigest()
    import zlib

    return f"crc32:{zlib.crc32(blob):08x}"


class _Partial:
    __slots__ = ("chunks", "digest", "total")

    def __init__(self, total: int):
        self.total = total
        self.digest: str | None = None
        self.chunks: dict[int, str] = {}


class FrameReader:
    """Reads frames out of log lines as they stream in.

    ``feed(line)`` returns what the user should see of that line: the line itself, the text
    before a frame on the same line, or None when the line is only a frame. ``envelope`` is
    the last complete, verified envelope so far; ``result()`` returns it at the end of the log,
    or raises :class:`CorruptFrame` when frames were seen but none could be read."""

    def __init__(self):
        import re

        self._frame = re.compile(_FRAME_PATTERN)
        self._header = re.compile(_HEADER_PATTERN)
        self.envelope: dict | None = None
        self.problems: list[str] = []
        self._partial: dict[str, _Partial] = {}
        self.frame_lines = 0

    def feed(self, line: str) -> "str | None":
        if MARKER not in line:
            return line
        match = self._frame.search(line)
        if match is None:
            return line
        self.frame_lines += 1
        self._take(match.group(1), int(match.group(2)), int(match.group(3)), match.group(4))
        before = line[: match.start()]
        if not before:
            return None
        return before + "\n" if line.endswith("\n") else before

    def _take(self, fid: str, seq: int, total: int, payload: str) -> None:
        if total < 1 or total > MAX_CHUNKS or seq > total:
            self.problems.append(f"result frame {fid}: chunk {seq}/{total} is out of range")
            return
        partial = self._partial.get(fid)
        if partial is None:
            partial = self._partial[fid] = _Partial(total)
        elif partial.total != total:
            self.problems.append(f"result frame {fid}: chunk counts disagree ({partial.total} and {total})")
            return
        if seq == 0:
            header = self._header.match(payload)
            if header is None:
                self.problems.append(f"result frame {fid}: unreadable header")
                return
            partial.digest = header.group(1)
        else:
            previous = partial.chunks.setdefault(seq, payload)
            if previous != payload:
                self.problems.append(f"result frame {fid}: chunk {seq} seen twice with different content")
                return
        if partial.digest is not None and len(partial.chunks) == partial.total:
            del self._partial[fid]
            self._complete(fid, partial)

    def _complete(self, fid: str, partial: _Partial) -> None:
        import base64
        import zlib

        encoded = "".join(partial.chunks[seq] for seq in range(1, partial.total + 1))
        try:
            blob = base64.b64decode(encoded, validate=True)
        except ValueError:
            self.problems.append(f"result frame {fid}: not base64")
            return
        if checksum(blob, partial.digest.partition(":")[0]) != partial.digest:
            self.problems.append(f"result frame {fid}: checksum mismatch (the log was altered or lines were lost)")
            return
        try:
            inflater = zlib.decompressobj()
            text = inflater.decompress(blob, MAX_ENVELOPE_BYTES)
            if inflater.unconsumed_tail:
                raise ValueError("envelope too large")
            envelope = json.loads(text.decode("ascii"))
        except (ValueError, zlib.error) as exc:
            self.problems.append(f"result frame {fid}: unreadable ({exc})")
            return
        if not isinstance(envelope, dict) or envelope.get("status") not in ("ok", "error"):
            self.problems.append(f"result frame {fid}: not a result envelope")
            return
        self.envelope = envelope

    def result(self) -> "dict | None":
        if self.envelope is not None:
            return self.envelope
        problems = list(self.problems)
        for fid, partial in self._partial.items():
            got = len(partial.chunks) + (partial.digest is not None)
            problems.append(f"result frame {fid}: incomplete, {got} of {partial.total + 1} lines (the log was cut?)")
        if problems:
            raise CorruptFrame("; ".join(problems))
        return None


def decode_frames(lines) -> "dict | None":
    """The envelope carried by these log lines; None when they hold no frame at all.

    Raises :class:`CorruptFrame` when frames are present but none is complete and intact."""
    reader = FrameReader()
    for line in lines:
        reader.feed(line)
    return reader.result()


def filter_output(lines):
    """The lines without their frames: what the user printed."""
    reader = FrameReader()
    for line in lines:
        visible = reader.feed(line)
        if visible is not None:
            yield visible
