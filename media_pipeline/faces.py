"""Face steps for identity checks: decode, detect, quality gates, encode, compare, liveness.

Everything here is pure: bytes and arrays in, dataclasses out; no Flask, no database. Failures
a trainee can act on raise ``FaceError`` with a stable ``code`` the app can show or translate.

Detection and landmarks are dlib's: the HOG frontal-face detector and the 68-point shape
predictor (the model files of ``face_recognition_models``). Turning a face into numbers and
comparing them is the job of a ``face_models.FaceModel``; scores and thresholds are in that
model's terms. dlib's objects and OpenCV's networks are not safe to share between threads
(concurrent calls crashed the server and returned "225 faces found"), so every call into a
model runs under one lock per process. dlib holds the GIL while it works, so the lock costs
no throughput; run several processes to use several cores (``tools/bench_faces.py``).

Images are arrays of shape (height, width, 3), RGB, ``uint8``. Landmarks are dlib's 68 points
(the iBUG 300-W order) in image pixels. Directions follow the unmirrored camera image: the
subject's own left appears on the right of the image. A browser preview is usually mirrored
for the user's comfort; the snapshots sent here must not be, or ``turn_left`` and
``turn_right`` swap.
"""

from __future__ import annotations

import io
import math
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple, cast

import cv2
import dlib
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from media_pipeline import face_models
from media_pipeline.face_models import Encoding, FaceModel
from media_pipeline.limits import MAX_BURST_FRAMES, MAX_IMAGE_BYTES

__all__ = [
    "BLINK_MIN_DROP",
    "ENROL_MAX_BRIGHTNESS",
    "ENROL_MIN_BLUR",
    "ENROL_MIN_BRIGHTNESS",
    "ENROL_MIN_FACE_PX",
    "LIVENESS_MIN_FRAMES",
    "MAX_BURST_FRAMES",
    "MAX_DECODE_PIXELS",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "NEAR_DUPLICATE_MAX_BITS",
    "SAME_PICTURE_MAX_RESIDUAL",
    "SAME_PICTURE_MAX_SHIFT",
    "SAME_PICTURE_MIN_STD",
    "TURN_MIN_SHIFT",
    "UPSAMPLE_RETRY_MAX_SIDE",
    "WORKING_MAX_PIXELS",
    "WORKING_MAX_SIDE",
    "Box",
    "BurstCode",
    "BurstFrame",
    "BurstResult",
    "Challenge",
    "FaceAnalysis",
    "FaceError",
    "FaceErrorCode",
    "Landmarks",
    "LivenessReason",
    "LivenessResult",
    "PictureDifference",
    "Point",
    "Purpose",
    "Quality",
    "RgbImage",
    "analyze",
    "best_of_burst",
    "decode_image",
    "encode",
    "hamming",
    "is_near_duplicate",
    "liveness",
    "near_duplicate_hash",
    "picture_difference",
    "same_picture",
]

FaceErrorCode = Literal[
    "not_an_image",
    "image_too_large",
    "no_face",
    "multiple_faces",
    "face_too_small",
    "too_blurry",
    "too_dark",
    "too_bright",
]
Purpose = Literal["enrol", "check"]
Challenge = Literal["blink", "turn_left", "turn_right"]
BurstCode = Literal["match", "no_match"] | FaceErrorCode
LivenessReason = Literal["ok", "too_few_frames", "no_blink", "no_turn", "wrong_direction"]

RgbImage = npt.NDArray[np.uint8]
_Sample = npt.NDArray[np.float32]
Point = tuple[float, float]
Landmarks = tuple[Point, ...]
"""dlib's 68 face points in image pixels: jaw 0-16, brows 17-26, nose 27-35, the eye on the
image's left 36-41, the other eye 42-47, mouth 48-67."""

# --------------------------------------------------------------------------- limits

# MAX_IMAGE_BYTES and MAX_BURST_FRAMES live in media_pipeline.limits, shared with the app.
# What a header may declare at all.
MAX_IMAGE_PIXELS: Final = 40_000_000
# What may be decoded into memory: a JPEG is decoded reduced by libjpeg (1/2, 1/4 or 1/8,
# nearly free), so a 40-megapixel one decodes as about 2.5; a PNG or WebP is decoded whole
# and may have at most this many pixels (a 1080p frame has 2.1 million), else it is refused.
# Twelve 40-megapixel PNG frames once held a web thread for 22 s.
MAX_DECODE_PIXELS: Final = 4_200_000
# Photos are shrunk to this longest side, and to at most WORKING_MAX_PIXELS, before
# detection: a phone's 12 MP photo takes ~1 s to scan at full size and its face is still
# several hundred pixels tall at 1280 x 720. No frame costs more than a 1080p frame.
WORKING_MAX_SIDE: Final = 1280
WORKING_MAX_PIXELS: Final = 1280 * 720
# Upsampling doubles each side (4x the detection time); only worth it on webcam-sized frames.
# On larger images a face that needs it is far too small to use anyway.
UPSAMPLE_RETRY_MAX_SIDE: Final = 1024
_ACCEPTED_FORMATS: Final = ("JPEG", "PNG", "WEBP")

