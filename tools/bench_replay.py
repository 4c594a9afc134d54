"""Replay detection, measured: what it costs per check as images pile up, and how well
``faces.same_picture`` tells a replayed copy from a new capture.

Not a test: nothing is asserted.

``bench_replay.py`` (what `make bench` runs): the time per check of finding replay candidates,
the stored images within ``NEAR_DUPLICATE_MAX_BITS`` of a burst's perceptual hashes, at
``BENCH_REPLAY_SIZES`` stored images (default 1,000, 100,000 and 1,000,000), through the index
on the hash's pieces (``verification.replay_candidates``) and by the pass over every stored hash
it replaced, as a ratio. Random 64-bit hashes, a burst of ``BURST`` frames each with near copies
stored; medians. On a temporary SQLite file, or on ``BENCH_DATABASE_URL`` (PostgreSQL: in a
schema of its own, ``bench_replay``, dropped afterwards).

``bench_replay.py pictures``: for each population, how many comparisons it holds, the range of
both measures of ``faces.picture_difference`` (residual, shift) and how many ``same_picture``
calls the same picture; the figures behind the ``SAME_PICTURE_*`` constants.

Material (tests/data only):

- Video: every third frame of tests/data/media/short_hamilton_clip.mp4 (10 a second), each
  encoded as JPEG quality 85 as the browser sends it. "Hits" are the pairs of frames 0.1-3 s
  apart whose dHashes are within ``NEAR_DUPLICATE_MAX_BITS``: the cases the hash alone would
  call a replay. Every frame of a hit is also copied as a replay would be (below) and changed
  as a new capture of the same scene would be: camera noise (sigma 3-8), a 1 % shift and
  brightness +10 %; shifts of 0.25-1 % alone; the middle third of the frame (the head) moved
  by 1-3 % of the width against the still rest; noise alone.
- Photos: tests/data/faces and tests/data/faces-east-asian, copied and changed the same way,
  and each compared with every other photo (the same person when the names match up to the
  last ``_N``).

Copies ("replays"): JPEG quality 30, 50, 70 and 95, PNG, WebP 80, brightness x0.95 and x1.05,
contrast x1.05, and rescaling by 0.5, 0.75, 1.5 and 2 with OpenCV (area, linear, cubic,
Lanczos, nearest) and Pillow (box, bilinear, bicubic, Lanczos, nearest), kept at the new size
or scaled back, then JPEG 85; halved and JPEG 30; and, for the record, cropped.

"want" says what ``same_picture`` claims for a row: "all" the same picture, "none" not; "-"
rows are reported without a claim (frames 0.1-0.2 s apart, moves of 0.25 %, a head moved 1 %,
noise alone, crops, OpenCV's nearest-neighbour rescaling: see ``same_picture``). The margin
line is over the claimed rows. About four minutes on two cores.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import sqlalchemy as sa
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repo's packages are not installed

from media_pipeline import faces  # noqa: E402
from media_pipeline.faces import RgbImage  # noqa: E402

BITS = faces.NEAR_DUPLICATE_MAX_BITS

CLIP = ROOT / "tests" / "data" / "media" / "short_hamilton_clip.mp4"
PHOTO_DIRS = (ROOT / "tests" / "data" / "faces", ROOT / "tests" / "data" / "faces-east-asian")
FRAME_STEP = 3  # of 29.97 frames a second: 10 a second
FRAME_RATE = 29.97 / FRAME_STEP
MAX_GAP_S = 3.0
PLAYER_JPEG_QUALITY = 85
# Photos the SOURCES.md says are one picture: rgba_32bit.png is obama_2 shrunk with Lanczos.
KNOWN_COPIES = {frozenset({"obama_2", "rgba_32bit"})}
# Whether same_picture should call it the same picture; None: reported, not claimed either way.
Expected = bool | None

_CV_FILTERS = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
    "nearest": cv2.INTER_NEAREST,
}
_PIL_FILTERS = {
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "nearest": Image.Resampling.NEAREST,
}
SCALES = (0.5, 0.75, 1.5, 2.0)


# --------------------------------------------------------------------------- changes


def round_trip(rgb: RgbImage, fmt: str = "JPEG", **options: object) -> RgbImage:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, fmt, **options)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def jpeg(rgb: RgbImage, quality: int = PLAYER_JPEG_QUALITY) -> RgbImage:
    return round_trip(rgb, "JPEG", quality=quality)


def light(rgb: RgbImage, gain: float, offset: float = 0.0, pivot: float = 0.0) -> RgbImage:
    out = (rgb.astype(np.float64) - pivot) * gain + pivot + offset
    return np.clip(out, 0, 255).round().astype(np.uint8)


def shifted(rgb: RgbImage, fraction: float) -> RgbImage:
    """The scene moved sideways by ``fraction`` of the width, as a camera moved would show it."""
    height, width = rgb.shape[:2]
    matrix = np.float32([[1, 0, fraction * width], [0, 1, 0]])
    return cv2.warpAffine(rgb, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


def head_moved(rgb: RgbImage, fraction: float) -> RgbImage:
    """The middle third of the frame (where a webcam shows the head) moved sideways by
    ``fraction`` of the width, blended into the still rest over 2 % of the width."""
    height, width = rgb.shape[:2]
    mask = np.zeros((height, width), np.float32)
    mask[height // 3 : 2 * height // 3, width // 3 : 2 * width // 3] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), 0.02 * width)[..., None]
    out = rgb * (1.0 - mask) + shifted(rgb, fraction) * mask
    return np.clip(out, 0, 255).round().astype(np.uint8)


def noisy(rgb: RgbImage, sigma: float, rng: np.random.Generator) -> RgbImage:
    out = rgb.astype(np.float64) + rng.normal(0.0, sigma, rgb.shape)
    return np.clip(out, 0, 255).round().astype(np.uint8)


def cv_resized(rgb: RgbImage, scale: float, interpolation: int, back: bool) -> RgbImage:
    height, width = rgb.shape[:2]
    size = (round(width * scale), round(height * scale))
    out = cv2.resize(rgb, size, interpolation=interpolation)
    return cv2.resize(out, (width, height), interpolation=interpolation) if back else out


def pil_resized(rgb: RgbImage, scale: float, resample: Image.Resampling, back: bool) -> RgbImage:
    height, width = rgb.shape[:2]
    picture = Image.fromarray(rgb).resize((round(width * scale), round(height * scale)), resample)
    if back:
        picture = picture.resize((width, height), resample)
    return np.asarray(picture)


def copies(rgb: RgbImage) -> Iterator[tuple[str, RgbImage]]:
    """(family, copy) for every replayed copy of ``rgb``."""
    for quality in (30, 50, 70, 95):
        yield "JPEG q30-95", jpeg(rgb, quality)
    yield "PNG, WebP 80", round_trip(rgb, "PNG")
    yield "PNG, WebP 80", round_trip(rgb, "WEBP", quality=80)
    yield "light x0.95/x1.05, contrast", jpeg(light(rgb, 1.05))
    yield "light x0.95/x1.05, contrast", jpeg(light(rgb, 0.95))
    yield "light x0.95/x1.05, contrast", jpeg(light(rgb, 1.05, 5.0, pivot=128.0))
    for scale, back in itertools.product(SCALES, (False, True)):
        for name, interpolation in _CV_FILTERS.items():
            family = "rescaled, OpenCV nearest" if name == "nearest" else "rescaled 0.5-2x"
            yield family, jpeg(cv_resized(rgb, scale, interpolation, back))
        for name, resample in _PIL_FILTERS.items():
            family = "rescaled, Pillow nearest" if name == "nearest" else "rescaled 0.5-2x"
            yield family, jpeg(pil_resized(rgb, scale, resample, back))
    yield "halved + JPEG q30", jpeg(cv_resized(rgb, 0.5, cv2.INTER_AREA, False), 30)
    yield "halved + JPEG q30", jpeg(pil_resized(rgb, 0.5, Image.Resampling.BILINEAR, False), 30)


def copy_expected(family: str) -> Expected:
    # OpenCV's INTER_NEAREST samples off-centre: its copies move by up to a pixel or two.
    return None if family == "rescaled, OpenCV nearest" else True


def new_captures(
    rgb: RgbImage, rng: np.random.Generator
) -> Iterator[tuple[str, Expected, RgbImage]]:
    """The same scene captured again, and how far a camera must move to be told apart."""
    for sigma in (3.0, 5.0, 8.0):
        changed = light(shifted(noisy(rgb, sigma, rng), 0.01), 1.10)
        yield "noise 3-8 + shift 1 % + light x1.1", False, jpeg(changed)
    yield "shift 0.25 % only", None, jpeg(shifted(rgb, 0.0025))
    yield "shift 0.5 % only", False, jpeg(shifted(rgb, 0.005))
    yield "shift 1 % only", False, jpeg(shifted(rgb, 0.01))
    yield "head moved 1 %", None, jpeg(head_moved(rgb, 0.01))
    yield "head moved 2 %", False, jpeg(head_moved(rgb, 0.02))
    yield "head moved 3 %", False, jpeg(head_moved(rgb, 0.03))
    # Fresh noise alone is averaged away by the sample, as it is by any copy's rescaling.
    yield "noise sigma 8 only", None, jpeg(noisy(rgb, 8.0, rng))


def crops(rgb: RgbImage) -> Iterator[tuple[str, RgbImage]]:
    """Cropped copies: not claimed either way. Cutting 1 % off one side moves the picture as a
    camera moved by 0.5 % would."""
    height, width = rgb.shape[:2]
    for pixels in (1, 2):
        inner = rgb[pixels:-pixels, pixels:-pixels]
        yield f"crop {pixels} px a side, kept", jpeg(inner)
        scaled = cv2.resize(inner, (width, height), interpolation=cv2.INTER_AREA)
        yield f"crop {pixels} px a side, scaled back", jpeg(scaled)
    yield "crop 1 % off one side", jpeg(rgb[:, round(0.01 * width) :])


# --------------------------------------------------------------------------- material


def clip_frames() -> list[RgbImage]:
    capture = cv2.VideoCapture(str(CLIP))
    if not capture.isOpened():
        sys.exit(f"OpenCV cannot read {CLIP}")
    frames: list[RgbImage] = []
    index = 0
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        if index % FRAME_STEP == 0:
            frames.append(jpeg(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        index += 1
    capture.release()
    return frames


def hash_hits(frames: list[RgbImage]) -> list[tuple[int, int]]:
    hashes = [faces.near_duplicate_hash(frame) for frame in frames]
    max_gap = round(MAX_GAP_S * FRAME_RATE)
    return [
        (first, second)
        for first in range(len(frames))
        for second in range(first + 1, min(len(frames), first + max_gap + 1))
        if faces.is_near_duplicate(hashes[first], hashes[second])
    ]


def photos() -> dict[str, RgbImage]:
    paths = sorted(
        path
        for folder in PHOTO_DIRS
        for path in folder.iterdir()
        if path.suffix in {".jpg", ".png"}
    )
    return {path.stem: np.asarray(Image.open(path).convert("RGB")) for path in paths}


def person(stem: str) -> str:
    return stem.rsplit("_", 1)[0]


# --------------------------------------------------------------------------- table


def score(difference: faces.PictureDifference) -> float:
    """Both measures against their limits in one figure: 1 or less is the same picture."""
    return max(
        difference.residual / faces.SAME_PICTURE_MAX_RESIDUAL,
        difference.shift / faces.SAME_PICTURE_MAX_SHIFT,
    )


@dataclass
class Population:
    title: str
    expected_same: Expected
    residuals: list[float] = field(default_factory=list)
    shifts: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    same: int = 0

    def add(self, a: RgbImage, b: RgbImage) -> None:
        difference = faces.picture_difference(a, b)
        self.residuals.append(difference.residual)
        self.shifts.append(difference.shift)
        self.scores.append(score(difference))
        self.same += faces.same_picture(a, b)


class Table:
    def __init__(self) -> None:
        self.rows: dict[str, Population] = {}

    def add(self, title: str, expected_same: Expected, a: RgbImage, b: RgbImage) -> None:
        if title not in self.rows:
            self.rows[title] = Population(title, expected_same)
        self.rows[title].add(a, b)

    def print(self) -> None:
        header = (
            f"{'population':44s} {'n':>5s} {'residual':>13s} {'shift %':>13s} "
            f"{'score':>13s} {'same':>5s} want"
        )
        print(header)
        print("-" * len(header))
        for row in self.rows.values():
            want = {True: "all", False: "none", None: "-"}[row.expected_same]
            print(
                f"{row.title:44s} {len(row.scores):5d} "
                f"{min(row.residuals):6.3f}-{max(row.residuals):6.3f} "
                f"{100 * min(row.shifts):6.3f}-{100 * max(row.shifts):6.3f} "
                f"{min(row.scores):6.2f}-{max(row.scores):6.2f} {row.same:5d} {want}"
            )
        same = [row for row in self.rows.values() if row.expected_same]
        apart = [row for row in self.rows.values() if row.expected_same is False]
        worst_copy = max(max(row.scores) for row in same)
        closest_new = min(min(row.scores) for row in apart)
        print(
            f"\nlimits: residual {faces.SAME_PICTURE_MAX_RESIDUAL:g}, shift "
            f"{100 * faces.SAME_PICTURE_MAX_SHIFT:g} %; score = the larger of residual and shift "
            "over its limit, 1 or less is the same picture"
        )
        print(
            f"margin: copies (want all) score at most {worst_copy:.2f}, new pictures (want none) "
            f"at least {closest_new:.2f}: {closest_new / worst_copy:.1f}x apart"
        )
        wrong_new = sum(len(row.scores) - row.same for row in same)
        wrong_same = sum(row.same for row in apart)
        print(f"copies judged new: {wrong_new}; new pictures judged the same: {wrong_same}")


def pictures() -> int:
    """The `same_picture` table (``bench_replay.py pictures``)."""
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    table = Table()

    frames = clip_frames()
    hits = hash_hits(frames)
    print(
        f"{CLIP.name}: {len(frames)} frames at {FRAME_RATE:.2f}/s; "
        f"{len(hits)} pairs 0.1-{MAX_GAP_S:g} s apart within {faces.NEAR_DUPLICATE_MAX_BITS} bits"
    )
    for first, second in hits:
        gap_s = (second - first) / FRAME_RATE
        # A tenth or two of a second apart a still scene's frames can differ less than a copy.
        if gap_s < 0.25:
            title, expected = "video: hit frames 0.1-0.2 s apart", None
        elif gap_s < 0.55:
            title, expected = "video: hit frames 0.3-0.5 s apart", False
        else:
            title, expected = "video: hit frames 0.6-3 s apart", False
        table.add(title, expected, frames[first], frames[second])
    for index in sorted(set(itertools.chain.from_iterable(hits))):
        frame = frames[index]
        for family, copy in copies(frame):
            table.add(f"video copy: {family}", copy_expected(family), frame, copy)
        for family, expected, picture in new_captures(frame, rng):
            table.add(f"video new: {family}", expected, frame, picture)
        for family, picture in crops(frame):
            table.add(f"video copy: {family}", None, frame, picture)

    pictures = photos()
    print(f"photos: {len(pictures)} in {', '.join(str(d.relative_to(ROOT)) for d in PHOTO_DIRS)}")
    for rgb in pictures.values():
        for family, copy in copies(rgb):
            table.add(f"photo copy: {family}", copy_expected(family), rgb, copy)
        for family, expected, picture in new_captures(rgb, rng):
            table.add(f"photo new: {family}", expected, rgb, picture)
    for (first, a), (second, b) in itertools.combinations(pictures.items(), 2):
        if frozenset({first, second}) in KNOWN_COPIES:
            table.add("photo: obama_2 vs rgba_32bit (its copy)", True, a, b)
        elif person(first) == person(second):
            table.add("photo: same person, other photo", False, a, b)
        else:
            table.add("photo: other person", False, a, b)

    print()
    table.print()
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


# --------------------------------------------------------------------------- index

BURST = 10  # frames a check's answer holds, each hash looked up
NEAR_PER_FRAME = 3  # stored images near each frame of the probe burst (found by both ways)
DEFAULT_SIZES = "1000,100000,1000000"
INSERT_BATCH = 20_000
INDEX_RUNS = 15
SCAN_RUNS = 3
BENCH_SCHEMA = "bench_replay"


def sizes() -> list[int]:
    raw = os.environ.get("BENCH_REPLAY_SIZES", "").strip() or DEFAULT_SIZES
    try:
        found = sorted(int(part) for part in raw.split(","))
    except ValueError:
        sys.exit(f"BENCH_REPLAY_SIZES must be numbers separated by commas, not {raw!r}")
    if not found or found[0] < BURST * (NEAR_PER_FRAME + 1):
        sys.exit(f"BENCH_REPLAY_SIZES: at least {BURST * (NEAR_PER_FRAME + 1)} images each")
    return found


@contextlib.contextmanager
def bench_database(tmp: Path) -> Iterator[str]:
    """A database URL with the schema in it: a temporary SQLite file, or BENCH_DATABASE_URL
    with a schema of its own (PostgreSQL), dropped afterwards."""
    url = os.environ.get("BENCH_DATABASE_URL", "").strip()
    if not url:
        yield f"sqlite:///{tmp / 'replay.db'}"
        return
    import psycopg

    plain = re.sub(r"^postgresql\+psycopg://", "postgresql://", url)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{BENCH_SCHEMA}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{BENCH_SCHEMA}"')
    try:
        driver = re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", plain)
        yield f"{driver}{'&' if '?' in driver else '?'}options=-csearch_path%3D{BENCH_SCHEMA}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{BENCH_SCHEMA}" CASCADE')


def fill(app: Any, owner: int, numbers: range, rng: random.Random, near: list[int]) -> None:
    """Stored images ``numbers`` of ``owner``: random hashes, the first near the probe burst."""
    from app.extensions import db
    from app.verification.models import Evidence, dhash_chunks

    table = Evidence.__table__
    now = datetime.now(UTC)
    later = now + timedelta(days=1)
    with app.app_context():
        for first in range(numbers.start, numbers.stop, INSERT_BATCH):
            rows = []
            for n in range(first, min(numbers.stop, first + INSERT_BATCH)):
                value = near[n] if n < len(near) else rng.getrandbits(64)
                chunks = dhash_chunks(value)
                rows.append(
                    {
                        "user_id": owner,
                        "kind": "snapshot",
                        "key": f"faces/1/{n}.jpg",
                        "content_type": "image/jpeg",
                        "sha256": f"{n:064x}",
                        "dhash": f"{value:016x}",
                        **{f"dhash_{i}": chunk for i, chunk in enumerate(chunks)},
                        "captured_at": now,
                        "purge_after": later,
                    }
                )
            db.session.execute(table.insert(), rows)
            db.session.commit()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("ANALYZE evidence"))
            db.session.commit()


def full_scan(hashes: list[int]) -> int:
    """The pass over every stored hash that `replay_candidates` replaced (as it was)."""
    from app.extensions import db
    from app.verification.models import Evidence

    earlier = sa.or_(Evidence.check_id.is_(None), Evidence.check_id != 0)
    stored = db.session.execute(
        sa.select(Evidence.key, Evidence.dhash).where(
            Evidence.dhash.is_not(None), Evidence.key.is_not(None), earlier
        )
    )
    found = 0
    for _key, value in stored:
        if [h for h in hashes if faces.is_near_duplicate(h, int(value, 16))]:
            found += 1
    return found


def indexed(hashes: list[int]) -> int:
    from app.verification import service as verification
    from app.verification.models import Evidence

    earlier = sa.or_(Evidence.check_id.is_(None), Evidence.check_id != 0)
    return len(verification.replay_candidates(hashes, earlier=earlier))


def median_ms(work: Any, hashes: list[int], runs: int) -> tuple[float, int]:
    times, found = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        found = work(hashes)
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times), found


def bench_index() -> Iterator[str]:
    """Time per check through the index and by the full scan, at each size, a line each."""
    from app import create_app
    from app.extensions import db

    rng = random.Random(1)  # noqa: S311 - reproducible hashes, not crypto
    burst = [rng.getrandbits(64) for _ in range(BURST)]
    near = [
        value ^ sum(1 << bit for bit in rng.sample(range(64), rng.randint(0, BITS)))
        for value in burst
        for _ in range(NEAR_PER_FRAME)
    ]
    yield (
        f"replay candidates per check ({BURST} frames, {len(near)} near copies stored, random "
        f"hashes, within {BITS} bits): index vs full scan, median of {INDEX_RUNS} / {SCAN_RUNS}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="veriskill-bench-replay-"))
    try:
        with bench_database(tmp) as url:
            app = create_app(overrides={"SQLALCHEMY_DATABASE_URI": url})
            with app.test_request_context():
                from app.identity import service as identity
                from app.identity.models import Role

                db.create_all()
                owner = identity.create_staff(Role.AUDITOR, "bench-replay", "BenchReplay2026ok")
                db.session.commit()
                owner_id = owner.id
            stored = 0
            for size in sizes():
                fill(app, owner_id, range(stored, size), rng, near)
                stored = size
                with app.app_context():
                    index_ms, hits = median_ms(indexed, burst, INDEX_RUNS)
                    scan_ms, scanned = median_ms(full_scan, burst, SCAN_RUNS)
                    db.session.rollback()
                if hits != scanned:
                    yield f"  MISMATCH at {size:,}: index found {hits}, scan {scanned}"
                yield (
                    f"  {size:>9,} stored: index {index_ms:8.2f} ms | full scan "
                    f"{scan_ms:9.1f} ms | {scan_ms / index_ms:7.1f}x faster ({hits} candidates)"
                )
            with app.app_context():
                db.engine.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["pictures"]:
        return pictures()
    if args:
        sys.exit("usage: bench_replay.py [pictures]")
    for line in bench_index():
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
