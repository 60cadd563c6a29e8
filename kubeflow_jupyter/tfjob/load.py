"""Safe loading for untrusted manifests: size, alias, node and depth budgets.

``yaml.safe_load`` alone builds no arbitrary objects, but an alias bomb
("billion laughs") or a deeply nested document can still make later code walk
billions of nodes or exhaust the stack, and a huge file or a device (``/dev/zero``)
can exhaust memory before any parsing starts. These limits make such input fail
fast with a clear error instead:

- a file or stream is read up to ``MAX_BYTES`` + 1 bytes, never further
  (:func:`read_file`, :func:`read_stream`);
- YAML text is at most ``MAX_BYTES``; a manifest given as a dict is measured by its
  compact JSON (:func:`json_size`, what the local store writes) against the same limit,
  and so is the final manifest after ``--name``/``--command`` and the defaults
  (:func:`check_manifest_size`, called by ``parse_tfjob``);
- at most ``MAX_NODES`` values, ``MAX_DEPTH`` levels, ``MAX_ALIASES`` aliases.
"""

from __future__ import annotations

import json
import os
import stat
from typing import BinaryIO

import yaml

from ..errors import SpecError

#: TFJob manifests are a few KiB; the Kubernetes API rejects objects over ~1.5 MiB.
MAX_BYTES = 512 * 1024
MAX_ALIASES = 100
MAX_NODES = 100_000
#: A real manifest is ~15 levels deep (…containers[0].env[0].valueFrom.secretKeyRef.name).
MAX_DEPTH = 100

LIMIT_TEXT = f"{MAX_BYTES // 1024} KiB"


def read_file(path: str | os.PathLike) -> bytes:
    """The bytes of a manifest file, reading at most ``MAX_BYTES`` + 1 of them; SpecError otherwise.

    A directory or a device (``/dev/zero``) is refused before reading; a pipe
    (``<(cat job.yaml)``) is read like a file."""
    shown = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise SpecError(f"cannot read {shown}: it is a directory: give a TFJob YAML file")
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            raise SpecError(f"cannot read {shown}: it is not a regular file (a device?): give a TFJob YAML file")
        with open(path, "rb") as f:
            return read_stream(f, shown)
    except SpecError:
        raise
    except OSError as e:
        raise SpecError(f"cannot read {shown}: {e.strerror or e}") from None
    except ValueError as e:  # an embedded NUL, a name the file system cannot encode
        raise SpecError(f"cannot read {shown!r}: {e}") from None


def read_stream(stream: BinaryIO, what: str = "standard input") -> bytes:
    """At most ``MAX_BYTES`` bytes from a binary stream; more is refused without reading it."""
    data = stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise SpecError(
            f"{what} is larger than {LIMIT_TEXT}: a TFJob manifest must be under {LIMIT_TEXT}; "
            "check that this is the right file"
        )
    return data


def check_structure(data: object, what: str = "the manifest") -> None:
    """At most ``MAX_NODES`` values (shared alias targets count every time they're reached)
    and ``MAX_DEPTH`` levels: walked without recursion, so nothing deep can exhaust the stack."""
    budget = MAX_NODES
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise SpecError(
                f"{what} expands to more than {MAX_NODES} values; "
                "a TFJob manifest is far smaller: check that this is the right file"
            )
        if isinstance(node, (dict, list)):
            if depth > MAX_DEPTH:
                raise SpecError(f"{what} is nested too deeply (over {MAX_DEPTH} levels) to be a TFJob manifest")
            if isinstance(node, dict):
                stack.extend((key, depth + 1) for key in node)
                stack.extend((value, depth + 1) for value in node.values())
            else:
                stack.extend((item, depth + 1) for item in node)


def json_size(data: object) -> int:
    """Bytes of ``data`` as compact JSON (how the local store writes a manifest).

    Call :func:`check_structure` first: it bounds the depth this walks."""
    try:
        return len(json.dumps(data, separators=(",", ":"), default=str))
    except TypeError:  # keys that are not str/int/float/bool/None (YAML dates): measure the rest
        return len(json.dumps(data, separators=(",", ":"), default=str, skipkeys=True))
    except RecursionError:
        raise SpecError("the manifest is nested too deeply to be a TFJob manifest") from None
    except ValueError as e:  # a circular reference
        raise SpecError(f"the manifest cannot be written as JSON: {e}") from None


def check_manifest_size(data: object, what: str = "the manifest") -> None:
    """Refuse a manifest whose compact JSON is over ``MAX_BYTES``."""
    size = json_size(data)
    if size > MAX_BYTES:
        raise SpecError(
            f"{what} is {size:,} bytes as JSON; a TFJob manifest must be at most {LIMIT_TEXT} "
            f"({MAX_BYTES:,} bytes) with its command, args and env: check that this is the right file"
        )


def _kib(size: int) -> str:
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} bytes"


class _BudgetLoader(yaml.SafeLoader):
    """SafeLoader that counts alias references while composing."""

    aliases_seen = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen += 1
            if self.aliases_seen > MAX_ALIASES:
                raise SpecError(
                    f"the YAML uses more than {MAX_ALIASES} aliases (*refs); "
                    "write the manifest out without anchors and aliases"
                )
        return super().compose_node(parent, index)


def load_yaml(text: str | bytes) -> object:
    """Parse one YAML document under the budgets; raise SpecError on any problem."""
    if isinstance(text, (bytes, bytearray)):
        if len(text) > MAX_BYTES:
            raise SpecError(_too_large(len(text)))
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SpecError(f"the file is not UTF-8 text (byte {e.start}): a TFJob manifest is YAML text") from None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise SpecError(_too_large(size))
    if not text.strip():
        raise SpecError("empty input: expected a TFJob manifest (YAML with apiVersion, kind, metadata, spec)")
    loader = None
    try:
        loader = _BudgetLoader(text)
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
            if len(docs) > 1:
                raise SpecError("the YAML holds more than one document (---): submit one TFJob at a time")
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"YAML syntax error{where}: {e.problem or e}") from None
    except yaml.YAMLError as e:
        raise SpecError(f"YAML error: {e}") from None
    except RecursionError:
        raise SpecError("the YAML is nested too deeply to be a TFJob manifest") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not docs or docs[0] is None:
        raise SpecError("empty input: expected a TFJob manifest (YAML with apiVersion, kind, metadata, spec)")
    check_structure(docs[0], "the YAML")
    return docs[0]


def _too_large(size: int) -> str:
    return (
        f"the document is {_kib(size)}; a TFJob manifest must be under {LIMIT_TEXT}: check that this is the right file"
    )
