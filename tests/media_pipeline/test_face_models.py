"""The face models and the 1:N index, on real photos: the thresholds they ship with hold on
East-Asian faces (the people we serve) and on the Western test photos."""

from __future__ import annotations

import itertools
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from media_pipeline import face_models, faces
from media_pipeline.face_index import ReferenceIndex

DATA = Path(__file__).parent.parent / "data"
EAST_ASIAN = DATA / "faces-east-asian"
WESTERN = ("obama_1.jpg", "obama_2.jpg", "obama_3.jpg", "biden_1.jpg", "biden_2.jpg")
WESTERN += ("lin_manuel_miranda_1.jpg",)


def person(path: Path) -> str:
    return path.stem.rsplit("_", 1)[0]


@pytest.fixture(scope="module")
def east_asian() -> dict[Path, faces.RgbImage]:
    return {
        path: faces.decode_image(path.read_bytes()) for path in sorted(EAST_ASIAN.glob("*.jpg"))
    }


def pair_scores(model, images):
    encodings = {
        path: faces.analyze(rgb, purpose="check", model=model).encoding
        for path, rgb in images.items()
    }
    genuine, impostor = [], []
    for (first, a), (second, b) in itertools.combinations(encodings.items(), 2):
        (genuine if person(first) == person(second) else impostor).append(model.score(a, b))
    return genuine, impostor


@pytest.mark.slow
def test_the_default_model_tells_every_east_asian_pair_apart(east_asian):
    model = face_models.load("default")
    genuine, impostor = pair_scores(model, east_asian)
    assert (len(genuine), len(impostor)) == (38, 665)  # 38 photos of 15 people
    threshold = model.defaults.match
    assert [s for s in impostor if model.accepts(s, threshold)] == []
    assert [s for s in genuine if not model.accepts(s, threshold)] == []
    # A duplicate enrolment needs more than a match: no impostor comes near it.
    assert max(impostor) < threshold < model.defaults.duplicate


@pytest.mark.slow
def test_dlib_cannot_tell_east_asian_faces_apart_at_any_threshold(east_asian):
    """Why dlib is no longer the default: some strangers lie closer than some photo pairs of
    one person, and at its threshold it accepts strangers."""
    model = face_models.load("dlib")
    genuine, impostor = pair_scores(model, east_asian)
    assert min(impostor) < max(genuine)
    assert any(model.accepts(s, model.defaults.match) for s in impostor)


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["default", "dlib"])
def test_both_models_separate_the_western_test_photos(spec):
    model = face_models.load(spec)
    images = {
        DATA / "faces" / name: faces.decode_image((DATA / "faces" / name).read_bytes())
        for name in WESTERN
    }
    genuine, impostor = pair_scores(model, images)
    assert genuine and impostor
    assert all(model.accepts(s, model.defaults.match) for s in genuine)
    assert not any(model.accepts(s, model.defaults.match) for s in impostor)


def test_which_way_is_alike_lives_in_the_model():
    onnx, dlib = face_models.load("default"), face_models.load("dlib")
    assert (onnx.metric, dlib.metric) == ("similarity", "distance")
    assert onnx.accepts(0.44, 0.44) and not onnx.accepts(0.439, 0.44)
    assert dlib.accepts(0.5, 0.5) and not dlib.accepts(0.501, 0.5)
    assert not onnx.accepts(float("nan"), 0.44)
    assert onnx.closer(0.9, 0.5) and dlib.closer(0.3, 0.6)
    assert face_models.metric_of(onnx.name) == "similarity"
    assert face_models.metric_of(dlib.name) == "distance"
    np.testing.assert_array_equal(onnx.within(np.array([0.2, 0.5, np.nan]), 0.44), [0, 1, 0])
    with pytest.raises(ValueError):
        onnx.check_threshold(1.5)
    with pytest.raises(ValueError):
        dlib.check_threshold(0.0)


def test_encodings_round_trip_and_refuse_another_models_size():
    onnx, dlib = face_models.load("default"), face_models.load("dlib")
    vector = np.random.default_rng(3).normal(size=onnx.size)
    np.testing.assert_array_equal(onnx.from_bytes(onnx.to_bytes(vector)), vector)
    with pytest.raises(ValueError):
        dlib.from_bytes(onnx.to_bytes(vector))  # 512 numbers are no dlib encoding
    with pytest.raises(ValueError):
        onnx.score(vector, np.zeros(dlib.size))


def test_an_onnx_file_is_named_by_its_contents(tmp_path):
    vendored = face_models.load("default")
    assert vendored.name == f"fr_feature-{vendored.sha256[:12]}"
    assert vendored.size == 512 and vendored.defaults is not None
    copy = tmp_path / "licensed.onnx"
    shutil.copy(face_models.VENDORED_MODEL, copy)
    own = face_models.load(str(copy))
    assert own.name == f"licensed-{vendored.sha256[:12]}" and own.defaults is None
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a network")
    with pytest.raises(ValueError, match="ONNX"):
        face_models.load(str(broken))
    with pytest.raises(ValueError, match="no such file"):
        face_models.load(str(tmp_path / "missing.onnx"))


