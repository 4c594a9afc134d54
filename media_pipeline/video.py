"""Video steps for the workers: probe, transcode to HLS, poster frame, captions, demo clips.

Everything here is pure: paths and values in, files and dataclasses out; no Flask, no database.
ffmpeg and ffprobe come from ``media_pipeline.ffmpeg_bin``; every run has a hard timeout and
failures raise ``VideoError`` with a stable ``code`` the app can show or translate.

HLS output is MPEG-TS segments (``.ts``): the widest player support (Safari, hls.js, old
Android and TV sets), each segment plays on its own, and no init segment to keep in sync.
"""

from __future__ import annotations

import glob
import json
import math
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, Literal

import ffmpeg

from media_pipeline.ffmpeg_bin import (
    FFmpegNotFoundError,
    available_filters,
    ffmpeg_path,
    ffprobe_path,
)
from media_pipeline.limits import MAX_CAPTION_BYTES

__all__ = [
    "DEFAULT_LADDER",
    "FFmpegNotFoundError",
    "HlsResult",
    "ProbeResult",
    "Rendition",
    "RenditionPlan",
    "SubtitleTrack",
    "VideoError",
    "VideoErrorCode",
    "add_subtitles_to_master",
    "captions_to_webvtt",
    "default_transcode_timeout_s",
    "ffmpeg_path",
    "ffprobe_path",
    "make_poster",
    "make_test_pattern",
    "plan_renditions",
    "probe",
    "subtitle_playlist",
    "transcode_hls",
]

VideoErrorCode = Literal[
    "not_a_video",
    "no_video_stream",
    "unsupported_codec",
    "truncated",
    "no_duration",
    "too_long",
    "timeout",
    "transcode_failed",
    "poster_failed",
    "invalid_captions",
]

DEFAULT_LADDER: Final = (360, 540, 720)
PROBE_TIMEOUT_S: Final = 60.0
POSTER_TIMEOUT_S: Final = 60.0
TEST_PATTERN_TIMEOUT_S: Final = 120.0
MASTER_PLAYLIST: Final = "master.m3u8"
RENDITION_PLAYLIST: Final = "index.m3u8"
SUBTITLE_GROUP: Final = "subs"

# Demuxers an upload may be read with. Anything else (image2, tty, hls, concat, ...) is refused
# before ffmpeg parses it: playlist-like demuxers would make ffmpeg open other local files.
_ALLOWED_DEMUXERS: Final = (
    "mov,matroska,webm,avi,flv,mpegts,mpeg,asf,ogg,mxf,dv,mp3,wav,flac,aac,w64"
)
# A decode of the last seconds catches files whose index promises more data than is there.
_TAIL_CHECK_S: Final = 1.5
_STDERR_TAIL_LINES: Final = 30
_MAX_OUTPUT_FPS: Final = 30.0
_FRAME_RATE_SLACK: Final = 1.0
_POLL_S: Final = 0.25
_MPEGTS_CLOCK_HZ: Final = 90_000


