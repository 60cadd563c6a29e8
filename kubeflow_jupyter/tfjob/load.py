"""Safe YAML loading for untrusted manifests: size, alias and node budgets.

``yaml.safe_load`` alone builds no arbitrary objects, but an alias bomb
("billion laughs") or a deeply nested document can still make later code walk
billions of nodes or exhaust the stack. These limits make such input fail fast
with a clear error instead.
"""

from __future__ import annotations

import yaml

from ..errors import SpecError

#: TFJob manifests are a few KiB; the Kubernetes API rejects objects over ~1.5 MiB.
MAX_BYTES = 512 * 1024
MAX_ALIASES = 100
MAX_NODES = 100_000


class _BudgetLoader(yaml.SafeLoader):
    """SafeLoader that counts alias references while composing."""

    aliases_seen = 0

    def compose_node(self, parent, index):  # noqa: D401 - PyYAML hook
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen += 1
            if self.aliases_seen > MAX_ALIASES:
                raise SpecError(
                    f"the YAML uses more than {MAX_ALIASES} aliases (*refs); "
                    "write the manifest out without anchors and aliases"
                )
        return super().compose_node(parent, index)


def _check_node_budget(data) -> None:
    """Walk the loaded data (shared alias targets count every time they're reached)."""
    budget = MAX_NODES
    stack = [data]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            raise SpecError(
                f"the YAML expands to more than {MAX_NODES} values; "
                "a TFJob manifest is far smaller: check that this is the right file"
            )
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def load_yaml(text: str | bytes) -> object:
    """Parse one YAML document under the budgets; raise SpecError on any problem."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise SpecError(_too_large(len(text)))
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SpecError(f"the file is not UTF-8 text (byte {e.start}): a TFJob manifest is YAML text") from None
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise SpecError(_too_large(len(text)))
    if not text.strip():
        raise SpecError("empty input: expected a TFJob manifest (YAML with apiVersion, kind, metadata, spec)")
    loader = None
    try:
        loader = _BudgetLoader(text)
        docs = []
        while loader.check_data():
            docs.append(loader.get_data())
            if len(docs) > 1:
                raise SpecError(
                    "the YAML holds more than one document (---): submit one TFJob at a time"
                )
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
    _check_node_budget(docs[0])
    return docs[0]


def _too_large(size: int) -> str:
    return (
        f"the document is {size // 1024} KiB; a TFJob manifest must be under "
        f"{MAX_BYTES // 1024} KiB: check that this is the right file"
    )
