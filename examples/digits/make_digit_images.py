"""Write a few digits of scikit-learn's bundled dataset as PNG files to query the served model with.

python examples/digits/make_digit_images.py --output-dir digit-images --count 5
-> digit-images/digit-0-label-0.png, ... (64x64 grey, light ink on black, as in the dataset)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SCALE = 8  # 8x8 -> 64x64: big enough to see; the model's decoder resizes back to 8x8 exactly


def write_digit_images(output_dir: str | Path, count: int = 5, start: int = 1500) -> list[Path]:
    """PNG files of ``count`` digits from index ``start`` on (by default from the held-out part)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + count):
        pixels = np.round(digits.images[i] / 16.0 * 255).astype(np.uint8)
        big = np.kron(pixels, np.ones((SCALE, SCALE), dtype=np.uint8))
        path = out / f"digit-{i - start}-label-{digits.target[i]}.png"
        Image.fromarray(big, mode="L").save(path)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="digit-images")
    parser.add_argument("--count", type=int, default=5)
    parser.add_argument(
        "--start", type=int, default=1500, help="dataset index of the first digit (the trainer holds out 1500 on)"
    )
    args = parser.parse_args()
    for path in write_digit_images(args.output_dir, args.count, args.start):
        print(path)


if __name__ == "__main__":
    main()
