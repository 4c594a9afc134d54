"""tests/made_once.py: real outputs reused inside `reused_media()` only, never shared writes."""

from __future__ import annotations

import pytest

from config import Config
from media_pipeline import face_models, faces, video
from tests.courses.helpers import CLIP
from tests.made_once import MADE_ONCE, reused_media
from tests.verification.photos import photo

pytestmark = pytest.mark.slow


def test_each_caller_gets_its_own_copy_of_one_real_transcode(tmp_path):
    progress: list[float] = []
    with reused_media():
        first = video.transcode_hls(CLIP, tmp_path / "a", preset="ultrafast")
        second = video.transcode_hls(
            CLIP, tmp_path / "b", preset="ultrafast", on_progress=progress.append
        )
    assert first.out_dir == (tmp_path / "a").resolve()
    assert second.master_playlist == (tmp_path / "b").resolve() / "master.m3u8"
    assert first.segments == second.segments and progress == [100.0]
    for segment in first.segments:
        assert (first.out_dir / segment).read_bytes() == (second.out_dir / segment).read_bytes()
    (first.out_dir / first.segments[0]).write_bytes(b"changed by one test")
    with reused_media():
        third = video.transcode_hls(CLIP, tmp_path / "c", preset="ultrafast")
    assert (third.out_dir / third.segments[0]).read_bytes() != b"changed by one test"


def test_outside_the_block_ffmpeg_and_the_face_model_run_for_real():
    with reused_media():
        assert video.transcode_hls == MADE_ONCE.transcode_hls
    assert video.transcode_hls is MADE_ONCE.real_transcode_hls
    assert video.make_poster is MADE_ONCE.real_make_poster
    assert faces.analyze is MADE_ONCE.real_analyze


def test_a_photo_is_encoded_once_and_a_refusal_is_never_kept():
    face_model = face_models.load(Config.FACE_MODEL, input_scale=Config.FACE_MODEL_INPUT)
    rgb = faces.decode_image(photo("obama_1.jpg"), max_bytes=10**8)
    with reused_media():
        once = faces.analyze(rgb, purpose="enrol", model=face_model)
        again = faces.analyze(rgb.copy(), purpose="enrol", model=face_model)
        assert again is once
        blank = rgb * 0
        for _ in range(2):
            with pytest.raises(faces.FaceError):
                faces.analyze(blank, purpose="enrol", model=face_model)
