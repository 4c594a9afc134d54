"""Face-check speed: our fast path against face_recognition's default, in the same run.

Not a test: nothing is asserted; the two paths take turns on the same photos, so their ratio
travels between machines even where the absolute figures do not.

* fast: what a check does (``media_pipeline.faces``): ``decode_image`` (JPEG draft decoding,
  at most ``WORKING_MAX_SIDE``), ``analyze(purpose="check")`` (HOG without upsampling, retried
  with it only on small images; encoding and 68 landmarks), ``distance`` to a reference.
* default: face_recognition's README recipe: ``load_image_file`` at full size,
  ``face_locations`` with ``number_of_times_to_upsample=1``, ``face_encodings`` of every face
  found, ``face_distance`` to the reference.

Every photo in tests/data/faces is one check. Latency (p50/p95 of single checks) comes from
one process; throughput from one process and from a pool of ``PROCESSES`` processes, each
loading the model once before the clock starts (dlib holds the GIL: processes, not threads).
``BENCH_FACE_ROUNDS`` (default 3) passes over the photos per path and setting; about 30 s on
two cores.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repo's packages are not installed

from media_pipeline import faces  # noqa: E402  (also puts Pillow's truncated-image flag back)

PHOTOS = ROOT / "tests" / "data" / "faces"
REFERENCE = "obama_1.jpg"
PROCESSES = 2
Kind = Literal["fast", "default"]
PATHS: tuple[Kind, ...] = ("fast", "default")


def photos() -> list[tuple[str, bytes]]:
    return [
        (path.name, path.read_bytes())
        for path in sorted(PHOTOS.iterdir())
        if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp")
    ]


def reference_encoding() -> faces.Encoding:
    rgb = faces.decode_image((PHOTOS / REFERENCE).read_bytes())
    return faces.analyze(rgb, purpose="enrol").encoding


def check_fast(data: bytes, reference: faces.Encoding) -> None:
    try:
        analysis = faces.analyze(faces.decode_image(data), purpose="check")
    except faces.FaceError:
        return  # refusing (several faces, none) is a check's answer too
    faces.distance(analysis.encoding, reference)


def check_default(data: bytes, reference: faces.Encoding) -> None:
    import face_recognition

    rgb = face_recognition.load_image_file(io.BytesIO(data))
    boxes = face_recognition.face_locations(rgb, number_of_times_to_upsample=1)
    encodings = face_recognition.face_encodings(rgb, known_face_locations=boxes)
    if encodings:
        face_recognition.face_distance(encodings, reference)


CHECKS = {"fast": check_fast, "default": check_default}


def timed_checks(path: Kind, images: Sequence[bytes], reference: faces.Encoding) -> list[float]:
    """Seconds per check, one after the other."""
    check = CHECKS[path]
    spent = []
    for data in images:
        started = time.perf_counter()
        check(data, reference)
        spent.append(time.perf_counter() - started)
    return spent


# --------------------------------------------------------------------------- pool workers

_worker_reference: faces.Encoding | None = None
_worker_images: list[bytes] = []


def _worker_start(ready: Barrier) -> None:
    """Load the model and warm it on every photo, then wait until all workers are ready."""
    global _worker_reference, _worker_images
    _worker_images = [data for _, data in photos()]
    _worker_reference = reference_encoding()
    for path in PATHS:
        timed_checks(path, _worker_images[:1], _worker_reference)
    ready.wait()


def _worker_check(task: tuple[Kind, int]) -> float:
    path, index = task
    assert _worker_reference is not None
    return timed_checks(path, [_worker_images[index]], _worker_reference)[0]


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Figures:
    latencies_s: list[float]
    checks: int
    wall_s: float

    @property
    def per_s(self) -> float:
        return self.checks / self.wall_s

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        position = (len(ordered) - 1) * q
        low = int(position)
        high = min(low + 1, len(ordered) - 1)
        return 1000 * (ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def _order(rounds: int) -> list[Kind]:
    """fast, default, default, fast, ...: a machine speeding up or slowing down during the run
    weighs on both paths alike."""
    order: list[Kind] = []
    for round_ in range(rounds):
        order += list(PATHS) if round_ % 2 == 0 else list(reversed(PATHS))
    return order


def bench_one_process(images: Sequence[bytes], rounds: int) -> dict[Kind, Figures]:
    reference = reference_encoding()
    for path in PATHS:
        timed_checks(path, images[:1], reference)  # load and warm the models
    spent: dict[Kind, list[float]] = {path: [] for path in PATHS}
    walls: dict[Kind, float] = dict.fromkeys(PATHS, 0.0)
    for path in _order(rounds):
        started = time.perf_counter()
        spent[path] += timed_checks(path, images, reference)
        walls[path] += time.perf_counter() - started
    return {path: Figures(spent[path], len(spent[path]), walls[path]) for path in PATHS}


def bench_pool(count: int, rounds: int, processes: int) -> dict[Kind, Figures]:
    # spawn: each worker imports and loads the model itself, as a real worker process would,
    # rather than inheriting the parent's dlib state through fork.
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(processes + 1)
    spent: dict[Kind, list[float]] = {path: [] for path in PATHS}
    walls: dict[Kind, float] = dict.fromkeys(PATHS, 0.0)
    with context.Pool(processes, initializer=_worker_start, initargs=(ready,)) as pool:
        ready.wait(timeout=120)
        for path in _order(rounds):
            tasks = [(path, index) for index in range(count)]
            started = time.perf_counter()
            spent[path] += pool.map(_worker_check, tasks, chunksize=1)
            walls[path] += time.perf_counter() - started
    return {path: Figures(spent[path], len(spent[path]), walls[path]) for path in PATHS}


def rounds_from_env() -> int:
    raw = os.environ.get("BENCH_FACE_ROUNDS", "").strip() or "3"
    if not raw.isdigit() or int(raw) < 1:
        sys.exit(f"BENCH_FACE_ROUNDS must be a positive whole number, not {raw!r}")
    return int(raw)


def main() -> int:
    rounds = rounds_from_env()
    named = photos()
    images = [data for _, data in named]
    print(
        f"face checks: {len(images)} photos from tests/data/faces x {rounds} rounds per path "
        f"(reference {REFERENCE}); fast = decode_image + analyze(check) + distance, "
        f"default = face_recognition at full size, upsample 1; "
        f"load average {os.getloadavg()[0]:.1f} at start",
        flush=True,
    )
    single = bench_one_process(images, rounds)
    pooled = bench_pool(len(images), rounds, PROCESSES)
    for path in PATHS:
        one, many = single[path], pooled[path]
        print(
            f"face check {path:>7}: p50 {one.percentile_ms(0.5):4.0f} ms, "
            f"p95 {one.percentile_ms(0.95):4.0f} ms | {one.per_s:5.1f} checks/s in 1 process, "
            f"{many.per_s:5.1f} in {PROCESSES} ({many.per_s / one.per_s:.2f}x; "
            f"p50 {many.percentile_ms(0.5):.0f} ms there)",
            flush=True,
        )
    fast, default = single["fast"], single["default"]
    p50 = fast.percentile_ms(0.5) / default.percentile_ms(0.5)
    p95 = fast.percentile_ms(0.95) / default.percentile_ms(0.95)
    print(
        f"face check fast/default: p50 latency {p50:.2f}x, p95 {p95:.2f}x; throughput "
        f"{fast.per_s / default.per_s:.2f}x in 1 process, "
        f"{pooled['fast'].per_s / pooled['default'].per_s:.2f}x in {PROCESSES} "
        f"({os.cpu_count()} CPUs)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
