"""Replays: a dHash hit is only a candidate until ``same_picture`` confirms it, on real files.

The video frames are every third frame of tests/data/media/short_hamilton_clip.mp4 (10 a
second), sent as JPEG quality 85 as the browser sends them. `tools/bench_replay.py pictures`
prints the full distributions behind the limits.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageEnhance

from media_pipeline.faces import (
    NEAR_DUPLICATE_MAX_BITS,
    SAME_PICTURE_MAX_RESIDUAL,
    SAME_PICTURE_MAX_SHIFT,
    RgbImage,
    decode_image,
    hamming,
    is_near_duplicate,
    near_duplicate_hash,
    picture_difference,
    same_picture,
)
from tests.media_pipeline.test_face_models import EAST_ASIAN, person
from tests.media_pipeline.test_faces import DATA, encode, rgb_of
from tools.bench_replay import clip_frames as read_clip

PLAYER_JPEG_QUALITY = 85
# rgba_32bit.png is the obama_2 photo shrunk (tests/data/faces/SOURCES.md): one picture.
COPIES_IN_DATA = {frozenset({"obama_2", "rgba_32bit"})}

Change = Callable[[Image.Image], Image.Image]


# --------------------------------------------------------------------------- helpers


def sent(rgb: RgbImage | Image.Image, fmt: str = "JPEG", **options: object) -> RgbImage:
    """The picture as the server decodes it after it was saved as ``fmt``."""
    if fmt == "JPEG":
        options.setdefault("quality", PLAYER_JPEG_QUALITY)
    return decode_image(encode(rgb, fmt, **options))


def scaled(factor: float, resample: Image.Resampling, *, back: bool = False) -> Change:
    def change(picture: Image.Image) -> Image.Image:
        size = (round(picture.width * factor), round(picture.height * factor))
        out = picture.resize(size, resample)
        return out.resize(picture.size, resample) if back else out

    return change


def brighter(factor: float) -> Change:
    return lambda picture: ImageEnhance.Brightness(picture).enhance(factor)


# (change, format, options): what someone replaying a stored snapshot might do to it.
COPIES = [
    pytest.param(None, "JPEG", {"quality": 30}, id="jpeg_q30"),
    pytest.param(None, "JPEG", {"quality": 95}, id="jpeg_q95"),
    pytest.param(None, "PNG", {}, id="png"),
    pytest.param(None, "WEBP", {"quality": 80}, id="webp"),
    pytest.param(
        scaled(0.5, Image.Resampling.BILINEAR), "JPEG", {"quality": 30}, id="halved_bilinear_q30"
    ),
    pytest.param(scaled(0.75, Image.Resampling.LANCZOS), "JPEG", {}, id="three_quarters_lanczos"),
    pytest.param(scaled(2.0, Image.Resampling.BICUBIC), "JPEG", {}, id="doubled_bicubic"),
    pytest.param(
        scaled(0.5, Image.Resampling.NEAREST, back=True), "JPEG", {}, id="halved_nearest_and_back"
    ),
    pytest.param(
        scaled(1.5, Image.Resampling.BOX, back=True), "PNG", {}, id="one_and_a_half_box_and_back"
    ),
    pytest.param(brighter(1.05), "JPEG", {}, id="brighter_5_percent"),
    pytest.param(brighter(0.95), "JPEG", {}, id="darker_5_percent"),
]


def copy_of(rgb: RgbImage, change: Change | None, fmt: str, options: dict[str, object]) -> RgbImage:
    picture = Image.fromarray(rgb)
    return sent(change(picture) if change else picture, fmt, **options)


def frames_of(pairs: list[tuple[int, int]]) -> list[int]:
    return sorted(set(itertools.chain.from_iterable(pairs)))


def moved(rgb: RgbImage, fraction: float) -> RgbImage:
    """The scene moved sideways by ``fraction`` of the width, as a camera moved would show it."""
    height, width = rgb.shape[:2]
    move = np.float32([[1, 0, fraction * width], [0, 1, 0]])
    return cv2.warpAffine(rgb, move, (width, height), borderMode=cv2.BORDER_REFLECT)


def head_moved(rgb: RgbImage, fraction: float) -> RgbImage:
    """The middle third of the frame, where a webcam shows the head, moved sideways by
    ``fraction`` of the width; the rest (the room) still."""
    height, width = rgb.shape[:2]
    mask = np.zeros((height, width), np.float32)
    mask[height // 3 : 2 * height // 3, width // 3 : 2 * width // 3] = 1.0
    mask = cv2.GaussianBlur(mask, (0, 0), 0.02 * width)[..., None]
    out = rgb * (1.0 - mask) + moved(rgb, fraction) * mask
    return sent(np.clip(out, 0, 255).astype(np.uint8))


def new_capture(rgb: RgbImage, *, sigma: float, seed: int) -> RgbImage:
    """The same scene a moment later: fresh camera noise, moved 1 % sideways, 10 % brighter."""
    noise = np.random.default_rng(seed).normal(0.0, sigma, rgb.shape)
    noisy = np.clip(rgb + noise, 0, 255).astype(np.uint8)
    return sent(np.clip(moved(noisy, 0.01) * 1.10, 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def clip_frames() -> list[RgbImage]:
    """Read as tools/bench_replay.py reads them, so the tests judge what it measured."""
    frames = read_clip()
    assert len(frames) == 92  # 275 frames of 29.97 a second
    return frames


@pytest.fixture(scope="module")
def hash_hits(clip_frames: list[RgbImage]) -> list[tuple[int, int]]:
    """Pairs of frames 0.3-3 s apart whose hashes alone would call one a replay of the other."""
    hashes = [near_duplicate_hash(frame) for frame in clip_frames]
    return [
        (first, second)
        for first, second in itertools.combinations(range(len(clip_frames)), 2)
        if 3 <= second - first <= 30 and is_near_duplicate(hashes[first], hashes[second])
    ]


@pytest.fixture(scope="module")
def photos() -> dict[str, RgbImage]:
    paths = sorted(DATA.glob("*.jpg")) + sorted(DATA.glob("*.png")) + sorted(EAST_ASIAN.glob("*"))
    return {
        path.stem: decode_image(path.read_bytes())
        for path in paths
        if path.suffix in {".jpg", ".png"}
    }


# --------------------------------------------------------------------------- copies


@pytest.mark.parametrize(("change", "fmt", "options"), COPIES)
@pytest.mark.parametrize("photo", ["obama_1.jpg", "biden_2.jpg", "lin_manuel_miranda_1.jpg"])
def test_a_copy_of_a_photo_is_the_same_picture(
    photo: str, change: Change | None, fmt: str, options: dict[str, object]
) -> None:
    original = rgb_of(photo)
    copy = copy_of(original, change, fmt, options)
    assert is_near_duplicate(near_duplicate_hash(original), near_duplicate_hash(copy))
    assert same_picture(original, copy), picture_difference(original, copy)
    assert same_picture(copy, original)


@pytest.mark.parametrize(("change", "fmt", "options"), COPIES)
def test_a_copy_of_a_video_frame_is_the_same_picture(
    clip_frames: list[RgbImage], change: Change | None, fmt: str, options: dict[str, object]
) -> None:
    # The dark stage from afar, the singer close up, the audience (the shot that pans slowly).
    for index in (5, 45, 85):
        original = clip_frames[index]
        copy = copy_of(original, change, fmt, options)
        assert is_near_duplicate(near_duplicate_hash(original), near_duplicate_hash(copy)), index
        assert same_picture(original, copy), (index, picture_difference(original, copy))


def test_a_shrunk_copy_kept_in_the_test_photos_is_the_same_picture(
    photos: dict[str, RgbImage],
) -> None:
    assert same_picture(photos["obama_2"], photos["rgba_32bit"])


# --------------------------------------------------------------------------- new pictures


def test_frames_whose_hashes_hit_are_not_the_same_picture(
    clip_frames: list[RgbImage], hash_hits: list[tuple[int, int]]
) -> None:
    # The precondition: these are pairs the hash alone would call replays.
    assert len(hash_hits) >= 50
    for first, second in hash_hits:
        bits = hamming(
            near_duplicate_hash(clip_frames[first]), near_duplicate_hash(clip_frames[second])
        )
        assert bits <= NEAR_DUPLICATE_MAX_BITS
    judged_copies = [
        (first, second, picture_difference(clip_frames[first], clip_frames[second]))
        for first, second in hash_hits
        if same_picture(clip_frames[first], clip_frames[second])
    ]
    assert judged_copies == []


def test_a_new_capture_of_the_same_scene_is_not_the_same_picture(
    clip_frames: list[RgbImage], hash_hits: list[tuple[int, int]]
) -> None:
    captures = hits = 0
    for index, sigma in itertools.product(frames_of(hash_hits), (3.0, 8.0)):
        frame = clip_frames[index]
        again = new_capture(frame, sigma=sigma, seed=index)
        captures += 1
        hits += is_near_duplicate(near_duplicate_hash(frame), near_duplicate_hash(again))
        difference = picture_difference(frame, again)
        assert not same_picture(frame, again), (index, sigma, difference)
        # Rejected by both measures, neither by a hair.
        assert difference.residual > 1.5 * SAME_PICTURE_MAX_RESIDUAL, (index, difference)
        assert difference.shift > 2 * SAME_PICTURE_MAX_SHIFT, (index, difference)
    assert 2 * hits >= captures  # most of them the hash alone would have called replays


def test_a_camera_moved_by_half_a_percent_is_not_the_same_picture(
    clip_frames: list[RgbImage], hash_hits: list[tuple[int, int]], photos: dict[str, RgbImage]
) -> None:
    pictures = {f"frame {i}": clip_frames[i] for i in frames_of(hash_hits)} | photos
    for name, picture in pictures.items():
        again = sent(moved(picture, 0.005))  # 3 px of a 640 px frame
        assert not same_picture(picture, again), (name, picture_difference(picture, again))


def test_a_head_moved_against_a_still_room_is_not_the_same_picture(
    clip_frames: list[RgbImage], hash_hits: list[tuple[int, int]], photos: dict[str, RgbImage]
) -> None:
    pictures = {f"frame {i}": clip_frames[i] for i in frames_of(hash_hits)} | photos
    for name, picture in pictures.items():
        again = head_moved(picture, 0.02)  # 13 px of a 640 px frame
        assert not same_picture(picture, again), (name, picture_difference(picture, again))


def test_different_photos_are_not_the_same_picture(photos: dict[str, RgbImage]) -> None:
    same_person = other_person = 0
    judged_copies = []
    for (first, a), (second, b) in itertools.combinations(photos.items(), 2):
        if frozenset({first, second}) in COPIES_IN_DATA:
            continue
        if person(Path(first)) == person(Path(second)):
            same_person += 1
        else:
            other_person += 1
        if same_picture(a, b):
            judged_copies.append((first, second))
    assert same_person >= 20 and other_person >= 900
    assert judged_copies == []


def test_a_flat_frame_sent_again_is_not_a_replay() -> None:
    # A covered camera sends the same near-black frame each time (its fixed-pattern noise
    # repeats): an honest repeat with nothing in it to tell a replay by.
    rng = np.random.default_rng(0)
    covered = np.clip(rng.normal(8.0, 2.0, (480, 640, 3)), 0, 255).astype(np.uint8)
    again = sent(covered, "PNG")
    assert near_duplicate_hash(covered) == near_duplicate_hash(again)
    assert not same_picture(covered, again)
    assert picture_difference(covered, again).residual == float("inf")
