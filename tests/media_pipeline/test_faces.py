"""Behaviour of the face steps, run against the real dlib and ONNX models (never mocked).

Encodings here are the default model's (the vendored ONNX model, cosine similarity); the
models themselves, their thresholds on East-Asian faces and dlib are tested in
test_face_models.py.
"""

from __future__ import annotations

import io
import math
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFile, ImageFilter

from media_pipeline import face_models, faces
from media_pipeline.faces import (
    ENROL_MAX_BRIGHTNESS,
    ENROL_MIN_BLUR,
    ENROL_MIN_BRIGHTNESS,
    ENROL_MIN_FACE_PX,
    MAX_DECODE_PIXELS,
    NEAR_DUPLICATE_MAX_BITS,
    WORKING_MAX_PIXELS,
    WORKING_MAX_SIDE,
    FaceAnalysis,
    FaceError,
    Landmarks,
    RgbImage,
    best_of_burst,
    decode_image,
    hamming,
    is_near_duplicate,
    liveness,
    near_duplicate_hash,
)

DATA = Path(__file__).parent.parent / "data" / "faces"
SINGLE_FACE_PHOTOS = (
    "obama_1.jpg",
    "obama_2.jpg",
    "obama_3.jpg",
    "biden_1.jpg",
    "biden_2.jpg",
    "lin_manuel_miranda_1.jpg",
    "rgba_32bit.png",
)
CHALLENGES = ("blink", "turn_left", "turn_right")
MODEL = face_models.load("default")
THRESHOLD = MODEL.defaults.match


def analyze(rgb: RgbImage, **options: object) -> FaceAnalysis:
    """faces.analyze with the default model unless the test says otherwise."""
    options.setdefault("model", MODEL)
    return faces.analyze(rgb, **options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- helpers


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


def rgb_of(name: str) -> RgbImage:
    return decode_image(read(name))


def encode(image: Image.Image | RgbImage, fmt: str = "JPEG", **options: object) -> bytes:
    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **options)
    return buffer.getvalue()


def altered(name: str, change: Callable[[Image.Image], Image.Image]) -> RgbImage:
    return decode_image(encode(change(Image.fromarray(rgb_of(name))), quality=95))


