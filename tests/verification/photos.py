"""Real face photos from tests/data/faces, and distinct crops of them for repeated checks.

A check answered twice with the same image is a replay, so tests that pass several checks
use crops: the same person, a different picture (perceptual hashes 10+ bits apart).
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from PIL import Image

FACES = Path(__file__).resolve().parents[1] / "data" / "faces"


@cache
def photo(name: str) -> bytes:
    return (FACES / name).read_bytes()


def variant(name: str, number: int) -> bytes:
    """The photo cropped a little more at each number, as a new JPEG."""
    image = Image.open(io.BytesIO(photo(name))).convert("RGB")
    width, height = image.size
    step = int(min(width, height) * 0.06 * number)
    cropped = image.crop((step, step // 2, width - step // 3, height - step // 4))
    out = io.BytesIO()
    cropped.save(out, "JPEG", quality=90)
    return out.getvalue()