# --------------------------------------------------------------------------- quality gates
# Measured on the test photos (tests/data/faces, 640 px wide) and altered copies of them.

# HOG boxes come in steps of ~1.2 (72, 86, 104, 124, 149, 179 ... px). The encodings of faces
# 86 px and up stay within 0.03-0.08 of the same photo at full size; at 72 px they drift
# 0.09-0.14 and at 44-52 px 0.18-0.23, a third of the match threshold.
ENROL_MIN_FACE_PX: Final = 80
# Mean luma (0-255) of the face box. Good photos: 110-148. Darkened to 20 %: 24-29, to 30 %:
# 36-44. Kept low on purpose: a well-lit dark-skinned face has a low mean luma too.
ENROL_MIN_BRIGHTNESS: Final = 40.0
# Brightened 2x: 202-234; 2.5x (washed out): 230-245.
ENROL_MAX_BRIGHTNESS: Final = 225.0
# Variance of the Laplacian of the face box resized to BLUR_SAMPLE_PX square and stretched to a
# standard deviation of BLUR_SAMPLE_STD grey levels, so it measures sharpness, not contrast or
# light (a darkened copy keeps its score). Test photos: 64-388 (the softest: obama_3 and the
# studio portrait lin_manuel_miranda_1). Gaussian blur radius 2 px: 10-23; radius 4: 2-7.
ENROL_MIN_BLUR: Final = 30.0
BLUR_SAMPLE_PX: Final = 128
BLUR_SAMPLE_STD: Final = 32.0

# --------------------------------------------------------------------------- replay

# dHash bits two snapshots may differ by and still count as the same picture. The test photos
# re-encoded as JPEG quality 90 to 30 or halved: 0-5 bits; any two different photos: 15 and up
# (another photo of the same person: 21+). But a real video's frames 40 ms apart: median 1 bit,
# 1 s apart: median 23, 6 % within 6, so frames of one burst are near-duplicates by nature; a
# new capture of a still scene (moved 1 %, brighter, noisy) once lay 3 bits from the earlier
# one, and a different person's frame 4. So a hit is a candidate, not a replay: it fails no one
# until ``same_picture`` confirms it.
NEAR_DUPLICATE_MAX_BITS: Final = 6

# ``same_picture``: both pictures grey, resized to _REPLAY_SAMPLE_PX square (INTER_AREA) and
# standardised (zero mean, unit variance), which takes out rescaling and a uniform change of
# light or contrast. Measured by tools/bench_replay.py pictures on the frames of
# tests/data/media/short_hamilton_clip.mp4 (10 a second, as JPEG quality 85) whose hashes hit
# another frame's 0.1-3 s away, and on the test photos (tests/data/faces*). "Copies": JPEG
# quality 30-95, PNG, WebP, brightness x0.95/x1.05, contrast x1.05, rescaled by 0.5-2x with
# OpenCV (area, linear, cubic, Lanczos) or Pillow (box, bilinear, bicubic, Lanczos, nearest),
# kept or scaled back, then JPEG 85, or halved and JPEG 30. "New captures": the same frame or
# photo with camera noise (sigma 3-8), moved 1 % and 10 % brighter. Taking each measure over
# its limit and the larger of the two, copies come to 0.58 at most (0.82 with Pillow's
# nearest); new captures to 2.5 and more, frames moved 0.5 % to 1.3, a head moved 2 % of the
# width to 1.75 (1 %: 1.07), hit frames 0.3-3 s apart to 2.4 (0.1-0.2 s: 0.98, 1 of 91 under
# 1), other photos to 8.
#
# Largest RMS difference over a 4 x 4 grid of tiles of the samples at half size (a change in
# one part of the frame counts in full, and halving averages away most of what JPEG leaves).
# Copies: 0-0.10 (Pillow's nearest: 0.17, OpenCV's: 0.27); new captures: 0.16-1.53 (the
# soft 250 px photos of tests/data/faces-east-asian change least: shift catches them); hit
# frames 0.6-3 s apart: 0.57-2.39 (0.3-0.5 s: 0.22 up, 0.1-0.2 s: 0.08 up); another photo of
# the same person: 0.65 up, of anyone else: 0.78 up.
SAME_PICTURE_MAX_RESIDUAL: Final = 0.25
# How far the part of the picture that moved most moved, as a fraction of its side (see
# ``_shift``: the largest of 8 x 8 tiles' moves). Copies: 0-0.0017 (Pillow's nearest: 0.0025;
# OpenCV's INTER_NEAREST, which samples off-centre: 0.0053); moved 0.25 %: 0.0019-0.0043,
# 0.5 %: 0.0038-0.0066, 1 % with the noise and light above: 0.0076-0.0129; the middle third of
# the frame (the head) moved 1 % of the width: 0.0031-0.0123, 2 %: 0.0053-0.028; hit frames
# 0.6-3 s apart: 0.012-0.044 (0.3-0.5 s: 0.0073 up, 0.1-0.2 s: 0.0029 up).
SAME_PICTURE_MAX_SHIFT: Final = 0.003
# Grey-level standard deviation of a sample below which the picture is too flat to compare (a
# covered camera's 640 x 480 frame with noise of sigma 8: 1.2); a flat picture is the same as
# no other. Video frames: 21-49; photos: 38-87.
SAME_PICTURE_MIN_STD: Final = 2.0
_REPLAY_SAMPLE_PX: Final = 128
_REPLAY_RESIDUAL_TILES: Final = 4  # a side, on the sample halved: 16 x 16 of its pixels each
_REPLAY_SHIFT_TILES: Final = 8  # a side: 16 x 16 sample pixels each
_REPLAY_SHIFT_BLUR_PX: Final = 1.0
# Squared gradient per sample pixel added to each tile's sums in both directions (the test
# pictures have 0.007-0.074 side to side, median 0.047): the larger, the smaller the moves that
# tiles with little texture report, those of copies' JPEG noise and real ones alike.
_REPLAY_SHIFT_PRIOR: Final = 0.01

