"""Face-check speed, as ratios against a baseline measured in the same run.

Not a test: nothing is asserted. The paths compared take turns on the same inputs, so their
ratios travel between machines even where the absolute figures do not.

(a) Bursts. A check is what the browser's player sends (static/js/camera.js): 10 JPEG frames,
    640x480, quality 85, spread over 2 s, judged by ``faces.best_of_burst``. The frames are
    cut with the bundled ffmpeg from tests/data/media/short_hamilton_clip.mp4 (Lin-Manuel
    Miranda; from ``CLIP_START_S``, 4.5 frames/s, centre-cropped to 4:3 and scaled to
    640x480); without ffmpeg they are shifted copies of tests/data/faces/obama_1.jpg. A
    *genuine* burst is judged against a reference photo of the same person (the first frame
    matches, so one frame is encoded), an *impostor* burst against biden_1.jpg (no frame
    matches, so all ten are encoded). dlib and the default ONNX model take turns, one check at
    a time; the baseline is dlib.
(b) Engine concurrency. The default model judges bursts (genuine and impostor alternating)
    from 1, 2 and 4 threads of one process, all through ``faces._engine_lock``, and from a pool
    of 2 processes (spawn: each loads its own models, as a worker process would). Throughput
    is against 1 thread. This is the measurement behind "one lock per process; processes for
    parallelism".
(c) 1:N duplicate search. A ``ReferenceIndex`` filled with 10,000 and then 100,000 synthetic
    unit-norm references (``numpy.random.default_rng(0)``; 512 numbers for the default model,
    128 for dlib's distance); the probe is a near-copy of one of them, so exactly that one
    must come back ("found"). Against the old way: a Python loop calling ``model.score`` once
    per reference, over the first 10,000 references. At 100,000 the 512-number index is a
    205 MB float32 matrix, read whole by every search: memory bandwidth sets the time.

Knobs (whole numbers): ``BENCH_FACE_ROUNDS`` (default 5) rounds of (a);
``BENCH_FACE_PARALLEL_ROUNDS`` (2) rounds of (b), each of ``BENCH_FACE_PARALLEL_CHECKS`` (8)
checks per setting; ``BENCH_FACE_SEARCHES`` (20) timed searches per index size and
``BENCH_FACE_LOOPS`` (5) timed Python loops in (c). About 70 s on two cores.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repo's packages are not installed

from media_pipeline import face_models, faces, ffmpeg_bin  # noqa: E402
from media_pipeline.face_index import ReferenceIndex  # noqa: E402
from media_pipeline.face_models import Encoding, FaceModel  # noqa: E402

PHOTOS = ROOT / "tests" / "data" / "faces"
CLIP = ROOT / "tests" / "data" / "media" / "short_hamilton_clip.mp4"
# 5.4-7.4 s of the clip: one face, 104-149 px tall, in every frame.
CLIP_START_S = 5.4
CLIP_REFERENCE = "lin_manuel_miranda_1.jpg"
PHOTO_FRAMES = "obama_1.jpg"  # without ffmpeg
PHOTO_REFERENCE = "obama_2.jpg"
IMPOSTOR_REFERENCE = "biden_1.jpg"
FRAME_SIZE = (640, 480)
BURST_FRAMES = 10
BURST_SPAN_S = 2.0
JPEG_QUALITY = 85  # canvas.toBlob(..., "image/jpeg", 0.85)

MODELS = ("dlib", "default")  # the first is the baseline of (a)
PARALLEL_MODEL = "default"
THREADS = (1, 2, 4)
PROCESSES = 2
INDEX_SIZES = (10_000, 100_000)
LOOP_REFERENCES = 10_000
PLANTED_ID = 4_321  # the reference the probe is a near-copy of (within the first 10,000)
SEARCH_LIMIT = 10

Kind = Literal["genuine", "impostor"]
KINDS: tuple[Kind, ...] = ("genuine", "impostor")


def env_count(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdigit() or int(raw) < 1:
        sys.exit(f"{name} must be a positive whole number, not {raw!r}")
    return int(raw)


def p50_ms(seconds: Sequence[float]) -> float:
    return 1000 * statistics.median(seconds)


def ratio(value: float, baseline: float) -> str:
    if baseline <= 0:
        return "-"
    share = value / baseline
    return f"{share:.2f}x" if share >= 0.1 else f"{share:.3f}x"


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Burst:
    frames: list[bytes]
    source: str
    genuine_photo: str


def _jpeg(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def clip_frames() -> list[bytes]:
    """Ten frames 2 s apart end to end, as the player takes them, from the test clip."""
    width, height = FRAME_SIZE
    fps = (BURST_FRAMES - 1) / BURST_SPAN_S
    argv = [
        ffmpeg_bin.ffmpeg_path(),
        "-v",
        "error",
        "-ss",
        f"{CLIP_START_S}",
        "-i",
        str(CLIP),
        "-an",
        "-vf",
        f"fps={fps:g},crop=ih*4/3:ih,scale={width}:{height}",
        "-frames:v",
        str(BURST_FRAMES),
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-",
    ]
    raw = subprocess.run(argv, capture_output=True, timeout=60, check=True).stdout  # noqa: S603
    size = width * height * 3
    if len(raw) != size * BURST_FRAMES:
        raise RuntimeError(f"ffmpeg gave {len(raw)} bytes, not {BURST_FRAMES} frames")
    return [
        _jpeg(np.frombuffer(raw[i * size : (i + 1) * size], np.uint8).reshape(height, width, 3))
        for i in range(BURST_FRAMES)
    ]


def photo_frames() -> list[bytes]:
    """Without ffmpeg: the photo scaled into a 640x480 frame, a few pixels further each time."""
    width, height = FRAME_SIZE
    photo = Image.open(PHOTOS / PHOTO_FRAMES).convert("RGB")
    photo = photo.resize((round(photo.width * height / photo.height), height), Image.LANCZOS)
    frames = []
    for i in range(BURST_FRAMES):
        canvas = Image.new("RGB", FRAME_SIZE, (128, 128, 128))
        canvas.paste(photo, ((width - photo.width) // 2 - 27 + 6 * i, 0))
        frames.append(_jpeg(np.asarray(canvas)))
    return frames


def burst() -> Burst:
    try:
        frames = clip_frames()
    except (ffmpeg_bin.FFmpegNotFoundError, OSError, subprocess.SubprocessError, RuntimeError):
        return Burst(
            photo_frames(), f"shifted copies of {PHOTO_FRAMES} (no ffmpeg)", PHOTO_REFERENCE
        )
    return Burst(frames, f"{CLIP.name} from {CLIP_START_S:g} s", CLIP_REFERENCE)


def enrolled(model: FaceModel, photo: str) -> Encoding:
    rgb = faces.decode_image((PHOTOS / photo).read_bytes())
    encoding = faces.analyze(rgb, purpose="enrol", model=model).encoding
    assert encoding is not None
    return encoding


def references(model: FaceModel, genuine_photo: str) -> dict[Kind, Encoding]:
    return {
        "genuine": enrolled(model, genuine_photo),
        "impostor": enrolled(model, IMPOSTOR_REFERENCE),
    }


def judge(
    model: FaceModel, frames: Sequence[bytes], reference: Encoding
) -> tuple[float, faces.BurstResult]:
    assert model.defaults is not None
    started = time.perf_counter()
    result = faces.best_of_burst(frames, reference, model=model, threshold=model.defaults.match)
    return time.perf_counter() - started, result


def encoded(result: faces.BurstResult) -> int:
    return sum(frame.score is not None for frame in result.frames)


# --------------------------------------------------------------------------- (a) bursts


def bench_bursts(
    models: dict[str, FaceModel],
    frames: list[bytes],
    refs: dict[str, dict[Kind, Encoding]],
    rounds: int,
) -> list[str]:
    cases = [(name, kind) for name in models for kind in KINDS]
    spent: dict[tuple[str, Kind], list[float]] = {case: [] for case in cases}
    results: dict[tuple[str, Kind], faces.BurstResult] = {}
    for name, kind in cases:  # warm: first calls load and allocate
        judge(models[name], frames, refs[name][kind])
    for round_ in range(rounds):
        # dlib, default, default, dlib, ...: a machine speeding up or slowing down during the
        # run weighs on both alike.
        for name, kind in cases if round_ % 2 == 0 else list(reversed(cases)):
            seconds, results[name, kind] = judge(models[name], frames, refs[name][kind])
            spent[name, kind].append(seconds)

    base = MODELS[0]
    lines = [
        f"  {'model':<8} {'burst':<9} {'encoded':>7} {'result':<15} {'p50 ms':>7} "
        f"{'checks/s':>8} {'p50 vs ' + base:>12} {'checks/s vs ' + base:>17}"
    ]
    for kind in KINDS:
        base_p50 = p50_ms(spent[base, kind])
        base_rate = len(spent[base, kind]) / sum(spent[base, kind])
        for name in models:
            times, result = spent[name, kind], results[name, kind]
            rate = len(times) / sum(times)
            verdict = (
                f"{result.code} {result.score:.3f}" if result.score is not None else result.code
            )
            lines.append(
                f"  {name:<8} {kind:<9} {encoded(result):>4}/{len(result.frames):<2} "
                f"{verdict:<15} {p50_ms(times):>7.0f} {rate:>8.2f} "
                f"{ratio(p50_ms(times), base_p50):>12} {ratio(rate, base_rate):>17}"
            )
    return lines


def bench_steps(models: dict[str, FaceModel], frames: list[bytes]) -> str:
    """Where a frame's time goes: the shared detection and landmarks, then one model's embed."""
    rgb = faces.decode_image(frames[0])
    started = time.perf_counter()
    for _ in range(5):
        analysis = faces.analyze(faces.decode_image(frames[0]), purpose="check", model=None)
    shared_ms = (time.perf_counter() - started) * 200
    embed_ms = {}
    for name, model in models.items():
        repeats = 3 if model.name == face_models.DLIB else 20
        faces.encode(rgb, analysis, model)
        started = time.perf_counter()
        for _ in range(repeats):
            faces.encode(rgb, analysis, model)
        embed_ms[name] = (time.perf_counter() - started) * 1000 / repeats
    base = MODELS[0]
    embeds = ", ".join(f"{name} {ms:.1f} ms" for name, ms in embed_ms.items())
    return (
        f"  per frame: decode + HOG detection + 68 landmarks {shared_ms:.0f} ms (any model); "
        f"embed one face: {embeds} (default/{base} {ratio(embed_ms['default'], embed_ms[base])})"
    )


# --------------------------------------------------------------------------- (b) concurrency

_worker: dict[str, object] = {}


def _worker_start(
    model_name: str, frames: list[bytes], refs: dict[Kind, tuple[float, ...]], ready: Barrier
) -> None:
    """Load the models and warm them on both bursts, then wait until every worker is ready."""
    model = face_models.load(model_name)
    _worker.update(model=model, frames=frames, refs={k: np.array(v) for k, v in refs.items()})
    for kind in KINDS:
        _worker_judge(kind)
    ready.wait()


def _worker_judge(kind: Kind) -> float:
    model, frames, refs = _worker["model"], _worker["frames"], _worker["refs"]
    return judge(model, frames, refs[kind])[0]  # type: ignore[arg-type,index]


@dataclass
class Throughput:
    per_s: list[float]
    latencies: list[float]


def _timed_map(
    run: Callable[[list[Kind]], list[float]], tasks: list[Kind]
) -> tuple[float, list[float]]:
    started = time.perf_counter()
    latencies = run(tasks)
    return len(tasks) / (time.perf_counter() - started), latencies


def bench_concurrency(
    model: FaceModel, frames: list[bytes], refs: dict[Kind, Encoding], rounds: int, checks: int
) -> list[str]:
    tasks: list[Kind] = [KINDS[i % 2] for i in range(checks)]

    def one(kind: Kind) -> float:
        return judge(model, frames, refs[kind])[0]

    settings: dict[str, Callable[[list[Kind]], list[float]]] = {}
    executors = {n: ThreadPoolExecutor(n) for n in THREADS}
    for n, executor in executors.items():
        settings[f"{n} thread{'s' if n > 1 else ''}"] = lambda t, e=executor: list(e.map(one, t))
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(PROCESSES + 1)
    plain = {kind: tuple(float(x) for x in refs[kind]) for kind in KINDS}
    pool = context.Pool(PROCESSES, _worker_start, (PARALLEL_MODEL, frames, plain, ready))
    try:
        ready.wait(timeout=180)
        settings[f"{PROCESSES} processes"] = lambda t: pool.map(_worker_judge, t, chunksize=1)
        figures = {name: Throughput([], []) for name in settings}
        names = list(settings)
        for round_ in range(rounds):
            for name in names if round_ % 2 == 0 else list(reversed(names)):
                per_s, latencies = _timed_map(settings[name], tasks)
                figures[name].per_s.append(per_s)
                figures[name].latencies += latencies
    finally:
        pool.terminate()
        pool.join()
        for executor in executors.values():
            executor.shutdown()

    base = statistics.median(figures[names[0]].per_s)
    lines = [f"  {'setting':<12} {'checks/s':>8} {'vs 1 thread':>11} {'p50 ms per check':>17}"]
    for name in names:
        rate = statistics.median(figures[name].per_s)
        lines.append(
            f"  {name:<12} {rate:>8.2f} {ratio(rate, base):>11} "
            f"{p50_ms(figures[name].latencies):>17.0f}"
        )
    return lines


# --------------------------------------------------------------------------- (c) 1:N search


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def loop_search(
    model: FaceModel, refs: Sequence[Encoding], probe: Encoding, threshold: float
) -> list[int]:
    """The old way: one ``model.score`` per reference in a Python loop."""
    similar = model.metric == "similarity"
    hits = []
    for reference_id, reference in enumerate(refs, 1):
        score = model.score(probe, reference)
        if (score >= threshold) if similar else (score <= threshold):
            hits.append((score, reference_id))
    hits.sort(reverse=similar)
    return [reference_id for _, reference_id in hits[:SEARCH_LIMIT]]


def _median_s(call: Callable[[], object], times: int) -> tuple[float, object]:
    spent, answer = [], None
    for _ in range(times):
        started = time.perf_counter()
        answer = call()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent), answer


def _fill(
    index: ReferenceIndex, rng: np.random.Generator, start: int, stop: int, kept: list[Encoding]
) -> float:
    """Put references ``start + 1`` to ``stop`` into ``index`` (ids = user ids), keeping the
    first ``LOOP_REFERENCES`` in ``kept`` as well; seconds spent in ``put``."""
    spent = 0.0
    for first in range(start, stop, 10_000):
        block = _unit(rng.standard_normal((min(10_000, stop - first), index.model.size)))
        started = time.perf_counter()
        for offset, vector in enumerate(block):
            index.put(first + offset + 1, first + offset + 1, vector)
        spent += time.perf_counter() - started
        kept += list(block[: max(0, LOOP_REFERENCES - len(kept))])
    return spent


def bench_search(name: str, model: FaceModel, searches: int, loops: int) -> list[str]:
    assert model.defaults is not None
    threshold = model.defaults.duplicate
    rng = np.random.default_rng(0)
    index = ReferenceIndex(model)
    kept: list[Encoding] = []
    fill_s = _fill(index, rng, 0, LOOP_REFERENCES, kept)
    noise = _unit(np.random.default_rng(1).standard_normal(model.size))
    probe = _unit(kept[PLANTED_ID - 1] + 0.1 * noise)

    def search() -> list[int]:
        found = index.search(probe, threshold=threshold, exclude_user=0, limit=SEARCH_LIMIT)
        return [candidate.reference_id for candidate in found]

    loop_s, found = _median_s(lambda: loop_search(model, kept, probe, threshold), loops)
    rows: list[tuple[str, float | None, float, str]] = [
        (f"loop {LOOP_REFERENCES:,}", None, loop_s, _found(found))
    ]
    filled = LOOP_REFERENCES
    for size in INDEX_SIZES:
        fill_s += _fill(index, rng, filled, size, kept)
        filled = max(filled, size)
        seconds, found = _median_s(search, searches)
        rows.append((f"index {size:,}", fill_s, seconds, _found(found)))

    lines = []
    for label, fill, seconds, found in rows:
        versus = ratio(seconds, loop_s)
        if seconds < loop_s:
            versus += f" ({loop_s / seconds:,.0f}x faster)"
        fill_text = "-" if fill is None else f"{fill:.1f}"
        lines.append(
            f"  {name:<8} {model.size:>4} {model.metric:<10} {label:<14} {fill_text:>6} "
            f"{seconds * 1000:>9.2f} {found:>5}  {versus}"
        )
    return lines


def _found(ids: object) -> str:
    assert isinstance(ids, list)
    return "yes" if ids == [PLANTED_ID] else f"NO {ids[:3]}"


# --------------------------------------------------------------------------- main


def main() -> int:
    rounds = env_count("BENCH_FACE_ROUNDS", 5)
    parallel_rounds = env_count("BENCH_FACE_PARALLEL_ROUNDS", 2)
    parallel_checks = env_count("BENCH_FACE_PARALLEL_CHECKS", 8)
    searches = env_count("BENCH_FACE_SEARCHES", 20)
    loops = env_count("BENCH_FACE_LOOPS", 5)
    started = time.perf_counter()
    import cv2

    print(
        f"faces: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start, "
        f"OpenCV {cv2.__version__} with {cv2.getNumThreads()} threads",
        flush=True,
    )
    inputs = burst()
    models = {name: face_models.load(name) for name in MODELS}
    refs = {name: references(model, inputs.genuine_photo) for name, model in models.items()}
    width, height = FRAME_SIZE
    print(
        f"faces (a) one check = best_of_burst of {len(inputs.frames)} JPEG frames {width}x{height} "
        f"q{JPEG_QUALITY} ({inputs.source}, {BURST_SPAN_S:g} s); genuine vs "
        f"{inputs.genuine_photo}, impostor vs {IMPOSTOR_REFERENCE}; each model's own match "
        f"threshold; 1 process, 1 thread, {rounds} round(s) interleaved; baseline {MODELS[0]}",
        flush=True,
    )
    for line in bench_bursts(models, inputs.frames, refs, rounds):
        print(line, flush=True)
    print(bench_steps(models, inputs.frames), flush=True)

    print(
        f"faces (b) engine concurrency: {PARALLEL_MODEL} model, {parallel_checks} checks per "
        f"setting (genuine and impostor alternating) x {parallel_rounds} round(s), median; "
        f"threads share one process and its engine lock; processes (spawn) have one each",
        flush=True,
    )
    for line in bench_concurrency(
        models[PARALLEL_MODEL],
        inputs.frames,
        refs[PARALLEL_MODEL],
        parallel_rounds,
        parallel_checks,
    ):
        print(line, flush=True)

    print(
        f"faces (c) 1:N duplicate search: synthetic unit-norm references (default_rng(0)) and a "
        f"probe near reference {PLANTED_ID}, at the model's duplicate threshold, limit "
        f"{SEARCH_LIMIT}; median of {searches} searches (index) or {loops} (loop); "
        f"baseline = Python loop of model.score over {LOOP_REFERENCES:,} references",
        flush=True,
    )
    print(
        f"  {'model':<8} {'dim':>4} {'metric':<10} {'references':<14} {'fill s':>6} "
        f"{'search ms':>9} {'found':>5}  vs loop",
        flush=True,
    )
    for name in reversed(MODELS):
        for line in bench_search(name, models[name], searches, loops):
            print(line, flush=True)
    print(f"faces: {time.perf_counter() - started:.0f} s in all", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
