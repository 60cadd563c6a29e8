"""Read what an executed notebook's cells showed (for nbclient tests in any folder)."""

from __future__ import annotations


def text_of(cell) -> str:
    """Everything a cell showed: streams, plain-text results and displays, errors."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] in ("execute_result", "display_data"):
            parts.append(out["data"].get("text/plain", ""))
        elif out["output_type"] == "error":
            parts.append("\n".join(out["traceback"]))
    return "".join(parts)


def stderr_of(cell) -> str:
    return "".join(o["text"] for o in cell.get("outputs", []) if o.get("name") == "stderr")