# --------------------------------------------------------------------------- liveness

LIVENESS_MIN_FRAMES: Final = 3
# Blink: the eye aspect ratio (Soukupova and Cech, 2016) of the most closed frame must be at
# least this fraction below the most open one (open eyes: 0.2-0.43 in the test photos; a closed
# eye's is under 0.1). The ratio is measured after mapping each frame onto the first with the
# affine transform that best fits its eye and mouth corners, so a printed photo turned, tilted
# or bent (an affine change of the picture) keeps its ratio up to landmark jitter. Measured
# on the test photos rotated by up to 15 degrees, squeezed to 70 %, sheared and put in
# perspective: drops of 0.04-0.26 for faces of 180-260 px, up to 0.34 for an 86 px face.
BLINK_MIN_DROP: Final = 0.5
# Turn: how far the nose tip moves towards the asked side, as a fraction of the distance
# between the outer eye corners, after the same alignment. Eye and mouth corners are near one
# plane and the nose tip stands ~2.5 cm in front of it, so a head turned by an angle a moves it
# by about 0.3 tan(a) (0.08 at 15 degrees, 0.11 at 20, 0.17 at 30); the same photos moved as
# above: 0.00-0.03 (landmark jitter).
TURN_MIN_SHIFT: Final = 0.10

# Indices into the 68 points.
_ANCHORS: Final = (36, 39, 42, 45, 48, 54)  # eye and mouth corners: move with the head only
_NOSE: Final = (30, 33)  # tip and base of the nose, on the midline, in front of the anchors
_EYE_A: Final = (36, 37, 38, 39, 40, 41)
_EYE_B: Final = (42, 43, 44, 45, 46, 47)
_OUTER_EYE_CORNERS: Final = (36, 45)


class FaceError(Exception):
    """A face step failed for a reason the caller can act on; ``code`` is stable."""

    def __init__(self, code: FaceErrorCode, message: str) -> None:
        # Both in args, so the error survives pickling by job queues.
        super().__init__(code, message)
        self.code: FaceErrorCode = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class Box(NamedTuple):
    """A face box in image pixels, in face_recognition's (top, right, bottom, left) order."""

    top: int
    right: int
    bottom: int
    left: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left


@dataclass(frozen=True, slots=True)
class Quality:
    """Measures of the face box: height in pixels, sharpness, mean luma, faces in the image."""

    face_px: int
    blur: float
    brightness: float
    face_count: int


@dataclass(frozen=True, slots=True, eq=False)
class FaceAnalysis:
    """The one face found in an image. ``upsample`` is the detector's upsampling that found it:
    1 when the fast pass (0) found nothing and the image was small enough to retry."""

    box: Box
    encoding: Encoding | None  # None when asked not to encode (``analyze(..., model=None)``)
    landmarks: Landmarks
    quality: Quality
    upsample: int


@dataclass(frozen=True, slots=True)
class BurstFrame:
    """One snapshot of a burst: ``code`` is None when exactly one face was found, else why not;
    ``dhash`` is None only when the bytes were not a usable image. ``score`` is None for a
    frame with one face that was not compared, because an earlier frame already matched."""

    index: int
    code: FaceErrorCode | None
    message: str
    score: float | None
    analysis: FaceAnalysis | None
    dhash: int | None


