"""Face models: what turns a found face into a vector, and how two vectors are compared.

Every model here starts from the same detection (dlib's HOG detector, in ``faces``) and the
same 68 landmarks; a model only embeds. Scores, thresholds and which way is better live here
and nowhere else:

* ``dlib`` (``DlibModel``): dlib's ResNet (through ``face_recognition_models``), 128 numbers
  from a face aligned on dlib's 5-point landmarks, compared by Euclidean **distance**: lower
  is closer.
* ONNX embedding models of the ArcFace family (``OnnxModel``): the face aligned onto the
  112x112 ArcFace template from five points taken from the 68 landmarks, run through
  OpenCV's ``cv2.dnn``, compared by cosine **similarity**: higher is closer. The default is
  ``models/fr_feature.onnx``, installed by ``make setup`` (``model_files``; see
  ``models/MODELS.md``).

Every stored encoding records the ``name`` of the model that made it, and scores are only
ever computed between encodings of one model. A model object is not safe to use from two
threads at once (neither dlib's objects nor an OpenCV ``Net`` are); ``faces`` serialises every
call into a model behind one lock per process.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Final, Literal

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from media_pipeline import model_files

__all__ = [
    "DEFAULT_MODEL",
    "DLIB",
    "MODEL_DIR",
    "VENDORED_MODEL",
    "DlibModel",
    "Encoding",
    "FaceModel",
    "Metric",
    "OnnxModel",
    "Thresholds",
    "closer",
    "load",
    "metric_of",
]

Metric = Literal["distance", "similarity"]
Encoding = npt.NDArray[np.float64]
RgbImage = npt.NDArray[np.uint8]
Landmarks = tuple[tuple[float, float], ...]

MODEL_DIR: Final = model_files.MODEL_DIR
VENDORED_MODEL: Final = model_files.VENDORED_MODEL
DLIB: Final = "dlib"
# What FACE_MODEL means when it is not set.
DEFAULT_MODEL: Final = "default"

# The 112x112 ArcFace alignment template (insightface): eye centres, nose tip, mouth corners.
ARCFACE_TEMPLATE: Final = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
ARCFACE_SIZE: Final = 112
# The 68 points that make the five (eye centres are the mean of each eye's lids).
_EYE_IMAGE_LEFT: Final = (37, 38, 40, 41)
_EYE_IMAGE_RIGHT: Final = (43, 44, 46, 47)
_NOSE_TIP: Final = 30
_MOUTH_LEFT: Final = (48, 60)
_MOUTH_RIGHT: Final = (54, 64)

# How pixels become the network's input: ``unit`` is (x - 127) / 128 (fr_feature.onnx, as the
# package's own lib/fr_feature.js feeds it; insightface's ArcFace models take the same within
# 0.4 %), ``raw`` is 0-255 (OpenCV Zoo's SFace). Channels are RGB for both.
InputScale = Literal["unit", "raw"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """``match``: the 1:1 decision of a face check; ``duplicate``: the stricter level at which
    a new enrolment is taken to be the same person as another trainee's reference."""

    match: float
    duplicate: float