class VideoError(Exception):
    """A video step failed for a reason the caller can act on; ``code`` is stable."""

    def __init__(self, code: VideoErrorCode, message: str, line: int | None = None) -> None:
        # All in args, so the error survives pickling by job queues.
        super().__init__(code, message, line)
        self.code: VideoErrorCode = code
        self.message = message
        # The line of an input file at fault (captions), counted from 1.
        self.line = line

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What ffprobe found. ``width``/``height`` are the display size (rotation and SAR applied)."""

    duration_s: float
    width: int
    height: int
    video_codec: str
    has_audio: bool
    format_name: str
    size_bytes: int
    frame_rate: float | None
    video_stream_index: int
    audio_stream_index: int | None


@dataclass(frozen=True, slots=True)
class RenditionPlan:
    """One rung of the ladder for a given source: ``name`` is the short side, e.g. ``360p``."""

    name: str
    width: int
    height: int
    video_kbps: int
    audio_kbps: int


@dataclass(frozen=True, slots=True)
class Rendition:
    """One variant of a finished HLS output; paths are relative to the output folder."""

    name: str
    width: int
    height: int
    bandwidth: int
    average_bandwidth: int | None
    codecs: str
    playlist: str
    segments: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HlsResult:
    """A finished HLS output: master playlist, renditions, segments (relative paths)."""

    out_dir: Path
    master_playlist: Path
    renditions: tuple[Rendition, ...]
    segments: tuple[str, ...]
    duration_s: float
    # First presentation timestamp of the MPEG-TS segments (90 kHz clock); WebVTT files
    # need it in X-TIMESTAMP-MAP or Safari shows captions shifted by ~1.4 s.
    mpegts_start_pts: int


@dataclass(frozen=True, slots=True)
class SubtitleTrack:
    """A captions track for the master playlist; ``uri`` points at its subtitle playlist."""

    language: str
    name: str
    uri: str
    default: bool = False
    autoselect: bool = True


# --------------------------------------------------------------------------- probe


def probe(
    path: str | os.PathLike[str],
    *,
    max_duration_s: float | None = None,
    timeout_s: float = PROBE_TIMEOUT_S,
) -> ProbeResult:
    """Check by content that ``path`` is a playable video and describe it.

    Raises ``VideoError`` with code ``not_a_video``, ``no_video_stream``, ``unsupported_codec``
    (this ffmpeg build cannot decode it), ``truncated``, ``no_duration``, ``too_long`` or
    ``timeout``; ``FileNotFoundError`` if there is no file.
    """
    source = Path(path)
    size_bytes = source.stat().st_size
    if not source.is_file():
        raise VideoError("not_a_video", "not a regular file")
    if size_bytes == 0:
        raise VideoError("not_a_video", "the file is empty")
    deadline = time.monotonic() + timeout_s

    with _content_only_path(source) as probe_path:
        data = _ffprobe_json(probe_path, deadline=deadline, source=source)
        info = _describe(data, size_bytes)
        if max_duration_s is not None and info.duration_s > max_duration_s:
            raise VideoError(
                "too_long",
                f"the video lasts {info.duration_s:.0f} s, more than the {max_duration_s:.0f} s "
                "allowed",
            )
        _check_tail_decodes(probe_path, info, deadline=deadline)
    return info


@contextmanager
def _content_only_path(source: Path) -> Iterator[Path]:
    """A link to ``source`` without a file extension, so ffmpeg must detect the format by
    content: a text file named ``.mp3`` or ``.txt`` then gets no extension-based guess."""
    with tempfile.TemporaryDirectory(prefix="probe-") as tmp:
        link = Path(tmp) / "input"
        try:
            link.symlink_to(source.resolve())
        except OSError:  # no symlinks here: extension hints are the lesser evil
            yield source
        else:
            yield link


def _ffprobe_json(probe_path: Path, *, deadline: float, source: Path) -> dict[str, Any]:
    args = [
        ffprobe_path(),
        "-hide_banner",
        "-v",
        "error",
        *_input_guards(),
        "-show_format",
        "-show_streams",
        "-of",
        "json",
        str(probe_path),
    ]
    try:
        completed = subprocess.run(  # noqa: S603 - argument list, no shell
            args,
            capture_output=True,
            timeout=_remaining(deadline),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise VideoError("timeout", "reading the video took too long") from exc
    stderr = completed.stderr.decode("utf-8", "replace")
    if completed.returncode != 0:
        raise _classify_unreadable(source, stderr)
    try:
        data = json.loads(completed.stdout)
    except ValueError as exc:
        raise VideoError("not_a_video", "ffprobe gave no readable description") from exc
    if not isinstance(data, dict):
        raise VideoError("not_a_video", "ffprobe gave no readable description")
    return data


def _input_guards() -> list[str]:
    return ["-protocol_whitelist", "file", "-format_whitelist", _ALLOWED_DEMUXERS]


def _classify_unreadable(source: Path, stderr: str) -> VideoError:
    if "moov atom not found" in stderr or _looks_like_iso_bmff(source):
        # An MP4/MOV whose index is missing: typically an upload cut off before the end.
        return VideoError("truncated", "the video file is incomplete (its index is missing)")
    match = re.search(r"\[([\w,]+) @ [^\]]*\] Format not on whitelist", stderr)
    if match:
        return VideoError("not_a_video", f"not a video container (detected {match[1]})")
    return VideoError("not_a_video", "the file is not a video")


def _looks_like_iso_bmff(source: Path) -> bool:
    """Starts with an MP4/MOV ``ftyp`` box of a plausible size."""
    with source.open("rb") as handle:
        head = handle.read(8)
    return len(head) == 8 and head[4:8] == b"ftyp" and 8 <= int.from_bytes(head[:4], "big") <= 4096


def _describe(data: dict[str, Any], size_bytes: int) -> ProbeResult:
    fmt: dict[str, Any] = data.get("format") or {}
    streams: list[dict[str, Any]] = data.get("streams") or []
    format_name = str(fmt.get("format_name", ""))

    def is_cover_art(stream: dict[str, Any]) -> bool:
        return bool((stream.get("disposition") or {}).get("attached_pic"))

    videos = [s for s in streams if s.get("codec_type") == "video" and not is_cover_art(s)]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if not videos:
        if audios:
            raise VideoError("no_video_stream", "the file has sound but no picture")
        raise VideoError("not_a_video", "the file has no video or audio stream")
    video = videos[0]
    if str(video.get("nb_frames", "")) == "1":
        raise VideoError("not_a_video", "the file holds a single still image")

    width, height = _display_size(video)
    if width <= 0 or height <= 0:
        raise VideoError("not_a_video", "the video stream has no picture size")

    duration_s = _positive_float(fmt.get("duration")) or _positive_float(video.get("duration"))
    if duration_s is None:
        raise VideoError(
            "no_duration", "the file does not say how long it is (a live-stream recording?)"
        )
    return ProbeResult(
        duration_s=duration_s,
        width=width,
        height=height,
        video_codec=str(video.get("codec_name", "unknown")),
        has_audio=bool(audios),
        format_name=format_name,
        size_bytes=size_bytes,
        frame_rate=_frame_rate(video),
        video_stream_index=int(video.get("index", 0)),
        audio_stream_index=int(audios[0].get("index", 0)) if audios else None,
    )


def _display_size(video: dict[str, Any]) -> tuple[int, int]:
    width = int(video.get("width") or 0)
    height = int(video.get("height") or 0)
    sar = _ratio(video.get("sample_aspect_ratio"))
    if sar is not None and sar > 0 and not math.isclose(sar, 1.0):
        width = round(width * sar)
    if _rotation_deg(video) % 180 == 90:
        width, height = height, width
    return width, height


def _rotation_deg(video: dict[str, Any]) -> int:
    for side_data in video.get("side_data_list") or []:
        if isinstance(side_data, dict) and "rotation" in side_data:
            return round(float(side_data["rotation"])) % 360
    rotate = (video.get("tags") or {}).get("rotate")  # older ffprobe builds
    return round(float(rotate)) % 360 if rotate is not None else 0


def _frame_rate(video: dict[str, Any]) -> float | None:
    for key in ("avg_frame_rate", "r_frame_rate"):
        rate = _ratio(video.get(key))
        if rate is not None and rate > 0:
            return rate
    return None


def _ratio(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    numerator, sep, denominator = value.replace(":", "/").partition("/")
    try:
        top = float(numerator)
        bottom = float(denominator) if sep else 1.0
    except ValueError:
        return None
    return top / bottom if bottom else None


def _positive_float(value: object) -> float | None:
    if not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def _check_tail_decodes(probe_path: Path, info: ProbeResult, *, deadline: float) -> None:
    """Decode the last moments: an index that points past the end of the data means the
    upload was cut off, even though ffprobe is happy with the header."""
    seek_s = max(0.0, info.duration_s - _TAIL_CHECK_S)
    source_input = ffmpeg.input(str(probe_path), ss=f"{seek_s:.3f}", **_input_kwargs(info))
    streams = [source_input[str(info.video_stream_index)]]
    if info.audio_stream_index is not None:
        streams.append(source_input[str(info.audio_stream_index)])
    spec = ffmpeg.output(*streams, "-", f="null")
    try:
        last = _run_ffmpeg(
            spec, deadline=deadline, failure_code="unsupported_codec", what="decoding the video"
        )
    except VideoError as exc:
        if exc.code != "unsupported_codec":
            raise
        # Damaged data is concealed by the decoders; a failing decoder means this build
        # cannot decode the codec at all (e.g. AV1 without libdav1d).
        raise VideoError(
            "unsupported_codec",
            f"this server cannot decode {info.video_codec} video; please export as H.264",
        ) from exc
    # Either picture or sound decoding near the end is enough: some recordings stop the
    # picture a little before the sound.
    if _int_or_zero(last.get("frame")) == 0 and _int_or_zero(last.get("out_time_us")) <= 0:
        raise VideoError("truncated", "the end of the video is missing (upload cut off?)")


def _input_kwargs(info: ProbeResult) -> dict[str, str]:
    # Pin the demuxer probe() chose so a later run cannot be steered to another one.
    return {
        "f": info.format_name.split(",")[0],
        "protocol_whitelist": "file",
        "format_whitelist": _ALLOWED_DEMUXERS,
    }


def _int_or_zero(value: str | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


# --------------------------------------------------------------------------- running ffmpeg


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise VideoError("timeout", "the time allowed for this step ran out")
    return remaining


def _run_ffmpeg(
    spec: Any,
    *,
    deadline: float,
    failure_code: VideoErrorCode,
    what: str,
    on_out_time_s: Callable[[float], None] | None = None,
) -> dict[str, str]:
    """Run an ffmpeg-python spec with a hard deadline; return the last ``-progress`` block.

    ``on_out_time_s`` is called in this thread (callers may touch non-thread-safe state).
    """
    spec = spec.global_args(
        "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-progress", "pipe:1"
    )
    _remaining(deadline)
    process = ffmpeg.run_async(
        spec, cmd=ffmpeg_path(), pipe_stdout=True, pipe_stderr=True, overwrite_output=True
    )
    lines: queue.Queue[str | None] = queue.Queue()
    stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
    readers = [
        threading.Thread(
            target=_pump, args=(process.stdout, lines.put, lambda: lines.put(None)), daemon=True
        ),
        threading.Thread(target=_pump, args=(process.stderr, stderr_tail.append), daemon=True),
    ]
    for reader in readers:
        reader.start()
    last: dict[str, str] = {}
    timed_out = False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            try:
                line = lines.get(timeout=min(remaining, _POLL_S))
            except queue.Empty:
                continue
            if line is None:
                break
            key, _, value = line.strip().partition("=")
            last[key] = value
            if key == "out_time_us" and on_out_time_s is not None and value.isdigit():
                on_out_time_s(int(value) / 1_000_000)
        if not timed_out:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for reader in readers:
            reader.join(timeout=5)
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    if timed_out:
        raise VideoError("timeout", f"{what} took too long and was stopped")
    if process.returncode != 0:
        tail = "\n".join(line.rstrip() for line in stderr_tail if line.strip())
        raise VideoError(
            failure_code, f"{what} failed (ffmpeg exit {process.returncode}): {tail[-2000:]}"
        )
    return last


def _pump(
    pipe: IO[bytes] | None, sink: Callable[[str], None], on_end: Callable[[], None] | None = None
) -> None:
    try:
        if pipe is not None:
            for raw in iter(pipe.readline, b""):
                sink(raw.decode("utf-8", "replace"))
    except (OSError, ValueError):  # the pipe was closed under us after a kill
        pass
    finally:
        if on_end is not None:
            on_end()


# --------------------------------------------------------------------------- HLS


def plan_renditions(
    width: int, height: int, ladder: Sequence[int] = DEFAULT_LADDER
) -> tuple[RenditionPlan, ...]:
    """The renditions to make for a ``width`` x ``height`` (display size) source.

    A rung names the short side, so a portrait 720x1280 source gets 360x640 for ``360``.
    Rungs above the source are skipped; a source below the lowest rung gets one rendition
    at its own size. Widths keep the aspect ratio and are even, as H.264 4:2:0 needs.
    """
    if width <= 0 or height <= 0:
        raise ValueError("width and height must be positive")
    rungs = sorted(set(ladder))
    if not rungs or any(rung <= 0 or rung % 2 for rung in rungs):
        raise ValueError("ladder rungs must be positive even numbers")
    short_side, long_side = min(width, height), max(width, height)
    chosen = [rung for rung in rungs if rung <= short_side] or [_even_floor(short_side)]
    plans = []
    for rung in chosen:
        long_out = _even_round(rung * long_side / short_side)
        out_w, out_h = (long_out, rung) if width >= height else (rung, long_out)
        plans.append(
            RenditionPlan(
                name=f"{rung}p",
                width=out_w,
                height=out_h,
                video_kbps=_video_kbps(out_w, out_h),
                audio_kbps=96 if rung < 480 else 128,
            )
        )
    return tuple(plans)


def _even_round(value: float) -> int:
    return max(2, math.floor(value / 2 + 0.5) * 2)  # half up, not round()'s half to even


def _even_floor(value: int) -> int:
    return max(2, value - value % 2)


def _video_kbps(width: int, height: int) -> int:
    # Peak rate for the CRF encode, scaled from 2.5 Mbit/s at 720p by pixel count ** 0.75
    # (bitrate needs grow slower than area): 360p ~ 880 kbit/s, 540p ~ 1.6, 1080p ~ 4.6.
    return round(2500 * math.pow(width * height / (1280 * 720), 0.75))


def default_transcode_timeout_s(duration_s: float) -> float:
    """A generous hard limit for ``transcode_hls``: 5 min plus 10x real time."""
    return 300.0 + 10.0 * duration_s


def transcode_hls(
    src: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    ladder: Sequence[int] = DEFAULT_LADDER,
    segment_s: float = 6,
    timeout_s: float | None = None,
    on_progress: Callable[[float], None] | None = None,
    preset: str = "veryfast",
    crf: int = 23,
) -> HlsResult:
    """Transcode ``src`` to an HLS ladder in ``out_dir`` with one ffmpeg run.

    Layout: ``master.m3u8`` and ``<name>/index.m3u8`` + ``<name>/seg_00000.ts`` per rendition.
    H.264 (libx264, CRF capped by -maxrate/-bufsize per rung) + AAC when the source has
    sound. Keyframes are forced every ``segment_s`` so segments line up across renditions.
    ``on_progress`` gets 0-100, never decreasing, 100 only once the output is in place.
    The output is built beside ``out_dir`` and swapped in at the end, replacing any older
    output, so an interrupted run never leaves a half output that looks complete.
    ``timeout_s`` bounds the ffmpeg run (default ``default_transcode_timeout_s(duration)``);
    the probe before it gets at most the same, capped at ``PROBE_TIMEOUT_S``.
    """
    if segment_s <= 0:
        raise ValueError("segment_s must be positive")
    # Absolute paths: ffmpeg would read "name:rest" as a protocol, and "%" as a pattern.
    source, target = Path(src).resolve(), Path(out_dir).resolve()
    if "%" in str(target):
        raise ValueError("out_dir cannot contain '%' (ffmpeg reads it as a pattern)")
    probe_timeout_s = PROBE_TIMEOUT_S if timeout_s is None else min(timeout_s, PROBE_TIMEOUT_S)
    info = probe(source, timeout_s=probe_timeout_s)
    plans = plan_renditions(info.width, info.height, ladder)
    limit_s = timeout_s if timeout_s is not None else default_transcode_timeout_s(info.duration_s)
    deadline = time.monotonic() + limit_s

    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_work_dirs(target, older_than_s=limit_s + 60)
    work = target.parent / f".{target.name}.partial-{uuid.uuid4().hex}"
    work.mkdir()
    try:
        reported = -1.0

        def report(out_time_s: float) -> None:
            nonlocal reported
            # 100 is kept for "done and in place"; ffmpeg's clock may run past the duration.
            percent = round(min(99.9, max(0.0, 100.0 * out_time_s / info.duration_s)), 1)
            if on_progress is not None and percent > reported:
                reported = percent
                on_progress(percent)

        spec = _hls_spec(source, info, plans, work, segment_s=segment_s, preset=preset, crf=crf)
        report(0.0)
        _run_ffmpeg(
            spec,
            deadline=deadline,
            failure_code="transcode_failed",
            what="transcoding",
            on_out_time_s=report,
        )
        renditions, duration_s = _read_hls_output(work, plans)
        first_segment = work / renditions[0].segments[0]
        start_pts = _mpegts_start_pts(first_segment, deadline=deadline)
        _swap_into_place(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if on_progress is not None:
        on_progress(100.0)
    return HlsResult(
        out_dir=target,
        master_playlist=target / MASTER_PLAYLIST,
        renditions=renditions,
        segments=tuple(seg for rendition in renditions for seg in rendition.segments),
        duration_s=duration_s,
        mpegts_start_pts=start_pts,
    )


def _hls_spec(
    source: Path,
    info: ProbeResult,
    plans: Sequence[RenditionPlan],
    work: Path,
    *,
    segment_s: float,
    preset: str,
    crf: int,
) -> Any:
    source_input = ffmpeg.input(str(source), **_input_kwargs(info))
    video = source_input[str(info.video_stream_index)]
    output_fps = _output_fps(info.frame_rate)
    if output_fps is not None:
        video = video.filter("fps", fps=output_fps)
    branches = video.filter_multi_output("split", len(plans))
    audio = source_input[str(info.audio_stream_index)] if info.has_audio else None

    streams: list[Any] = []
    options: dict[str, Any] = {
        "c:v": "libx264",
        "preset:v": preset,
        "crf:v": crf,
        "force_key_frames": f"expr:gte(t,n_forced*{segment_s:g})",
        "map_metadata": -1,
        "map_chapters": -1,
        "max_muxing_queue_size": 1024,
        "f": "hls",
        "hls_time": f"{segment_s:g}",
        "hls_playlist_type": "vod",
        "hls_flags": "independent_segments",
        "hls_segment_type": "mpegts",
        "hls_segment_filename": str(work / "%v" / "seg_%05d.ts"),
        "master_pl_name": MASTER_PLAYLIST,
    }
    stream_map = []
    for i, plan in enumerate(plans):
        scaled = (
            branches.stream(i)
            .filter("scale", plan.width, plan.height)
            .filter("setsar", 1)
            .filter("format", "yuv420p")  # 10-bit or 4:2:2 sources would give unplayable H.264
        )
        streams.append(scaled)
        options[f"maxrate:v:{i}"] = f"{plan.video_kbps}k"
        options[f"bufsize:v:{i}"] = f"{2 * plan.video_kbps}k"
        if audio is not None:
            streams.append(audio)
            options[f"b:a:{i}"] = f"{plan.audio_kbps}k"
            stream_map.append(f"v:{i},a:{i},name:{plan.name}")
        else:
            stream_map.append(f"v:{i},name:{plan.name}")
    if audio is not None:
        options["c:a"] = "aac"
        options["ac"] = 2
    options["var_stream_map"] = " ".join(stream_map)
    return ffmpeg.output(*streams, str(work / "%v" / RENDITION_PLAYLIST), **options)


def _output_fps(frame_rate: float | None) -> float | None:
    """Cap at 30 fps (halving 50/60 to 25/30 keeps motion even); None keeps the source rate."""
    if frame_rate is None or frame_rate <= _MAX_OUTPUT_FPS + _FRAME_RATE_SLACK:
        return None
    halved = frame_rate / 2
    return round(halved, 3) if halved <= _MAX_OUTPUT_FPS + _FRAME_RATE_SLACK else _MAX_OUTPUT_FPS


def _read_hls_output(
    work: Path, plans: Sequence[RenditionPlan]
) -> tuple[tuple[Rendition, ...], float]:
    master = work / MASTER_PLAYLIST
    if not master.is_file():
        raise VideoError("transcode_failed", "ffmpeg wrote no master playlist")
    variants = _master_variants(master.read_text(encoding="utf-8"))
    renditions = []
    durations = []
    for plan in plans:
        playlist = f"{plan.name}/{RENDITION_PLAYLIST}"
        attrs = variants.get(playlist)
        if attrs is None:
            raise VideoError("transcode_failed", f"the master playlist lacks {playlist}")
        segments, duration_s = _media_playlist_segments(work / playlist)
        for segment in segments:
            if not (work / plan.name / segment).is_file():
                raise VideoError("transcode_failed", f"segment {plan.name}/{segment} is missing")
        renditions.append(
            Rendition(
                name=plan.name,
                width=plan.width,
                height=plan.height,
                bandwidth=int(attrs.get("BANDWIDTH", "0")),
                average_bandwidth=int(attrs["AVERAGE-BANDWIDTH"])
                if "AVERAGE-BANDWIDTH" in attrs
                else None,
                codecs=attrs.get("CODECS", "").strip('"'),
                playlist=playlist,
                segments=tuple(f"{plan.name}/{segment}" for segment in segments),
            )
        )
        durations.append(duration_s)
    return tuple(renditions), max(durations)


def _master_variants(master_text: str) -> dict[str, dict[str, str]]:
    """Variant URI -> its EXT-X-STREAM-INF attributes."""
    variants: dict[str, dict[str, str]] = {}
    pending: dict[str, str] | None = None
    for line in master_text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-STREAM-INF:"):
            pending = dict(_parse_attributes(line.partition(":")[2]))
        elif line and not line.startswith("#") and pending is not None:
            variants[line] = pending
            pending = None
    return variants


def _media_playlist_segments(playlist: Path) -> tuple[list[str], float]:
    if not playlist.is_file():
        raise VideoError("transcode_failed", f"{playlist.parent.name}: no media playlist")
    lines = [line.strip() for line in playlist.read_text(encoding="utf-8").splitlines()]
    if "#EXT-X-ENDLIST" not in lines:
        raise VideoError("transcode_failed", f"{playlist.parent.name}: playlist is unfinished")
    segments: list[str] = []
    total_s = 0.0
    for line in lines:
        if line.startswith("#EXTINF:"):
            total_s += float(line.partition(":")[2].partition(",")[0])
        elif line and not line.startswith("#"):
            segments.append(line)
    if not segments:
        raise VideoError("transcode_failed", f"{playlist.parent.name}: no segments")
    return segments, total_s


def _mpegts_start_pts(segment: Path, *, deadline: float) -> int:
    args = [
        ffprobe_path(),
        "-v",
        "error",
        "-show_entries",
        "format=start_time",
        "-of",
        "json",
        str(segment),
    ]
    try:
        completed = subprocess.run(  # noqa: S603 - argument list, no shell
            args, capture_output=True, timeout=_remaining(deadline), check=False
        )
        start_s = float(json.loads(completed.stdout)["format"]["start_time"])
    except subprocess.TimeoutExpired as exc:
        raise VideoError("timeout", "reading the first segment took too long") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise VideoError("transcode_failed", "the first segment has no start time") from exc
    return round(start_s * _MPEGTS_CLOCK_HZ)


def _remove_stale_work_dirs(target: Path, *, older_than_s: float) -> None:
    """Work folders of runs that died (worker killed) are removed once no run can own them."""
    cutoff = time.time() - older_than_s
    for prefix in (f".{target.name}.partial-", f".{target.name}.old-"):
        for leftover in target.parent.glob(f"{glob.escape(prefix)}*"):
            try:
                if leftover.is_dir() and leftover.stat().st_mtime < cutoff:
                    shutil.rmtree(leftover, ignore_errors=True)
            except OSError:
                continue


def _swap_into_place(work: Path, target: Path) -> None:
    if not target.exists():
        work.rename(target)
        return
    old = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
    target.rename(old)
    work.rename(target)
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)


# --------------------------------------------------------------------------- poster


def make_poster(
    src: str | os.PathLike[str],
    dest_jpg: str | os.PathLike[str],
    at_s: float | None = None,
    *,
    max_height: int = 720,
    timeout_s: float = POSTER_TIMEOUT_S,
) -> Path:
    """Write one JPEG frame of ``src`` to ``dest_jpg``, at most ``max_height`` pixels high.

    ``at_s`` defaults to 10 % into the video and is clamped to the video's length.
    """
    source, dest = Path(src).resolve(), Path(dest_jpg).resolve()
    deadline = time.monotonic() + timeout_s
    info = probe(source, timeout_s=timeout_s)
    wanted_s = info.duration_s * 0.1 if at_s is None else at_s
    seek_s = min(max(0.0, wanted_s), max(0.0, info.duration_s - 0.5))
    out_h = _even_floor(min(max_height, info.height))
    out_w = _even_round(out_h * info.width / info.height)

    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.partial.jpg")
    try:
        for attempt_s in (seek_s, 0.0):  # a duration that overstates the data: use the start
            spec = (
                ffmpeg.input(str(source), ss=f"{attempt_s:.3f}", **_input_kwargs(info))[
                    str(info.video_stream_index)
                ]
                .filter("scale", out_w, out_h)
                .filter("setsar", 1)
                .output(
                    str(partial), update=1, f="image2", **{"frames:v": 1, "c:v": "mjpeg", "q:v": 3}
                )
            )
            _run_ffmpeg(spec, deadline=deadline, failure_code="poster_failed", what="the poster")
            if partial.is_file() and partial.stat().st_size > 0:
                os.replace(partial, dest)
                return dest
    finally:
        partial.unlink(missing_ok=True)
    raise VideoError("poster_failed", "no frame could be read for the poster")


# --------------------------------------------------------------------------- captions

# Hours and milliseconds may be left out, as common players allow (`00:04`, `00:00:04`,
# `00:00:04,5`); a fraction has one to three digits, read as tenths to thousandths.
_TIMESTAMP = r"(?:(\d{1,3}):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3}))?"
_TIMING_LINE = re.compile(rf"^\s*{_TIMESTAMP}\s*-->\s*{_TIMESTAMP}(.*)$")
_SRT_ALLOWED_TAG = re.compile(r"^</?([biu])>$", re.IGNORECASE)
_ANY_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_ASS_OVERRIDE = re.compile(r"\{\\[^{}]*\}")
_ENTITY = re.compile(r"&(?:[A-Za-z]+|#\d+|#x[0-9A-Fa-f]+);")


@dataclass(frozen=True, slots=True)
class _Cue:
    start_ms: int
    end_ms: int
    identifier: str
    settings: str
    lines: tuple[str, ...]


def captions_to_webvtt(data: bytes, *, mpegts_start_pts: int | None = None) -> str:
    """Turn an uploaded SRT or WebVTT file into a clean WebVTT document.

    Accepts UTF-8 (with or without BOM), UTF-16 with BOM, and GB18030/GBK (common for Chinese
    SRT files). Cues are re-written: timings normalised, SRT styling reduced to <b>/<i>/<u>,
    NOTE blocks dropped. Pass ``HlsResult.mpegts_start_pts`` to add the X-TIMESTAMP-MAP
    header that aligns the captions with MPEG-TS segments in Safari and hls.js.
    Raises ``VideoError("invalid_captions")`` for anything else, or a file without cues.
    """
    if len(data) > MAX_CAPTION_BYTES:
        raise VideoError("invalid_captions", "the captions file is too large")
    text = _decode_captions(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" in text:
        raise VideoError("invalid_captions", "the captions file is not text")
    stripped = text.lstrip("\n \t")
    if re.match(r"WEBVTT(?:[ \t\n]|$)", stripped):
        cues, preamble = _parse_webvtt(stripped)
    else:
        cues, preamble = _parse_srt(stripped), []
    if not cues:
        bad = _first_bad_timing(stripped, offset=text.count("\n", 0, len(text) - len(stripped)))
        if bad is not None:
            raise VideoError("invalid_captions", f"line {bad} is not a cue timing", line=bad)
        raise VideoError("invalid_captions", "no captions found: expected SRT or WebVTT")

    header = "WEBVTT"
    if mpegts_start_pts is not None:
        header += f"\nX-TIMESTAMP-MAP=MPEGTS:{int(mpegts_start_pts)},LOCAL:00:00:00.000"
    blocks = [header, *preamble]
    for cue in sorted(cues, key=lambda cue: cue.start_ms):
        timing = f"{_format_ms(cue.start_ms)} --> {_format_ms(cue.end_ms)}"
        if cue.settings:
            timing += f" {cue.settings}"
        head = [cue.identifier] if cue.identifier else []
        blocks.append("\n".join([*head, timing, *cue.lines]))
    return "\n\n".join(blocks) + "\n"


def _first_bad_timing(text: str, *, offset: int = 0) -> int | None:
    """The number (from 1, after `offset` lines) of the first line that looks like a cue
    timing (an arrow) but is none, so a refusal can point at it."""
    for number, line in enumerate(text.split("\n"), start=1 + offset):
        if "->" in line and _parse_timing(line) is None:
            return number
    return None


def _decode_captions(data: bytes) -> str:
    if not data.strip():
        raise VideoError("invalid_captions", "the captions file is empty")
    if data.startswith(b"\xef\xbb\xbf"):
        encodings: tuple[str, ...] = ("utf-8-sig",)
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encodings = ("utf-16",)
    else:
        encodings = ("utf-8", "gb18030")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise VideoError("invalid_captions", "the captions file is neither UTF-8 nor GB18030 text")


def _blocks(text: str) -> list[list[str]]:
    return [
        [line.rstrip() for line in block.strip("\n").split("\n")]
        for block in re.split(r"\n[ \t]*\n", text)
        if block.strip()
    ]


def _parse_timing(line: str) -> tuple[int, int, str] | None:
    match = _TIMING_LINE.match(line)
    if match is None:
        return None
    groups = match.groups()
    start_ms = _to_ms(*groups[0:4])
    end_ms = _to_ms(*groups[4:8])
    if start_ms is None or end_ms is None or end_ms <= start_ms:
        return None
    return start_ms, end_ms, (groups[8] or "").strip()


def _to_ms(hours: str | None, minutes: str, seconds: str, fraction: str | None) -> int | None:
    h, m, s = int(hours or 0), int(minutes), int(seconds)
    if m > 59 or s > 59:
        return None
    return ((h * 60 + m) * 60 + s) * 1000 + int((fraction or "").ljust(3, "0"))


def _format_ms(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _parse_srt(text: str) -> list[_Cue]:
    cues = []
    for block in _blocks(text):
        # The counter line is optional in practice; the timing line is what counts.
        timing_at = 0 if "-->" in block[0] else 1
        if len(block) <= timing_at or (timing := _parse_timing(block[timing_at])) is None:
            continue
        lines = tuple(
            cleaned for line in block[timing_at + 1 :] if (cleaned := _clean_srt_line(line))
        )
        if lines:
            # SRT positions (X1:...) have no WebVTT meaning: dropped with the settings.
            cues.append(_Cue(timing[0], timing[1], "", "", lines))
    return cues


def _clean_srt_line(line: str) -> str:
    line = _ASS_OVERRIDE.sub("", line)
    parts: list[str] = []
    position = 0
    for match in _ANY_TAG.finditer(line):
        parts.append(_escape_cue_text(line[position : match.start()]))
        tag = match.group(0).replace(" ", "")
        if _SRT_ALLOWED_TAG.match(tag):
            parts.append(tag.lower())
        position = match.end()
    parts.append(_escape_cue_text(line[position:]))
    return "".join(parts).strip()


def _escape_cue_text(text: str) -> str:
    escaped = []
    for index, char in enumerate(text):
        if char == "&" and not _ENTITY.match(text, index):
            escaped.append("&amp;")
        elif char == "<":
            escaped.append("&lt;")
        elif char == ">":
            escaped.append("&gt;")
        else:
            escaped.append(char)
    return "".join(escaped)


def _parse_webvtt(text: str) -> tuple[list[_Cue], list[str]]:
    blocks = _blocks(text)
    cues: list[_Cue] = []
    preamble: list[str] = []
    for block in blocks[1:]:  # the first block is the WEBVTT header
        first = block[0]
        if re.match(r"NOTE(?:[ \t]|$)", first):
            continue
        if re.match(r"(?:STYLE|REGION)[ \t]*$", first) and not cues and "-->" not in "".join(block):
            preamble.append("\n".join(block))
            continue
        timing_at = 0 if "-->" in first else 1
        if len(block) <= timing_at or (timing := _parse_timing(block[timing_at])) is None:
            continue
        payload = tuple(
            line for line in block[timing_at + 1 :] if line.strip() and "-->" not in line
        )
        if payload:
            identifier = first.strip() if timing_at == 1 else ""
            cues.append(_Cue(timing[0], timing[1], identifier, timing[2], payload))
    return cues, preamble


def subtitle_playlist(vtt_uri: str, duration_s: float) -> str:
    """A VOD media playlist holding one WebVTT file covering the whole video."""
    _check_quoted_value("vtt_uri", vtt_uri)
    if not vtt_uri or not math.isfinite(duration_s) or duration_s <= 0:
        raise ValueError("a subtitle playlist needs a URI and a positive duration")
    return (
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        f"#EXT-X-TARGETDURATION:{math.ceil(duration_s)}\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
        f"#EXTINF:{duration_s:.3f},\n"
        f"{vtt_uri}\n"
        "#EXT-X-ENDLIST\n"
    )


def add_subtitles_to_master(master_text: str, tracks: Sequence[SubtitleTrack]) -> str:
    """Return ``master_text`` with exactly ``tracks`` as its subtitles group.

    Any subtitles already there are replaced, so the app can re-generate the master from the
    stored one whenever captions change; an empty ``tracks`` removes them.
    """
    lines = master_text.splitlines()
    if not lines or lines[0].strip() != "#EXTM3U":
        raise ValueError("not an HLS playlist")
    if not any(line.startswith("#EXT-X-STREAM-INF:") for line in lines):
        raise ValueError("not a master playlist: no #EXT-X-STREAM-INF")
    media_lines = _subtitle_media_lines(tracks)

    result: list[str] = []
    inserted = False
    for line in lines:
        if (
            line.startswith("#EXT-X-MEDIA:")
            and dict(_parse_attributes(line.partition(":")[2])).get("TYPE") == "SUBTITLES"
        ):
            continue
        if line.startswith("#EXT-X-STREAM-INF:"):
            if not inserted:
                result.extend(media_lines)
                inserted = True
            attributes = [
                (key, value)
                for key, value in _parse_attributes(line.partition(":")[2])
                if key != "SUBTITLES"
            ]
            if tracks:
                attributes.append(("SUBTITLES", f'"{SUBTITLE_GROUP}"'))
            line = "#EXT-X-STREAM-INF:" + ",".join(f"{key}={value}" for key, value in attributes)
        result.append(line)
    return "\n".join(result) + "\n"


def _subtitle_media_lines(tracks: Sequence[SubtitleTrack]) -> list[str]:
    if sum(track.default for track in tracks) > 1:
        raise ValueError("at most one subtitles track can be the default")
    names = [track.name for track in tracks]
    if len(set(names)) != len(names):
        raise ValueError("subtitle track names must be unique")
    media_lines = []
    for track in tracks:
        if not re.fullmatch(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*", track.language):
            raise ValueError(f"not a language tag: {track.language!r}")
        _check_quoted_value("name", track.name)
        _check_quoted_value("uri", track.uri)
        if not track.name or not track.uri:
            raise ValueError("a subtitles track needs a name and a URI")
        autoselect = track.autoselect or track.default  # HLS: DEFAULT=YES needs AUTOSELECT=YES
        media_lines.append(
            "#EXT-X-MEDIA:TYPE=SUBTITLES"
            f',GROUP-ID="{SUBTITLE_GROUP}"'
            f',LANGUAGE="{track.language}"'
            f',NAME="{track.name}"'
            f",DEFAULT={'YES' if track.default else 'NO'}"
            f",AUTOSELECT={'YES' if autoselect else 'NO'}"
            ",FORCED=NO"
            f',URI="{track.uri}"'
        )
    return media_lines


def _check_quoted_value(what: str, value: str) -> None:
    if any(char in value for char in '"\r\n'):
        raise ValueError(f"{what} cannot contain quotes or line breaks")


def _parse_attributes(text: str) -> list[tuple[str, str]]:
    """An HLS attribute list as (NAME, raw value) pairs; quoted values keep their quotes."""
    return re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^",]*)', text)


# --------------------------------------------------------------------------- demo clips

_CJK_FONT_PATTERNS: Final = (
    "*NotoSansCJK*",
    "*NotoSerifCJK*",
    "*SourceHan*",
    "*wqy*",
    "*DroidSansFallback*",
)
_FONT_DIRS: Final = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))


def make_test_pattern(
    dest: str | os.PathLike[str],
    *,
    seconds: float,
    title: str,
    width: int = 640,
    height: int = 360,
    with_audio: bool = True,
    fps: int = 25,
    timeout_s: float = TEST_PATTERN_TIMEOUT_S,
) -> Path:
    """Make a short H.264 (+ AAC 440 Hz tone) MP4 from ffmpeg's test pattern.

    ``title`` is drawn on the picture when this ffmpeg build has drawtext and a font with
    Chinese glyphs is installed; otherwise the clip has no text. The title is always stored
    as the file's title metadata.
    """
    if seconds <= 0 or width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError("seconds must be positive, width and height positive and even")
    target = Path(dest).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.partial.mp4")
    with tempfile.TemporaryDirectory(prefix="pattern-") as tmp:
        video = ffmpeg.input(
            f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds:g}", f="lavfi"
        ).video
        font = _cjk_font() if title.strip() and "drawtext" in available_filters() else None
        if font is not None:
            text_file = Path(tmp) / "title.txt"
            text_file.write_text(title, encoding="utf-8")
            video = video.filter(
                "drawtext",
                textfile=str(text_file),
                fontfile=str(font),
                expansion="none",
                fontsize=max(16, height // 12),
                fontcolor="white",
                box=1,
                boxcolor="black@0.6",
                boxborderw=8,
                x="(w-text_w)/2",
                y="h-text_h-h/10",
            )
        streams: list[Any] = [video]
        options: dict[str, Any] = {
            "c:v": "libx264",
            "preset:v": "veryfast",
            "pix_fmt": "yuv420p",
            "g": fps * 2,
            "movflags": "+faststart",
            "metadata": f"title={title}",
            "f": "mp4",
        }
        if with_audio:
            streams.append(
                ffmpeg.input(
                    f"sine=frequency=440:sample_rate=48000:duration={seconds:g}", f="lavfi"
                ).audio
            )
            options.update({"c:a": "aac", "b:a": "96k"})
        spec = ffmpeg.output(*streams, str(partial), **options)
        try:
            _run_ffmpeg(
                spec, deadline=deadline, failure_code="transcode_failed", what="the test pattern"
            )
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return target


def _cjk_font() -> Path | None:
    """A font file with Chinese glyphs, or None: fresh machines often have no fonts at all."""
    for directory in _FONT_DIRS:
        if not directory.is_dir():
            continue
        for pattern in _CJK_FONT_PATTERNS:
            for candidate in sorted(directory.rglob(pattern)):
                if candidate.suffix.lower() in {".ttf", ".ttc", ".otf"} and candidate.is_file():
                    return candidate
    return None