@dataclass(frozen=True, slots=True)
class BurstResult:
    """A burst judged on its frames with one face: the first that matches, else the closest.

    ``code`` is ``match`` or ``no_match`` when some frame had one face, else the most telling
    frame error (``multiple_faces`` before ``no_face`` before image errors). ``score`` and
    ``threshold`` are in the terms of ``model`` (the name of the model that compared).
    """

    passed: bool
    code: BurstCode
    score: float | None
    best_index: int | None
    threshold: float
    model: str
    frames: tuple[BurstFrame, ...]

    @property
    def multiple_faces_seen(self) -> bool:
        """Some frame showed several faces (someone else at the screen), even if another
        frame matched."""
        return any(frame.code == "multiple_faces" for frame in self.frames)

    @property
    def landmarks(self) -> list[Landmarks]:
        """Landmarks of the frames with one face, in order: the input of ``liveness``."""
        return [frame.analysis.landmarks for frame in self.frames if frame.analysis is not None]


@dataclass(frozen=True, slots=True)
class LivenessResult:
    """``score`` is the eye-closing drop (blink) or the nose shift (turns); see the constants."""

    passed: bool
    score: float
    reason: LivenessReason


@dataclass(frozen=True, slots=True)
class PictureDifference:
    """How far one picture is from another once size, brightness and contrast are taken out.

    ``residual`` is the largest RMS difference of the standardised grey samples over a 4 x 4
    grid of tiles; ``shift`` how far the part of the picture that moved most moved, as a
    fraction of its side. Both are infinite when either picture is too flat to compare
    (``SAME_PICTURE_MIN_STD``).
    """

    residual: float
    shift: float


# --------------------------------------------------------------------------- decode