class FaceModel(ABC):
    """One embedding model. ``name`` is stored with every encoding it makes."""

    name: str
    size: int
    metric: Metric
    defaults: Thresholds | None  # None: an operator's model, thresholds must be configured

    @abstractmethod
    def embed(
        self, rgb: RgbImage, box: tuple[int, int, int, int], landmarks: Landmarks
    ) -> Encoding:
        """The encoding of the face in ``box`` (top, right, bottom, left) with its 68 points.
        Not thread-safe: ``faces`` calls it under its lock."""

    def scores(
        self, matrix: npt.NDArray[np.floating], encoding: Encoding
    ) -> npt.NDArray[np.float64]:
        """Scores of one encoding against each row of ``matrix`` (encodings of this model),
        computed in the matrix's own precision (float32 for an index) without copying it."""
        rows = np.asarray(matrix)
        if rows.dtype not in (np.float32, np.float64):
            rows = rows.astype(np.float64)
        if rows.ndim != 2 or rows.shape[1] != self.size:
            raise ValueError(f"expected rows of {self.size} numbers")
        probe = self.check_encoding(encoding).astype(rows.dtype)
        products: npt.NDArray[np.floating] = rows @ probe
        if self.metric == "similarity":
            return products.astype(np.float64)
        # |a - b|^2 = |a|^2 + |b|^2 - 2ab, without an n x d temporary
        squared = np.einsum("ij,ij->i", rows, rows) + probe @ probe - 2.0 * products
        distances: npt.NDArray[np.floating] = np.sqrt(np.maximum(squared, 0.0))
        return distances.astype(np.float64)

    def score(self, a: Encoding | Sequence[float], b: Encoding | Sequence[float]) -> float:
        first = self.check_encoding(a)
        second = self.check_encoding(b)
        if self.metric == "similarity":
            return float(first @ second)
        return float(np.linalg.norm(first - second))

    def within(self, scores: npt.NDArray[np.float64], threshold: float) -> npt.NDArray[np.bool_]:
        """Which scores say "same person" at this threshold: a distance at most it, a
        similarity at least it; never a NaN."""
        self.check_threshold(threshold)
        values = np.asarray(scores, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return values <= threshold if self.metric == "distance" else values >= threshold

    def accepts(self, score: float, threshold: float) -> bool:
        """Same person at this threshold."""
        return math.isfinite(score) and bool(self.within(np.array([score]), threshold)[0])

    def closest_first(self, scores: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        """Indices that order ``scores`` from the most to the least alike."""
        values = np.asarray(scores, dtype=np.float64)
        return np.argsort(values if self.metric == "distance" else -values, kind="stable")

    def closer(self, a: float, b: float) -> bool:
        """Score ``a`` says "same person" more strongly than ``b``."""
        return closer(self.metric, a, b)

    def check_threshold(self, threshold: float) -> float:
        low, high = (0.0, 2.0) if self.metric == "distance" else (-1.0, 1.0)
        if not low < threshold < high:
            raise ValueError(f"a {self.metric} threshold lies between {low:g} and {high:g}")
        return threshold

    def check_encoding(self, value: Encoding | Sequence[float]) -> Encoding:
        array = np.asarray(value, dtype=np.float64)
        if array.shape != (self.size,) or not np.all(np.isfinite(array)):
            raise ValueError(f"an encoding of {self.name} is {self.size} finite numbers")
        return array

    def to_bytes(self, encoding: Encoding | Sequence[float]) -> bytes:
        """The encoding as little-endian float64 values, for storage."""
        return self.check_encoding(encoding).astype("<f8").tobytes()

    def from_bytes(self, data: bytes) -> Encoding:
        if len(data) != self.size * 8:
            raise ValueError(f"a stored {self.name} encoding is {self.size * 8} bytes")
        return self.check_encoding(np.frombuffer(data, dtype="<f8").astype(np.float64))


class DlibModel(FaceModel):
    """dlib's ResNet as face_recognition runs it (5-point alignment, one jitter), so encodings
    stored before model names existed are encodings of this model."""

    name = DLIB
    size = 128
    metric: Metric = "distance"
    # 0.5: see README, "Face models and thresholds". dlib is weak on East-Asian faces at any
    # threshold; it stays for deployments that enrolled with it until they re-encode.
    defaults = Thresholds(match=0.5, duplicate=0.4)

    def __init__(self) -> None:
        models = _dlib_model_files()
        self._predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self._encoder = dlib.face_recognition_model_v1(models.face_recognition_model_location())

    def embed(
        self, rgb: RgbImage, box: tuple[int, int, int, int], landmarks: Landmarks
    ) -> Encoding:
        top, right, bottom, left = box
        shape = self._predictor(rgb, dlib.rectangle(left, top, right, bottom))
        encoding = np.array(self._encoder.compute_face_descriptor(rgb, shape, 1), dtype=np.float64)
        encoding.setflags(write=False)
        return encoding


class OnnxModel(FaceModel):
    """An ArcFace-family ONNX network: 1x3x112x112 RGB in, one embedding out, cosine scores.

    ``name`` is the file's stem and the start of its sha256, so another file is another model
    even under the same name, and its encodings are never compared with this one's.
    """

    metric: Metric = "similarity"

    def __init__(
        self, path: Path, *, defaults: Thresholds | None = None, input_scale: InputScale = "unit"
    ) -> None:
        data = path.read_bytes()
        self.path = path
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.name = f"{path.stem}-{self.sha256[:12]}"
        self.defaults = defaults
        self.input_scale = input_scale
        try:
            self._net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as error:
            raise ValueError(f"{path} is not an ONNX model OpenCV can run: {error}") from None
        probe = self._run(np.zeros((ARCFACE_SIZE, ARCFACE_SIZE, 3), dtype=np.uint8))
        self.size = int(probe.size)

    def embed(
        self, rgb: RgbImage, box: tuple[int, int, int, int], landmarks: Landmarks
    ) -> Encoding:
        return self._run(align(rgb, landmarks))

    def _run(self, face: RgbImage) -> Encoding:
        pixels = face.astype(np.float32)
        if self.input_scale == "unit":
            pixels = (pixels - 127.0) / 128.0
        self._net.setInput(pixels.transpose(2, 0, 1)[None, ...])
        vector = self._net.forward().reshape(-1).astype(np.float64)
        norm = float(np.linalg.norm(vector))
        encoding = vector / norm if norm > 0 else vector
        encoding.setflags(write=False)
        return encoding


def metric_of(name: str) -> Metric:
    """The metric of the model whose encodings are named ``name``, without loading it: dlib's
    is a distance, every ONNX model's a cosine similarity."""
    return "distance" if name == DLIB else "similarity"


def closer(metric: Metric, a: float, b: float) -> bool:
    """Score ``a`` says "same person" more strongly than ``b``."""
    return a < b if metric == "distance" else a > b


def five_points(landmarks: Landmarks) -> npt.NDArray[np.float32]:
    """Eye centres, nose tip and mouth corners, in the ArcFace template's order, from the 68."""
    points = np.asarray(landmarks, dtype=np.float32)
    if points.shape != (68, 2):
        raise ValueError("expected dlib's 68 landmarks")
    return np.array(
        [
            points[list(_EYE_IMAGE_LEFT)].mean(axis=0),
            points[list(_EYE_IMAGE_RIGHT)].mean(axis=0),
            points[_NOSE_TIP],
            points[list(_MOUTH_LEFT)].mean(axis=0),
            points[list(_MOUTH_RIGHT)].mean(axis=0),
        ],
        dtype=np.float32,
    )


def align(rgb: RgbImage, landmarks: Landmarks) -> RgbImage:
    """The face warped onto the 112x112 ArcFace template by the least-squares similarity
    transform (rotation, scale, shift) of all five points, as insightface aligns its training
    faces; the area outside the photo is black."""
    transform = similarity_transform(five_points(landmarks), ARCFACE_TEMPLATE)
    warped = cv2.warpAffine(rgb, transform, (ARCFACE_SIZE, ARCFACE_SIZE), flags=cv2.INTER_LINEAR)
    return np.asarray(warped, dtype=np.uint8)  # already uint8: no copy, only the type


def similarity_transform(
    source: npt.NDArray[np.floating], target: npt.NDArray[np.floating]
) -> npt.NDArray[np.float64]:
    """The 2x3 matrix of the rotation, uniform scale and shift that best maps ``source`` points
    onto ``target`` in least squares (Umeyama, 1991). RANSAC-style estimators are no use here:
    with five points they drop the "outliers" and the crop changes from photo to photo."""
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_centred, dst_centred = src - src_mean, dst - dst_mean
    variance = float((src_centred**2).sum() / len(src))
    if variance <= 0:
        raise ValueError("the landmarks do not define a face")
    covariance = dst_centred.T @ src_centred / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    scale = float((singular * sign).sum()) / variance
    shift = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, shift[:, None]])