def test_similarity_transform_recovers_a_rotation_scale_and_shift():
    source = np.array([[30, 50], [70, 52], [50, 70], [35, 90], [66, 91]], dtype=np.float64)
    angle, scale, shift = np.radians(12), 1.7, np.array([5.0, -3.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = source @ (scale * rotation).T + shift
    matrix = face_models.similarity_transform(source, target)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)


@pytest.mark.slow
def test_concurrent_calls_give_the_answers_of_serial_ones(east_asian):
    """dlib's objects and OpenCV's networks are not thread-safe: unserialised, concurrent calls
    crashed the server and reported "225 faces found" on a one-face photo."""
    model = face_models.load("default")
    images = list(east_asian.values())[:12]
    serial = [faces.analyze(rgb, purpose="check", model=model) for rgb in images]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(
            pool.map(lambda rgb: faces.analyze(rgb, purpose="check", model=model), images * 2)
        )
    for index, analysis in enumerate(parallel):
        expected = serial[index % len(images)]
        assert analysis.box == expected.box and analysis.quality.face_count == 1
        np.testing.assert_allclose(analysis.encoding, expected.encoding, atol=1e-6)


# --------------------------------------------------------------------------- 1:N index


@pytest.mark.parametrize("spec", ["default", "dlib"])
def test_the_index_finds_what_a_loop_over_every_reference_finds(spec):
    model = face_models.load(spec)
    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(3000, model.size))
    if model.metric == "similarity":
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    else:
        vectors *= 0.05
    index = ReferenceIndex(model)  # grows past its first 1024 rows
    for number, vector in enumerate(vectors):
        index.put(number + 1, 1000 + number % 500, vector)
    probe = vectors[42] + rng.normal(scale=0.01, size=model.size)
    if model.metric == "similarity":
        probe /= np.linalg.norm(probe)
    scores = [model.score(probe, vector) for vector in vectors]
    ordered = sorted(scores, reverse=model.metric == "similarity")
    threshold = (ordered[20] + ordered[21]) / 2  # the 21 closest; the index works in float32
    expected = [n + 1 for n, s in enumerate(scores) if model.accepts(s, threshold)]
    found = index.search(probe, threshold=threshold, exclude_user=None, limit=100)
    assert sorted(c.reference_id for c in found) == sorted(expected)
    assert found[0].reference_id == 43  # closest first
    assert all(
        model.closer(a.score, b.score) or a.score == b.score for a, b in itertools.pairwise(found)
    )
    assert len(index.search(probe, threshold=threshold, exclude_user=None, limit=5)) == 5
    mine = index.search(probe, threshold=threshold, exclude_user=1000 + 42, limit=100)
    assert 43 not in {c.reference_id for c in mine}


def test_the_index_replaces_and_drops_references():
    model = face_models.load("default")
    index = ReferenceIndex(model)
    a, b = np.eye(model.size)[0], np.eye(model.size)[1]
    index.put(1, 10, a)
    index.put(2, 20, b)
    assert [c.reference_id for c in index.search(a, threshold=0.9, exclude_user=None, limit=5)] == [
        1
    ]
    index.put(1, 10, b)  # re-encoded
    assert len(index) == 2 and 1 in index
    found = index.search(b, threshold=0.9, exclude_user=None, limit=5)
    assert sorted(c.reference_id for c in found) == [1, 2]
    index.drop([2])
    assert 2 not in index and len(index) == 1
    assert [c.reference_id for c in index.search(b, threshold=0.9, exclude_user=None, limit=5)] == [
        1
    ]
    assert ReferenceIndex(model).search(a, threshold=0.5, exclude_user=None, limit=5) == []


@pytest.mark.slow
def test_the_dlib_model_encodes_exactly_as_face_recognition_did():
    """References stored before face models existed were made by face_recognition; they are
    marked `dlib` and compared with encodings of DlibModel, so the two must agree."""
    import warnings

    from PIL import ImageFile

    truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated as an API")
        import face_recognition
    ImageFile.LOAD_TRUNCATED_IMAGES = truncated  # face_recognition switches it on
    rgb = faces.decode_image((DATA / "faces" / "obama_1.jpg").read_bytes())
    analysis = faces.analyze(rgb, purpose="check", model=face_models.load("dlib"))
    expected = face_recognition.face_encodings(rgb, known_face_locations=[tuple(analysis.box)])[0]
    np.testing.assert_allclose(analysis.encoding, expected, atol=1e-9)