def decode_image(
    data: bytes,
    *,
    max_bytes: int = MAX_IMAGE_BYTES,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_side: int = WORKING_MAX_SIDE,
    max_working_pixels: int = WORKING_MAX_PIXELS,
) -> RgbImage:
    """Decode a JPEG, PNG or WebP photo into an RGB array, upright, with its longest side at
    most ``max_side`` and at most ``max_working_pixels`` pixels.

    EXIF orientation is applied; transparency is laid on white; 16-bit, palette and grey
    images become 8-bit RGB. The size in the header is checked before any pixel is decoded.
    Raises ``FaceError`` with ``image_too_large`` (more than ``max_bytes`` or ``max_pixels``,
    or a PNG or WebP over ``MAX_DECODE_PIXELS``) or ``not_an_image`` (another format such as
    GIF or SVG, an animation, damaged or cut-off data).
    """
    if len(data) > max_bytes:
        raise FaceError(
            "image_too_large", f"the image is {len(data)} bytes, more than the {max_bytes} allowed"
        )
    if not data:
        raise FaceError("not_an_image", "the file is empty")
    try:
        # Pillow refuses headers over twice its MAX_IMAGE_PIXELS with an error and warns above
        # it; under "warnings as errors" the warning is raised, and caught here all the same.
        image = Image.open(io.BytesIO(data), formats=_ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise FaceError("image_too_large", "the image has too many pixels") from exc
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as exc:
        raise FaceError("not_an_image", "not a JPEG, PNG or WebP photo") from exc
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise FaceError(
                "image_too_large",
                f"the image is {width}x{height} pixels, more than the {max_pixels} allowed",
            )
        if width < 1 or height < 1:
            raise FaceError("not_an_image", "the image has no pixels")
        # A phone's JPEG may be an MPO: the photo first, then previews or depth maps.
        is_jpeg = image.format in ("JPEG", "MPO")
        if not is_jpeg and getattr(image, "is_animated", False):
            raise FaceError("not_an_image", "an animated image is not a photo")
        scale = _working_scale(width, height, max_side, max_working_pixels)
        if is_jpeg and scale < 1:
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the photo is much larger than
            # needed: less memory and time; the result is still at least the working size.
            image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
        if image.size[0] * image.size[1] > MAX_DECODE_PIXELS:
            raise FaceError(
                "image_too_large",
                f"the image is {width}x{height} pixels; a PNG or WebP may have at most "
                f"{MAX_DECODE_PIXELS} (send a JPEG, or a smaller picture)",
            )
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise FaceError("image_too_large", "the image has too many pixels") from exc
        except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as exc:
            raise FaceError("not_an_image", "the image data is damaged or incomplete") from exc
    rgb = _to_rgb(upright)
    scale = _working_scale(rgb.width, rgb.height, max_side, max_working_pixels)
    if scale < 1:
        size = (max(1, int(rgb.width * scale)), max(1, int(rgb.height * scale)))
        rgb = rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def _working_scale(width: int, height: int, max_side: int, max_pixels: int) -> float:
    return min(1.0, max_side / max(width, height), math.sqrt(max_pixels / (width * height)))


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16L", "I;16B", "I"):
        # 16-bit grey: Pillow's own conversion clips at 255 (a white picture); scale instead.
        grey = np.asarray(image, dtype=np.float64)
        top = 65535.0 if grey.max(initial=0.0) > 255 else 255.0
        grey8 = np.clip(np.rint(grey * (255.0 / top)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey8).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


# --------------------------------------------------------------------------- analyze

# dlib's detector, shape predictor and every face model are called under this lock: none of
# them may be used from two threads at once. One set per process, loaded on first use.
_engine_lock = threading.Lock()
# dlib ships no types: its detector and predictor are Any to the type checker.
_dlib_objects: tuple[Any, Any] | None = None


def _detector_and_predictor() -> tuple[Any, Any]:
    global _dlib_objects
    if _dlib_objects is None:
        files = face_models._dlib_model_files()
        _dlib_objects = (
            dlib.get_frontal_face_detector(),
            dlib.shape_predictor(files.pose_predictor_model_location()),
        )
    return _dlib_objects


def analyze(
    rgb: RgbImage,
    *,
    purpose: Purpose,
    model: FaceModel | None,
    upsample: int = 0,
) -> FaceAnalysis:
    """Find the one face in ``rgb``, measure it, take its 68 landmarks and, with a ``model``,
    encode it (``model=None``: landmarks only, for frames liveness needs but no comparison).

    Detection runs with ``upsample`` (0: fastest, finds faces from ~70 px); when that finds
    nothing on an image no larger than ``UPSAMPLE_RETRY_MAX_SIDE``, it retries once with 1
    (faces from ~40 px). Both purposes refuse ``no_face`` and ``multiple_faces``; ``enrol``
    also refuses ``face_too_small``, ``too_dark``, ``too_bright`` and ``too_blurry`` (in that
    order), since every later check is compared with the enrolled face. Safe to call from
    several threads: the model work is serialised.
    """
    image = _checked_rgb(rgb)
    if upsample < 0:
        raise ValueError("upsample must be 0 or more")
    with _engine_lock:
        boxes, used_upsample = _detect(image, upsample)
        if not boxes:
            raise FaceError("no_face", "no face found")
        if len(boxes) > 1:
            raise FaceError("multiple_faces", f"{len(boxes)} faces found; only one person please")
        box = boxes[0]
        quality = _measure(image, box, face_count=len(boxes))
        if purpose == "enrol":
            _enrol_gates(quality)
        landmarks = _landmarks(image, box)
        encoding = model.embed(image, box, landmarks) if model is not None else None
    return FaceAnalysis(
        box=box, encoding=encoding, landmarks=landmarks, quality=quality, upsample=used_upsample
    )


def encode(rgb: RgbImage, analysis: FaceAnalysis, model: FaceModel) -> Encoding:
    """The encoding of a face ``analyze`` found without encoding it."""
    image = _checked_rgb(rgb)
    with _engine_lock:
        return model.embed(image, analysis.box, analysis.landmarks)


def _checked_rgb(rgb: RgbImage) -> RgbImage:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 array of shape (h, w, 3), got {rgb.shape}")
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError("the image has no pixels")
    return np.ascontiguousarray(rgb)


def _detect(rgb: RgbImage, upsample: int) -> tuple[list[Box], int]:
    boxes = _face_locations(rgb, upsample)
    if not boxes and upsample == 0 and max(rgb.shape[:2]) <= UPSAMPLE_RETRY_MAX_SIDE:
        return _face_locations(rgb, 1), 1
    return boxes, upsample


def _face_locations(rgb: RgbImage, upsample: int) -> list[Box]:
    detector, _ = _detector_and_predictor()
    height, width = rgb.shape[:2]
    boxes = []
    for rect in detector(rgb, upsample):
        # Clipped to the image; one clipped to nothing is no face.
        box = Box(
            top=max(int(rect.top()), 0),
            right=min(int(rect.right()), width),
            bottom=min(int(rect.bottom()), height),
            left=max(int(rect.left()), 0),
        )
        if box.height > 0 and box.width > 0:
            boxes.append(box)
    return boxes


def _measure(rgb: RgbImage, box: Box, *, face_count: int) -> Quality:
    crop = rgb[box.top : box.bottom, box.left : box.right]
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    brightness = float(grey.mean())
    sample = cv2.resize(
        grey, (BLUR_SAMPLE_PX, BLUR_SAMPLE_PX), interpolation=cv2.INTER_AREA
    ).astype(np.float64)
    spread = max(float(sample.std()), 1.0)  # a flat crop stays flat rather than dividing by 0
    normalised = (sample - sample.mean()) * (BLUR_SAMPLE_STD / spread)
    blur = float(cv2.Laplacian(normalised, cv2.CV_64F).var())
    return Quality(face_px=box.height, blur=blur, brightness=brightness, face_count=face_count)


def _enrol_gates(quality: Quality) -> None:
    if quality.face_px < ENROL_MIN_FACE_PX:
        raise FaceError(
            "face_too_small",
            f"the face is {quality.face_px} px tall; come closer (at least {ENROL_MIN_FACE_PX})",
        )
    if quality.brightness < ENROL_MIN_BRIGHTNESS:
        raise FaceError("too_dark", f"the face is too dark (luma {quality.brightness:.0f})")
    if quality.brightness > ENROL_MAX_BRIGHTNESS:
        raise FaceError("too_bright", f"the face is too bright (luma {quality.brightness:.0f})")
    if quality.blur < ENROL_MIN_BLUR:
        raise FaceError("too_blurry", f"the face is blurred (sharpness {quality.blur:.0f})")


def _landmarks(rgb: RgbImage, box: Box) -> Landmarks:
    _, predictor = _detector_and_predictor()
    shape = predictor(rgb, dlib.rectangle(box.left, box.top, box.right, box.bottom))
    return tuple((float(point.x), float(point.y)) for point in shape.parts())


# --------------------------------------------------------------------------- bursts

_BURST_ERROR_ORDER: Final[tuple[FaceErrorCode, ...]] = (
    "multiple_faces",
    "no_face",
    "image_too_large",
    "not_an_image",
)


def best_of_burst(
    frames: Sequence[bytes],
    reference_encoding: Encoding | Sequence[float],
    *,
    model: FaceModel,
    threshold: float,
    max_frames: int = MAX_BURST_FRAMES,
) -> BurstResult:
    """Check a burst of webcam snapshots against the enrolled encoding (made by ``model``).

    Every frame is decoded and analysed as a check (liveness needs the landmarks of each),
    but frames are only encoded until one matches: the burst passes on the first frame with
    exactly one face within ``threshold``, so one frame caught mid-blink, turned away or black
    does not sink it. Without a match the closest frame is reported. Frames with several faces
    are reported (``multiple_faces_seen``) but do not fail a burst another frame matched: that
    is the caller's policy.
    """
    if not frames:
        raise ValueError("a burst needs at least one frame")
    if len(frames) > max_frames:
        raise ValueError(f"a burst has at most {max_frames} frames, got {len(frames)}")
    reference = model.check_encoding(reference_encoding)
    model.check_threshold(threshold)
    results: list[BurstFrame] = []
    matched: BurstFrame | None = None
    for index, data in enumerate(frames):
        frame = _burst_frame(index, data, reference, None if matched else model)
        if matched is None and frame.score is not None and model.accepts(frame.score, threshold):
            matched = frame
        results.append(frame)
    scored = [frame for frame in results if frame.score is not None]
    if scored:
        best = matched
        if best is None:
            best = scored[0]
            for frame in scored[1:]:
                if model.closer(cast(float, frame.score), cast(float, best.score)):
                    best = frame
        return BurstResult(
            passed=matched is not None,
            code="match" if matched is not None else "no_match",
            score=best.score,
            best_index=best.index,
            threshold=threshold,
            model=model.name,
            frames=tuple(results),
        )
    codes = {frame.code for frame in results}
    code: FaceErrorCode = next((c for c in _BURST_ERROR_ORDER if c in codes), "no_face")
    return BurstResult(
        passed=False,
        code=code,
        score=None,
        best_index=None,
        threshold=threshold,
        model=model.name,
        frames=tuple(results),
    )


def _burst_frame(
    index: int, data: bytes, reference: Encoding, model: FaceModel | None
) -> BurstFrame:
    try:
        rgb = decode_image(data)
    except FaceError as exc:
        return BurstFrame(index, exc.code, exc.message, None, None, None)
    dhash = near_duplicate_hash(rgb)
    try:
        analysis = analyze(rgb, purpose="check", model=model)
    except FaceError as exc:
        return BurstFrame(index, exc.code, exc.message, None, None, dhash)
    if model is None or analysis.encoding is None:
        return BurstFrame(index, None, "", None, analysis, dhash)
    return BurstFrame(index, None, "", model.score(analysis.encoding, reference), analysis, dhash)


# --------------------------------------------------------------------------- liveness


def liveness(frames_landmarks: Sequence[Landmarks], challenge: Challenge) -> LivenessResult:
    """Did the face in a burst do what was asked, in a way a photo held up to the camera can't?

    ``frames_landmarks`` are the 68 points of each frame with one face, in capture order.
    Every frame is first mapped onto the first one by the affine transform that best fits its
    eye and mouth corners; that cancels any in-plane rotation, scaling, tilting or bending of
    a printed photo. What is left is movement a flat picture does not make:

    * ``blink``: the eyes' aspect ratio drops by ``BLINK_MIN_DROP`` (of the most open frame)
      in some frame; score = the drop.
    * ``turn_left`` / ``turn_right``: the subject's own left or right, on the unmirrored
      image (their left is the image's right). The nose tip, which stands in front of the
      eye-mouth plane, moves towards that side by ``TURN_MIN_SHIFT`` of the eye width, and
      ends up at least that far on that side of the eyes' midline; score = the smaller.

    A burst of one still photo, however moved, scores ~0. Two different photos (eyes open,
    eyes closed) or a video replay are beyond what landmarks can tell.
    """
    points = _landmark_array(frames_landmarks)
    if len(points) < LIVENESS_MIN_FRAMES:
        return LivenessResult(False, 0.0, "too_few_frames")
    aligned = _align_to_first(points)
    if challenge == "blink":
        ratios = np.array([_eye_aspect_ratio(frame) for frame in aligned])
        most_open = float(ratios.max())
        drop = 1.0 - float(ratios.min()) / most_open if most_open > 0 else 0.0
        passed = drop >= BLINK_MIN_DROP
        return LivenessResult(passed, drop, "ok" if passed else "no_blink")
    if challenge not in ("turn_left", "turn_right"):
        raise ValueError(f"unknown challenge {challenge!r}")
    offsets = _nose_offsets(aligned)
    # The image-left eye's outer corner to the other one: towards the subject's own left.
    toward = offsets if challenge == "turn_left" else -offsets
    shift = _turn_score(toward)
    if shift >= TURN_MIN_SHIFT:
        return LivenessResult(True, shift, "ok")
    if _turn_score(-toward) >= TURN_MIN_SHIFT:
        return LivenessResult(False, shift, "wrong_direction")
    return LivenessResult(False, shift, "no_turn")


def _landmark_array(frames_landmarks: Sequence[Landmarks]) -> npt.NDArray[np.float64]:
    frames = [np.asarray(frame, dtype=np.float64) for frame in frames_landmarks]
    for frame in frames:
        if frame.shape != (68, 2) or not np.all(np.isfinite(frame)):
            raise ValueError("each frame's landmarks are 68 (x, y) points")
    if not frames:
        return np.zeros((0, 68, 2))
    return np.stack(frames)


def _align_to_first(points: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Map every frame onto the first by the least-squares affine fit of the anchors."""
    target = points[0, _ANCHORS, :]
    aligned = np.empty_like(points)
    for index, frame in enumerate(points):
        source = np.hstack([frame[_ANCHORS, :], np.ones((len(_ANCHORS), 1))])
        transform, *_ = np.linalg.lstsq(source, target, rcond=None)
        aligned[index] = np.hstack([frame, np.ones((68, 1))]) @ transform
    return aligned


def _eye_aspect_ratio(frame: npt.NDArray[np.float64]) -> float:
    ratios = []
    for eye in (_EYE_A, _EYE_B):
        p1, p2, p3, p4, p5, p6 = (frame[index] for index in eye)
        width = float(np.linalg.norm(p1 - p4))
        opening = float(np.linalg.norm(p2 - p6) + np.linalg.norm(p3 - p5))
        ratios.append(opening / (2.0 * width) if width > 0 else 0.0)
    return sum(ratios) / len(ratios)


def _nose_offsets(aligned: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per frame, the nose tip's position along the first frame's eye line, from the middle of
    the outer eye corners, as a fraction of their distance; positive towards the eye that is
    on the image's right (the subject's left on an unmirrored image)."""
    first_corner, second_corner = (aligned[0, index] for index in _OUTER_EYE_CORNERS)
    axis = second_corner - first_corner
    width = float(np.linalg.norm(axis))
    if width <= 0:
        raise ValueError("the eye corners coincide")
    unit = axis / width
    offsets = []
    for frame in aligned:
        middle = (frame[_OUTER_EYE_CORNERS[0]] + frame[_OUTER_EYE_CORNERS[1]]) / 2.0
        nose = frame[list(_NOSE)].mean(axis=0)
        offsets.append(float((nose - middle) @ unit) / width)
    return np.array(offsets)


def _turn_score(toward: npt.NDArray[np.float64]) -> float:
    """How far the nose moved towards the asked side (the largest ``toward[j] - toward[i]``
    with ``i < j``), but no further than where it ended up on that side of the eye midline:
    coming back to the front from the other side is no turn."""
    rise = 0.0
    lowest = float(toward[0])
    for value in toward[1:]:
        rise = max(rise, float(value) - lowest)
        lowest = min(lowest, float(value))
    return max(0.0, min(rise, float(toward.max())))


# --------------------------------------------------------------------------- replay


def near_duplicate_hash(rgb: RgbImage) -> int:
    """A 64-bit difference hash (dHash) of the picture: grey, 9x8, one bit per neighbour pair.

    Survives re-encoding and rescaling, so a snapshot replayed from an earlier upload is found
    with ``hamming(a, b) <= NEAR_DUPLICATE_MAX_BITS``.
    """
    image = _checked_rgb(rgb)
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def hamming(a: int, b: int) -> int:
    """How many of the 64 bits differ."""
    return ((a ^ b) & 0xFFFF_FFFF_FFFF_FFFF).bit_count()


def is_near_duplicate(a: int, b: int, *, max_bits: int = NEAR_DUPLICATE_MAX_BITS) -> bool:
    """The two hashes may be of the same picture: a candidate for ``same_picture``, no more."""
    return hamming(a, b) <= max_bits


def same_picture(a: RgbImage, b: RgbImage) -> bool:
    """Is ``b`` the picture ``a``, give or take re-encoding, rescaling and a little light?

    The finer comparison that must confirm a hash hit (``is_near_duplicate``) before a replay
    fails anyone. True for ``a`` re-encoded (JPEG quality 30-95, PNG, WebP), rescaled by 0.5-2x
    with a centred filter (area, bilinear, bicubic, Lanczos, box, Pillow's nearest), or made up
    to 5 % brighter, darker or more contrasted. False for a new capture of the same scene whose
    picture moved by 0.5 % or more (3 px of a 640 px frame), with or without fresh camera noise
    and more light; in which the head moved 2 % of the frame's width against a still room (1 %
    on the test material) or anything else changed in some part of the frame; and for any other
    photo, of the same person or not. Flat pictures (``SAME_PICTURE_MIN_STD``) are the same as
    no other.

    Not told apart, so not to be relied on either way: frames of a still scene a tenth or two
    of a second apart (so frames of one burst are not to be compared with each other); moves of
    0.25 % (most pass), near what resampling alone does (up to 0.17 %, Pillow's nearest
    0.25 %); fresh camera noise alone, which the sample averages away as rescaling does; and
    copies that were cropped (one pixel a side passes, two do not), turned or had noise added.
    OpenCV's INTER_NEAREST samples off-centre and moves a copy by up to two pixels: some such
    copies pass as new. The doubtful cases lean towards "not the same", which fails no one.
    """
    difference = picture_difference(a, b)
    return (
        difference.residual <= SAME_PICTURE_MAX_RESIDUAL
        and difference.shift <= SAME_PICTURE_MAX_SHIFT
    )


def picture_difference(a: RgbImage, b: RgbImage) -> PictureDifference:
    """The measures ``same_picture`` judges by (see ``PictureDifference``)."""
    first, second = _replay_sample(a), _replay_sample(b)
    if first is None or second is None:
        return PictureDifference(math.inf, math.inf)
    return PictureDifference(_residual(first, second), _shift(first, second))


def _replay_sample(rgb: RgbImage) -> _Sample | None:
    """The picture grey, _REPLAY_SAMPLE_PX square, zero mean and unit variance; None if flat."""
    grey = cv2.cvtColor(_checked_rgb(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
    size = (_REPLAY_SAMPLE_PX, _REPLAY_SAMPLE_PX)
    sample = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    std = float(sample.std())
    if std < SAME_PICTURE_MIN_STD:
        return None
    return cast(_Sample, (sample - sample.mean()) / std)


def _tile_sums(values: _Sample, tiles: int) -> _Sample:
    side = values.shape[0] // tiles
    return cast(_Sample, values.reshape(tiles, side, tiles, side).sum(axis=(1, 3)))


def _residual(first: _Sample, second: _Sample) -> float:
    """The largest RMS difference over _REPLAY_RESIDUAL_TILES square tiles of the samples at
    half size, where halving has averaged away most of what JPEG and resampling leave."""
    half = (_REPLAY_SAMPLE_PX // 2, _REPLAY_SAMPLE_PX // 2)
    difference = cv2.resize(first - second, half, interpolation=cv2.INTER_AREA)
    tiles = _REPLAY_RESIDUAL_TILES
    mean_square = _tile_sums(np.square(difference), tiles) / (difference.size / tiles**2)
    return float(np.sqrt(mean_square.max()))


def _shift(first: _Sample, second: _Sample) -> float:
    """How far the part of the picture that moved most moved, as a fraction of the side.

    One Lucas-Kanade step in each of _REPLAY_SHIFT_TILES square tiles: the move that best
    explains the tile's change by its gradient. The samples are blurred first, which keeps
    that linear over the sample pixel or two that matter here and deaf to JPEG blocks. Each
    tile's sums get _REPLAY_SHIFT_PRIOR of texture per pixel in both directions, so a tile with
    too little texture to show a move (a bare wall under JPEG noise) reports next to none.
    """
    blurred_first = cv2.GaussianBlur(first, (0, 0), _REPLAY_SHIFT_BLUR_PX)
    blurred_second = cv2.GaussianBlur(second, (0, 0), _REPLAY_SHIFT_BLUR_PX)
    grad_y, grad_x = np.gradient((blurred_first + blurred_second) / 2.0)
    change = blurred_second - blurred_first
    tiles = _REPLAY_SHIFT_TILES
    prior = _REPLAY_SHIFT_PRIOR * first.size / tiles**2
    xx = _tile_sums(grad_x * grad_x, tiles) + prior
    xy = _tile_sums(grad_x * grad_y, tiles)
    yy = _tile_sums(grad_y * grad_y, tiles) + prior
    bx = -_tile_sums(grad_x * change, tiles)
    by = -_tile_sums(grad_y * change, tiles)
    determinant = xx * yy - xy * xy  # at least prior squared: xx * yy >= xy * xy
    move_x = (yy * bx - xy * by) / determinant
    move_y = (xx * by - xy * bx) / determinant
    return float(np.hypot(move_x, move_y).max()) / _REPLAY_SAMPLE_PX