def _dlib_model_files() -> ModuleType:
    # face_recognition_models finds its files with pkg_resources, which setuptools flags as
    # deprecated on import; only that warning is silenced.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated as an API")
        return importlib.import_module("face_recognition_models")


# The vendored model's thresholds, set on East-Asian faces (README, "Face models and
# thresholds"): on tests/data/faces-east-asian every different-person pair scores at most
# 0.418 and every same-person pair at least 0.462; 0.44 lies between them. A duplicate
# enrolment is the same person twice in good light: barred from 0.55.
VENDORED_THRESHOLDS: Final = Thresholds(match=0.44, duplicate=0.55)

_loaded: dict[tuple[str, str], FaceModel] = {}
_loading = threading.Lock()


def load(spec: str | None, *, input_scale: InputScale = "unit") -> FaceModel:
    """The model FACE_MODEL names: ``default`` (or None) the vendored ONNX file, ``dlib``, or
    the path of an ONNX file. Loaded once per process."""
    spec = spec or DEFAULT_MODEL
    key = (spec, input_scale)
    with _loading:
        if key not in _loaded:
            _loaded[key] = _load(spec, input_scale)
        return _loaded[key]


def _load(spec: str, input_scale: InputScale) -> FaceModel:
    if spec == DLIB:
        return DlibModel()
    if spec == DEFAULT_MODEL:
        if not VENDORED_MODEL.is_file():
            raise ValueError(model_files.missing_message())
        return OnnxModel(VENDORED_MODEL, defaults=VENDORED_THRESHOLDS)
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"FACE_MODEL: no such file {spec} (or say 'default' or 'dlib')")
    if path.resolve() == VENDORED_MODEL:
        return OnnxModel(VENDORED_MODEL, defaults=VENDORED_THRESHOLDS)
    return OnnxModel(path, input_scale=input_scale)