def png_with_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` RGB but whose data is a few bytes."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def warp(rgb: RgbImage, *, degrees: float = 0.0, sx: float = 1.0, sy: float = 1.0) -> RgbImage:
    """The picture turned in-plane and squeezed about its centre, as a printed photo held at an
    angle looks to the camera; the corners are filled white."""
    height, width = rgb.shape[:2]
    centre = (width / 2.0, height / 2.0)
    rotation = np.vstack([cv2.getRotationMatrix2D(centre, degrees, 1.0), [0.0, 0.0, 1.0]])
    to_origin = np.array([[1.0, 0.0, -centre[0]], [0.0, 1.0, -centre[1]], [0.0, 0.0, 1.0]])
    squeeze = np.diag([sx, sy, 1.0])
    matrix = rotation @ np.linalg.inv(to_origin) @ squeeze @ to_origin
    out = cv2.warpAffine(rgb, matrix[:2], (width, height), borderValue=(255, 255, 255))
    return np.ascontiguousarray(out)


def keystone(rgb: RgbImage, fraction: float) -> RgbImage:
    """The picture in perspective, as a photo turned about its vertical axis."""
    height, width = rgb.shape[:2]
    inset = fraction * height
    source = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    target = np.float32(
        [[0, 0], [width * 0.85, inset], [width * 0.85, height - inset], [0, height]]
    )
    matrix = cv2.getPerspectiveTransform(source, target)
    out = cv2.warpPerspective(rgb, matrix, (width, height), borderValue=(255, 255, 255))
    return np.ascontiguousarray(out)


def code_of(rgb: RgbImage, purpose: faces.Purpose = "enrol") -> str:
    with pytest.raises(FaceError) as caught:
        analyze(rgb, purpose=purpose)
    return caught.value.code


@pytest.fixture(scope="module")
def enrolled() -> dict[str, FaceAnalysis]:
    """Each single-face test photo analysed once for enrolment (the model is loaded on import)."""
    return {name: analyze(rgb_of(name), purpose="enrol") for name in SINGLE_FACE_PHOTOS}


# --------------------------------------------------------------------------- decode


def test_importing_faces_leaves_pillow_refusing_truncated_images() -> None:
    # face_recognition (which the engine no longer imports) switched LOAD_TRUNCATED_IMAGES on
    # for the whole process.
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(
    ("data", "code"),
    [
        pytest.param(png_with_header(60_000, 60_000), "image_too_large", id="png-60000x60000"),
        # Between Pillow's warning and error limits: refused all the same.
        pytest.param(png_with_header(10_000, 10_000), "image_too_large", id="png-10000x10000"),
        # Over max_pixels: refused on the header alone, before the missing data is noticed.
        pytest.param(png_with_header(7_000, 7_000), "image_too_large", id="png-7000x7000"),
        # Under max_pixels, but a PNG is decoded whole: more than a 1080p frame's worth.
        pytest.param(png_with_header(7_300, 5_400), "image_too_large", id="png-40-megapixels"),
        pytest.param(png_with_header(2_100, 2_100), "image_too_large", id="png-2100x2100"),
        pytest.param(os.urandom(20 * 1024 * 1024), "image_too_large", id="20-mb-random"),
        pytest.param(b"", "not_an_image", id="zero-bytes"),
        pytest.param(b"%PDF-1.7\n" + b"x" * 200, "not_an_image", id="pdf"),
        pytest.param(
            b'<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480">'
            b'<circle cx="320" cy="240" r="100"/></svg>',
            "not_an_image",
            id="svg",
        ),
        pytest.param("照片.jpg".encode(), "not_an_image", id="text"),
    ],
)
def test_refuses_what_is_not_a_usable_photo(data: bytes, code: str) -> None:
    with pytest.raises(FaceError) as caught:
        decode_image(data)
    assert caught.value.code == code
    assert str(caught.value).startswith(f"{code}: ")


def test_refuses_a_cut_off_jpeg() -> None:
    data = read("obama_480p.jpg")
    with pytest.raises(FaceError) as caught:
        decode_image(data[: len(data) // 2])
    assert caught.value.code == "not_an_image"


def test_refuses_a_gif_and_an_animated_webp() -> None:
    picture = Image.fromarray(rgb_of("obama_480p.jpg"))
    with pytest.raises(FaceError) as caught:
        decode_image(encode(picture, "GIF"))
    assert caught.value.code == "not_an_image"

    frames = [picture, picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    animated = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(FaceError) as caught:
        decode_image(animated)
    assert caught.value.code == "not_an_image"


@pytest.mark.slow
def test_reads_the_main_picture_of_a_multi_picture_jpeg(enrolled: dict[str, FaceAnalysis]) -> None:
    # Phones store extra pictures (previews, depth) after the photo: an MPO file.
    photo = Image.fromarray(rgb_of("obama_1.jpg"))
    data = encode(photo, "MPO", save_all=True, append_images=[photo.resize((160, 200))])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    rgb = decode_image(data)
    assert rgb.shape == (800, 640, 3)
    analysis = analyze(rgb, purpose="enrol")
    assert MODEL.score(analysis.encoding, enrolled["obama_1.jpg"].encoding) > 0.9


def test_limits_can_be_tightened_per_call() -> None:
    data = read("obama_480p.jpg")
    with pytest.raises(FaceError, match="image_too_large"):
        decode_image(data, max_bytes=len(data) - 1)
    with pytest.raises(FaceError, match="image_too_large"):
        decode_image(data, max_pixels=853 * 480 - 1)


def test_decodes_jpeg_to_rgb_uint8() -> None:
    rgb = rgb_of("obama_480p.jpg")
    assert rgb.shape == (480, 853, 3)
    assert rgb.dtype == np.uint8
    assert rgb.flags["C_CONTIGUOUS"]


def test_lays_transparency_on_white() -> None:
    source = Image.open(DATA / "rgba_32bit.png")
    assert source.mode == "RGBA"
    pixels = np.array(source)
    pixels[:40, :, :3] = (255, 0, 0)  # red that must not show through
    pixels[:40, :, 3] = 0
    rgb = decode_image(encode(Image.fromarray(pixels, "RGBA"), "PNG"))
    assert rgb.shape == (920, 480, 3)
    assert (rgb[:40] == 255).all()
    assert not (rgb[40:] == 255).all()


def test_shrinks_large_photos_to_the_working_size() -> None:
    big = Image.fromarray(rgb_of("obama_1.jpg")).resize((2400, 3000), Image.Resampling.BICUBIC)
    rgb = decode_image(encode(big, quality=85))
    assert rgb.shape[0] * rgb.shape[1] <= WORKING_MAX_PIXELS
    assert rgb.shape[:2] == (1073, 858)  # the aspect kept
    wide = Image.fromarray(rgb_of("obama_480p.jpg")).resize((2560, 1440))
    assert decode_image(encode(wide)).shape[:2] == (720, WORKING_MAX_SIDE)


@pytest.mark.slow
def test_a_40_megapixel_jpeg_is_decoded_reduced_and_its_face_found() -> None:
    huge = Image.fromarray(rgb_of("obama_1.jpg")).resize((5600, 7000), Image.Resampling.BILINEAR)
    data = encode(huge, quality=80)
    with Image.open(io.BytesIO(data)) as header:
        header.draft("RGB", (WORKING_MAX_SIDE, WORKING_MAX_SIDE))
        # 39 megapixels; libjpeg hands over a quarter of each side: ~2.5 are decoded.
        assert header.size[0] * header.size[1] <= MAX_DECODE_PIXELS
    rgb = decode_image(data)
    assert rgb.shape[0] * rgb.shape[1] <= WORKING_MAX_PIXELS
    assert analyze(rgb, purpose="enrol").quality.face_count == 1


@pytest.mark.slow
def test_honours_exif_orientation(enrolled: dict[str, FaceAnalysis]) -> None:
    upright = rgb_of("obama_1.jpg")
    # Orientation 6: the stored picture is turned a quarter anticlockwise; viewers turn it back.
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored, quality=95, exif=exif.tobytes())

    rgb = decode_image(data)
    assert rgb.shape == upright.shape
    analysis = analyze(rgb, purpose="enrol")
    assert MODEL.score(analysis.encoding, enrolled["obama_1.jpg"].encoding) > 0.9

    # The same pixels without the tag lie on their side: the frontal-face detector sees nobody.
    assert code_of(np.ascontiguousarray(np.asarray(stored)), "check") == "no_face"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["png-16-bit-grey", "png-palette", "jpeg-grey", "webp", "cmyk"])
def test_decodes_other_pixel_formats(kind: str, enrolled: dict[str, FaceAnalysis]) -> None:
    original = rgb_of("obama_1.jpg")
    picture = Image.fromarray(original)
    if kind == "png-16-bit-grey":
        grey = np.asarray(picture.convert("L"), dtype=np.uint16) * 257
        data = encode(Image.fromarray(grey), "PNG")
        assert Image.open(io.BytesIO(data)).mode.startswith("I")
    elif kind == "png-palette":
        data = encode(picture.quantize(256), "PNG")
    elif kind == "jpeg-grey":
        data = encode(picture.convert("L"), quality=95)
    elif kind == "webp":
        data = encode(picture, "WEBP", quality=90)
    else:
        data = encode(picture.convert("CMYK"), quality=95)

    rgb = decode_image(data)
    assert rgb.shape == (800, 640, 3)
    assert abs(rgb.mean() - original.mean()) < 10  # not clipped to white, nor black
    analysis = analyze(rgb, purpose="enrol")
    assert MODEL.score(analysis.encoding, enrolled["obama_1.jpg"].encoding) > 0.8


# --------------------------------------------------------------------------- analyze


@pytest.mark.slow
@pytest.mark.parametrize("name", SINGLE_FACE_PHOTOS)
def test_enrolment_accepts_a_clear_photo_of_one_face(
    name: str, enrolled: dict[str, FaceAnalysis]
) -> None:
    analysis = enrolled[name]
    assert analysis.encoding.shape == (MODEL.size,)
    assert analysis.encoding.dtype == np.float64
    assert len(analysis.landmarks) == 68
    assert analysis.upsample == 0
    quality = analysis.quality
    assert quality.face_count == 1
    assert quality.face_px == analysis.box.height >= ENROL_MIN_FACE_PX
    assert ENROL_MIN_BRIGHTNESS <= quality.brightness <= ENROL_MAX_BRIGHTNESS
    assert quality.blur >= ENROL_MIN_BLUR
    box = analysis.box
    xs = [x for x, _ in analysis.landmarks]
    assert box.left - 20 < min(xs) < max(xs) < box.right + 20


@pytest.mark.slow
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("obama_1.jpg", "obama_2.jpg"),
        ("obama_1.jpg", "obama_3.jpg"),
        ("obama_2.jpg", "obama_3.jpg"),
        ("biden_1.jpg", "biden_2.jpg"),
        ("obama_1.jpg", "rgba_32bit.png"),
    ],
)
def test_same_person_is_accepted(
    first: str, second: str, enrolled: dict[str, FaceAnalysis]
) -> None:
    measured = MODEL.score(enrolled[first].encoding, enrolled[second].encoding)
    assert MODEL.accepts(measured, THRESHOLD), measured


@pytest.mark.slow
@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("obama_1.jpg", "biden_1.jpg"),
        ("obama_2.jpg", "biden_2.jpg"),
        ("obama_1.jpg", "lin_manuel_miranda_1.jpg"),
        ("obama_3.jpg", "lin_manuel_miranda_1.jpg"),
        ("biden_1.jpg", "lin_manuel_miranda_1.jpg"),
    ],
)
def test_other_people_are_refused(
    first: str, second: str, enrolled: dict[str, FaceAnalysis]
) -> None:
    measured = MODEL.score(enrolled[first].encoding, enrolled[second].encoding)
    assert not MODEL.accepts(measured, THRESHOLD), measured
    assert not MODEL.accepts(measured, 0.3), measured  # even at the lenient end


@pytest.mark.slow
def test_two_people_are_refused_for_enrolment_and_checks() -> None:
    rgb = rgb_of("two_people.jpg")
    assert code_of(rgb, "enrol") == "multiple_faces"
    assert code_of(rgb, "check") == "multiple_faces"


@pytest.mark.slow
def test_no_face_is_refused() -> None:
    assert code_of(np.zeros((480, 640, 3), np.uint8), "check") == "no_face"
    wall = np.full((480, 640, 3), 200, np.uint8)
    assert code_of(wall, "enrol") == "no_face"


@pytest.mark.slow
def test_enrolment_refuses_a_tiny_face_found_by_the_upsampling_retry() -> None:
    tiny = altered("obama_1.jpg", lambda image: image.resize((160, 200), Image.Resampling.LANCZOS))
    assert code_of(tiny, "enrol") == "face_too_small"
    # A check takes it, and records that the fast pass missed it.
    analysis = analyze(tiny, purpose="check")
    assert analysis.upsample == 1
    assert analysis.quality.face_px < ENROL_MIN_FACE_PX


@pytest.mark.slow
def test_enrolment_refuses_a_blurred_face_that_a_check_accepts() -> None:
    blurred = altered("obama_1.jpg", lambda image: image.filter(ImageFilter.GaussianBlur(6)))
    assert code_of(blurred, "enrol") == "too_blurry"
    assert analyze(blurred, purpose="check").quality.blur < ENROL_MIN_BLUR


@pytest.mark.slow
@pytest.mark.parametrize(("factor", "code"), [(0.2, "too_dark"), (2.5, "too_bright")])
def test_enrolment_refuses_bad_light(factor: float, code: str) -> None:
    for name in ("obama_1.jpg", "biden_2.jpg"):
        changed = altered(name, lambda image: ImageEnhance.Brightness(image).enhance(factor))
        assert code_of(changed, "enrol") == code, name


@pytest.mark.slow
def test_sharpness_does_not_depend_on_light(enrolled: dict[str, FaceAnalysis]) -> None:
    dimmed = altered("obama_1.jpg", lambda image: ImageEnhance.Brightness(image).enhance(0.5))
    analysis = analyze(dimmed, purpose="enrol")
    assert analysis.quality.blur == pytest.approx(enrolled["obama_1.jpg"].quality.blur, rel=0.2)


def test_analyze_wants_an_rgb_uint8_array() -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        analyze(np.zeros((10, 10), np.uint8), purpose="check")
    with pytest.raises(ValueError, match="RGB uint8"):
        analyze(np.zeros((10, 10, 3), np.float64), purpose="check")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- compare and store


# --------------------------------------------------------------------------- bursts


@pytest.mark.slow
def test_burst_is_judged_on_its_best_frame(enrolled: dict[str, FaceAnalysis]) -> None:
    black = encode(np.zeros((480, 640, 3), np.uint8))
    result = best_of_burst(
        [black, read("obama_480p.jpg"), b"not a picture"],
        enrolled["obama_1.jpg"].encoding,
        model=MODEL,
        threshold=THRESHOLD,
    )
    assert result.passed
    assert result.code == "match"
    assert result.best_index == 1
    assert result.model == MODEL.name
    assert result.score is not None and result.score > 0.9
    assert [frame.code for frame in result.frames] == ["no_face", None, "not_an_image"]
    assert result.frames[0].dhash is not None and result.frames[2].dhash is None
    assert len(result.landmarks) == 1
    assert not result.multiple_faces_seen


@pytest.mark.slow
def test_burst_of_someone_else_does_not_match(enrolled: dict[str, FaceAnalysis]) -> None:
    result = best_of_burst(
        [read("biden_2.jpg"), read("lin_manuel_miranda_1.jpg")],
        enrolled["obama_1.jpg"].encoding,
        model=MODEL,
        threshold=THRESHOLD,
    )
    assert not result.passed
    assert result.code == "no_match"
    # Every frame was compared; the closest is reported.
    assert all(frame.score is not None for frame in result.frames)
    best = max(frame.score for frame in result.frames)
    assert result.score == best < THRESHOLD


@pytest.mark.slow
def test_burst_without_a_single_face_reports_why(enrolled: dict[str, FaceAnalysis]) -> None:
    reference = MODEL.from_bytes(MODEL.to_bytes(enrolled["obama_1.jpg"].encoding))
    black = encode(np.zeros((480, 640, 3), np.uint8))
    two = read("two_people.jpg")
    judge = {"model": MODEL, "threshold": THRESHOLD}

    nobody = best_of_burst([black, black], reference, **judge)
    assert (nobody.passed, nobody.code, nobody.score) == (False, "no_face", None)

    crowded = best_of_burst([black, two], reference, **judge)
    assert (crowded.passed, crowded.code) == (False, "multiple_faces")

    # Someone else in one frame does not sink a burst another frame matched, but it shows.
    shared = best_of_burst([two, read("obama_480p.jpg")], reference, **judge)
    assert shared.passed
    assert shared.multiple_faces_seen


def test_burst_needs_frames_within_the_limit() -> None:
    with pytest.raises(ValueError):
        best_of_burst([], np.zeros(512), model=MODEL, threshold=THRESHOLD)
    with pytest.raises(ValueError):
        best_of_burst([b""] * 3, np.zeros(512), model=MODEL, threshold=THRESHOLD, max_frames=2)


@pytest.mark.slow
def test_a_burst_stops_encoding_at_the_first_frame_that_matches(
    enrolled: dict[str, FaceAnalysis],
) -> None:
    frames = [read("biden_2.jpg"), read("obama_480p.jpg"), read("obama_2.jpg"), read("obama_3.jpg")]
    result = best_of_burst(
        frames, enrolled["obama_1.jpg"].encoding, model=MODEL, threshold=THRESHOLD
    )
    assert result.passed and result.best_index == 1
    assert [frame.score is not None for frame in result.frames] == [True, True, False, False]
    # Liveness still gets the landmarks of every frame with one face.
    assert len(result.landmarks) == 4
    assert all(frame.analysis.encoding is None for frame in result.frames[2:])


# --------------------------------------------------------------------------- liveness


def closed_eyes(points: Landmarks, amount: float) -> Landmarks:
    """The same face with both upper eyelids lowered ``amount`` of the way to the lower ones."""
    moved = np.array(points, dtype=np.float64)
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        moved[upper] += amount * (moved[lower] - moved[upper])
    return as_landmarks(moved)


# Depth of the nose points in front of the eye-mouth plane, in outer-eye-corner widths, after
# the usual 3D face model (nose tip ~2.8 cm in front of eye corners ~9 cm apart).
NOSE_DEPTH = {
    27: 0.1,
    28: 0.15,
    29: 0.22,
    30: 0.3,
    31: 0.12,
    32: 0.18,
    33: 0.22,
    34: 0.18,
    35: 0.12,
}


def turned(points: Landmarks, degrees: float) -> Landmarks:
    """The face turned about a vertical axis, seen from the front (orthographic): positive is
    towards the subject's left, which moves the nose to the image's right."""
    moved = np.array(points, dtype=np.float64)
    width = float(np.linalg.norm(moved[45] - moved[36]))
    centre = (moved[36, 0] + moved[45, 0]) / 2.0
    angle = math.radians(degrees)
    for index in range(68):
        depth = NOSE_DEPTH.get(index, 0.0) * width
        moved[index, 0] = centre + (moved[index, 0] - centre) * math.cos(angle)
        moved[index, 0] += depth * math.sin(angle)
    return as_landmarks(moved)


def moved_in_plane(
    points: Landmarks, degrees: float, sx: float = 1.0, sy: float = 1.0
) -> Landmarks:
    """The landmarks squeezed then turned in the image plane about their centre, plus a shift."""
    array = np.array(points, dtype=np.float64)
    centre = array.mean(axis=0)
    angle = math.radians(degrees)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = ((array - centre) * [sx, sy]) @ rotation.T + centre + [12.0, -7.0]
    return as_landmarks(moved)


def as_landmarks(array: np.ndarray) -> Landmarks:
    return tuple((float(x), float(y)) for x, y in array)


@pytest.fixture(scope="module")
def frontal(enrolled: dict[str, FaceAnalysis]) -> Landmarks:
    return enrolled["obama_1.jpg"].landmarks


@pytest.mark.slow
def test_a_burst_of_one_still_photo_fails_every_challenge() -> None:
    landmarks = analyze(rgb_of("obama_480p.jpg"), purpose="check").landmarks
    for challenge in CHALLENGES:
        result = liveness([landmarks] * 5, challenge)
        assert not result.passed
        assert result.score == pytest.approx(0.0, abs=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["obama_1.jpg", "biden_2.jpg"])
def test_a_printed_photo_turned_and_tilted_fails_every_challenge(name: str) -> None:
    photo = rgb_of(name)
    frames = [
        photo,
        warp(photo, degrees=-8),
        warp(photo, degrees=4, sx=0.75),  # turned about its vertical axis
        warp(photo, degrees=10, sy=0.8),  # tipped back
        warp(photo, degrees=-12, sx=0.8, sy=0.85),
        keystone(photo, 0.08),
    ]
    landmarks = [analyze(frame, purpose="check").landmarks for frame in frames]
    for challenge in CHALLENGES:
        result = liveness(landmarks, challenge)
        assert not result.passed, (challenge, result)


def test_a_blink_passes(frontal: Landmarks) -> None:
    frames = [frontal, closed_eyes(frontal, 0.3), closed_eyes(frontal, 0.85), frontal]
    result = liveness(frames, "blink")
    assert result.passed
    assert result.reason == "ok"
    assert result.score > 0.6
    assert not liveness(frames, "turn_left").passed


def test_a_blink_passes_while_the_head_moves(frontal: Landmarks) -> None:
    frames = [
        frontal,
        moved_in_plane(frontal, 6, 0.95, 1.0),
        moved_in_plane(closed_eyes(frontal, 0.85), -10, 1.1, 0.9),
        moved_in_plane(frontal, 3),
    ]
    assert liveness(frames, "blink").passed


def test_half_closed_eyes_are_no_blink(frontal: Landmarks) -> None:
    frames = [frontal, closed_eyes(frontal, 0.25), frontal]
    result = liveness(frames, "blink")
    assert (result.passed, result.reason) == (False, "no_blink")


def test_eyelids_moved_with_the_whole_picture_are_no_blink(frontal: Landmarks) -> None:
    # A photo tipped back squeezes the eyes' height, and with it everything else.
    frames = [frontal, moved_in_plane(frontal, 0, 1.0, 0.5), moved_in_plane(frontal, 20, 1.0, 0.6)]
    assert not liveness(frames, "blink").passed


@pytest.mark.parametrize("challenge", ["turn_left", "turn_right"])
def test_a_head_turn_passes_only_the_asked_direction(frontal: Landmarks, challenge: str) -> None:
    sign = 1 if challenge == "turn_left" else -1
    frames = [frontal, turned(frontal, sign * 12), turned(frontal, sign * 30)]
    result = liveness(frames, challenge)  # type: ignore[arg-type]
    assert result.passed, result
    assert result.score > 0.1
    other = "turn_right" if challenge == "turn_left" else "turn_left"
    wrong = liveness(frames, other)  # type: ignore[arg-type]
    assert (wrong.passed, wrong.reason) == (False, "wrong_direction")
    assert not liveness(frames, "blink").passed


def test_turns_are_measured_in_the_faces_own_frame(frontal: Landmarks) -> None:
    # Upside down and tilted, the subject's left is still their left.
    frames = [
        moved_in_plane(frontal, 180),
        moved_in_plane(turned(frontal, 15), 170),
        moved_in_plane(turned(frontal, 30), 200, 0.9, 1.0),
    ]
    assert liveness(frames, "turn_left").passed
    assert not liveness(frames, "turn_right").passed


def test_in_plane_rotation_and_squeeze_are_no_turn(frontal: Landmarks) -> None:
    frames = [
        moved_in_plane(frontal, degrees, sx) for degrees, sx in ((0, 1), (-20, 0.7), (25, 0.6))
    ]
    for challenge in ("turn_left", "turn_right"):
        result = liveness(frames, challenge)  # type: ignore[arg-type]
        assert (result.passed, result.reason) == (False, "no_turn")


def test_coming_back_from_the_other_side_is_no_turn(frontal: Landmarks) -> None:
    frames = [turned(frontal, -30), turned(frontal, -15), frontal]
    assert not liveness(frames, "turn_left").passed


def test_liveness_needs_enough_frames_of_68_points(frontal: Landmarks) -> None:
    result = liveness([frontal, closed_eyes(frontal, 0.9)], "blink")
    assert (result.passed, result.reason) == (False, "too_few_frames")
    with pytest.raises(ValueError):
        liveness([frontal[:5]] * 3, "blink")


# --------------------------------------------------------------------------- replay


def test_a_re_encoded_snapshot_is_a_near_duplicate() -> None:
    original = rgb_of("obama_480p.jpg")
    again = decode_image(encode(original, quality=70))
    smaller = decode_image(encode(Image.fromarray(original).resize((427, 240)), quality=80))
    first = near_duplicate_hash(original)
    assert 0 <= first < 2**64
    assert hamming(first, near_duplicate_hash(again)) <= NEAR_DUPLICATE_MAX_BITS
    assert is_near_duplicate(first, near_duplicate_hash(smaller))


def test_another_photo_of_the_same_person_is_not_a_near_duplicate() -> None:
    first = near_duplicate_hash(rgb_of("obama_1.jpg"))
    for other in ("obama_2.jpg", "obama_3.jpg", "biden_2.jpg"):
        assert not is_near_duplicate(first, near_duplicate_hash(rgb_of(other))), other


def test_hamming_counts_differing_bits() -> None:
    assert hamming(0, 0) == 0
    assert hamming(0, 2**64 - 1) == 64
    assert hamming(0b1011, 0b0001) == 2
