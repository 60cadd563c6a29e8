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
UNKNOWN_IMAGE = "application/octet-stream"
#: what :func:`image_mime` recognises, which is what the exports' ``tf.io.decode_image`` decodes
IMAGE_FORMATS = "JPEG, PNG, GIF, BMP or WebP"

# Colours come from JupyterLab's theme (light, dark, high contrast); the fallbacks are for
# nbconvert and GitHub. SVG text is ``currentColor``: the output area's font colour.
_MUTED = "color:var(--jp-ui-font-color2,#666)"
_BAR_FILL = "fill:var(--jp-brand-color1,#1976d2)"


def image_mime(data: bytes) -> str:
    """The MIME type from the file's magic bytes (what the browser needs for a data: URI);
    :data:`UNKNOWN_IMAGE` for anything else."""
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    signatures = {
        b"\x89PNG": "image/png",
        b"\xff\xd8\xff": "image/jpeg",
        b"GIF8": "image/gif",
        b"BM": "image/bmp",
    }
    return next((mime for magic, mime in signatures.items() if data.startswith(magic)), UNKNOWN_IMAGE)


def bar_fractions(scores: list[float]) -> tuple[list[float], str]:
    """Bar lengths in [0, 1] and what they show: probabilities as given, else a softmax of the shown scores."""
    if scores and all(0.0 <= s <= 1.0 for s in scores) and sum(scores) <= 1.0 + 1e-6:
        return list(scores), "probability"
    top = max(scores, default=0.0)
    exp = [math.exp(s - top) for s in scores]
    total = sum(exp) or 1.0
    return [e / total for e in exp], "softmax of the scores shown"


def top_table_html(top: list[tuple[str, float]]) -> str:
    """The ranked classes and scores as a table (one ``<tr><td>`` row per class).

    Unstyled on purpose: JupyterLab's rendered-HTML rules (``.jp-RenderedHTMLCommon table``) give
    it the theme's borders, stripes and colours, in an output and in ModelQuery alike."""
    rows = "".join(
        f"<tr><td>{rank}</td><td>{html.escape(cls)}</td><td style='text-align:right'>{score:.4f}</td></tr>"
        for rank, (cls, score) in enumerate(top, 1)
    )
    return (
        "<table class='kfj-top'><thead><tr><th>#</th><th>class</th><th style='text-align:right'>score</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def bars_svg(top: list[tuple[str, float]]) -> str:
    """A horizontal bar per class: labels in the text colour of the page, bars in the theme's brand colour."""
    fractions, meaning = bar_fractions([s for _, s in top])
    row_height = 22
    bars = "".join(
        f"<text x='0' y='{i * row_height + 15}' font-size='12' fill='currentColor'>{html.escape(_clip(cls))}</text>"
        f"<rect x='130' y='{i * row_height + 4}' width='{max(frac * BAR_WIDTH, 1):.1f}' height='14' style='{_BAR_FILL}'>"
        f"<title>{html.escape(cls)}: {score:.4f}</title></rect>"
        for i, ((cls, score), frac) in enumerate(zip(top, fractions, strict=True))
    )
    svg = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{130 + BAR_WIDTH + 10}' "
        f"height='{row_height * len(top) + 4}' role='img' aria-label='top classes'>{bars}</svg>"
    )
    return f"<div>{svg}<div style='font-size:10px;{_MUTED}'>bars: {meaning}</div></div>"


def prediction_html(name: str, image: bytes, top: list[tuple[str, float]]) -> str:
    """One image, its top classes and their bars: what ``%model predict`` and ModelQuery show."""
    src = f"data:{image_mime(image)};base64,{base64.b64encode(image).decode()}"
    return (
        "<div class='kfj-prediction' style='display:flex;gap:16px;align-items:flex-start;margin:6px 0'>"
        f"<figure style='margin:0'><img src='{src}' alt='{html.escape(name)}' "
        "style='max-width:160px;max-height:160px;image-rendering:pixelated'/>"
        f"<figcaption style='font-size:11px;{_MUTED}'>{html.escape(name)}</figcaption></figure>"
        f"{top_table_html(top)}{bars_svg(top)}</div>"
    )


def error_html(message: str) -> str:
    """A failed request, in the colours JupyterLab gives a cell's error output (light and dark)."""
    return (
        "<pre class='kfj-error' style='white-space:pre-wrap;margin:4px 0;padding:4px 8px;"
        "color:var(--jp-content-font-color1,#212121);background:var(--jp-rendermime-error-background,#fdd);"
        f"border-left:3px solid var(--jp-error-color1,#d32f2f)'>{html.escape(message)}</pre>"
    )


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
        return prediction_html(self.name, self.image, self.top)


def _clip(text: str, limit: int = 20) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def predictions_html(predictions: list[ImagePrediction]) -> str:
    return "".join(p._repr_html_() for p in predictions)
