"""How a classified image looks: the picture, a top-5 table and a bar chart (HTML/SVG), or plain text.

No plotting library: the bars are inline SVG, so the output renders anywhere
HTML does (JupyterLab, nbconvert, GitHub) and as text in a terminal.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass

BAR_WIDTH = 220


def image_mime(data: bytes) -> str:
    """The MIME type from the file's magic bytes (what the browser needs for a data: URI)."""
    signatures = {
        b"\x89PNG": "image/png",
        b"\xff\xd8\xff": "image/jpeg",
        b"GIF8": "image/gif",
        b"BM": "image/bmp",
        b"RIFF": "image/webp",
    }
    return next((mime for magic, mime in signatures.items() if data.startswith(magic)), "application/octet-stream")


def bar_fractions(scores: list[float]) -> tuple[list[float], str]:
    """Bar lengths in [0, 1] and what they show: probabilities as given, else a softmax of the shown scores."""
    if scores and all(0.0 <= s <= 1.0 for s in scores) and sum(scores) <= 1.0 + 1e-6:
        return list(scores), "probability"
    top = max(scores, default=0.0)
    exp = [math.exp(s - top) for s in scores]
    total = sum(exp) or 1.0
    return [e / total for e in exp], "softmax of the scores shown"


@dataclass
class ImagePrediction:
    """One image and its top classes, displayable inline."""

    name: str
    image: bytes
    top: list[tuple[str, float]]

    def __str__(self) -> str:
        width = max((len(c) for c, _ in self.top), default=5)
        lines = [f"{self.name}:"]
        lines += [f"  {rank}. {cls:<{width}}  {score:10.4f}" for rank, (cls, score) in enumerate(self.top, 1)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(str(self))

    def _repr_html_(self) -> str:
        fractions, meaning = bar_fractions([s for _, s in self.top])
        rows = "".join(
            f"<tr><td>{rank}</td><td>{html.escape(cls)}</td><td style='text-align:right'>{score:.4f}</td></tr>"
            for rank, (cls, score) in enumerate(self.top, 1)
        )
        row_height = 22
        bars = "".join(
            f"<text x='0' y='{i * row_height + 15}' font-size='12'>{html.escape(_clip(cls))}</text>"
            f"<rect x='130' y='{i * row_height + 4}' width='{max(frac * BAR_WIDTH, 1):.1f}' height='14' fill='#3b82f6'>"
            f"<title>{html.escape(cls)}: {score:.4f}</title></rect>"
            for i, ((cls, score), frac) in enumerate(zip(self.top, fractions, strict=True))
        )
        svg = (
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{130 + BAR_WIDTH + 10}' "
            f"height='{row_height * len(self.top) + 4}' role='img' aria-label='top classes'>{bars}</svg>"
        )
        src = f"data:{image_mime(self.image)};base64,{base64.b64encode(self.image).decode()}"
        return (
            "<div class='kfj-prediction' style='display:flex;gap:16px;align-items:flex-start;margin:6px 0'>"
            f"<figure style='margin:0'><img src='{src}' alt='{html.escape(self.name)}' "
            "style='max-width:160px;max-height:160px;image-rendering:pixelated'/>"
            f"<figcaption style='font-size:11px'>{html.escape(self.name)}</figcaption></figure>"
            "<table><thead><tr><th>#</th><th>class</th><th>score</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
            f"<div>{svg}<div style='font-size:10px;color:#666'>bars: {meaning}</div></div></div>"
        )


def _clip(text: str, limit: int = 20) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def predictions_html(predictions: list[ImagePrediction]) -> str:
    return "".join(p._repr_html_() for p in predictions)
