"""`flask faces compare|calibrate` and `flask evidence purge`, with the real face model."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.db import utcnow
from app.extensions import db
from app.identity.models import User
from app.identity.resident_id import check_digit
from app.media.service import storage
from app.verification import service
from app.verification.cli import calibration, evidence_cli, suggest_threshold
from app.verification.models import (
    Check,
    CheckKind,
    CheckStatus,
    Evidence,
    EvidenceKind,
    FaceReference,
    FaceStatus,
    FlagStatus,
    IdentityFlag,
    PurgeRun,
)
from media_pipeline import faces
from tests.conftest import make_trainee
from tests.study import study_session
from tests.verification.photos import FACES, photo

NOT_AN_IMAGE = Path(__file__).resolve().parents[1] / "data" / "faces" / "SOURCES.md"


def resident(birth: str, serial: str) -> str:
    first17 = f"110105{birth}{serial}"
    return first17 + check_digit(first17)


def invoke(runner, *args: str):
    app = runner.app
    if "evidence" not in app.cli.commands:
        app.cli.add_command(evidence_cli)
    return runner.invoke(args=[str(arg) for arg in args])


def json_lines(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


# --------------------------------------------------------------------------- compare


@pytest.mark.slow
def test_compare_matches_two_photos_of_one_person(runner):
    result = invoke(runner, "faces", "compare", FACES / "obama_1.jpg", FACES / "obama_2.jpg")
    assert result.exit_code == 0, result.output
    (verdict,) = json_lines(result)
    assert set(verdict) == {"match", "model", "score", "threshold", "code"}
    assert verdict["match"] is True and verdict["code"] == "match"
    assert verdict["model"].startswith("fr_feature-")
    assert 0.44 == verdict["threshold"] <= verdict["score"] <= 1


@pytest.mark.slow
def test_compare_with_dlib_gives_a_distance_too(runner, fresh_app, monkeypatch):
    monkeypatch.setitem(fresh_app.config, "FACE_MODEL", "dlib")
    result = invoke(runner, "faces", "compare", FACES / "obama_1.jpg", FACES / "obama_2.jpg")
    assert result.exit_code == 0, result.output
    (verdict,) = json_lines(result)
    assert verdict["model"] == "dlib" and verdict["threshold"] == 0.5
    assert 0 < verdict["distance"] == verdict["score"] <= 0.5


@pytest.mark.slow
def test_compare_refuses_different_people_with_exit_1(runner):
    result = invoke(runner, "faces", "compare", FACES / "obama_1.jpg", FACES / "biden_1.jpg")
    assert result.exit_code == 1, result.output
    (verdict,) = json_lines(result)
    assert verdict["match"] is False and verdict["code"] == "no_match"
    assert verdict["score"] < 0.44


@pytest.mark.slow
def test_compare_threshold_option_overrides_the_configured_one(runner):
    args = ("faces", "compare", FACES / "obama_1.jpg", FACES / "obama_2.jpg")
    result = invoke(runner, *args, "--threshold", "0.99")
    assert result.exit_code == 1, result.output
    (verdict,) = json_lines(result)
    assert verdict["threshold"] == 0.99 and verdict["code"] == "no_match"
    bad = invoke(runner, *args, "--threshold", "3")
    assert bad.exit_code == 2 and "threshold" in bad.output and not bad.stdout.startswith("{")


@pytest.mark.slow
def test_compare_reports_several_faces_in_the_probe_as_unusable(runner):
    result = invoke(runner, "faces", "compare", FACES / "obama_1.jpg", FACES / "two_people.jpg")
    assert result.exit_code == 2
    (verdict,) = json_lines(result)
    assert verdict == {
        "match": False,
        "model": verdict["model"],
        "score": None,
        "threshold": 0.44,
        "code": "multiple_faces",
    }
    assert "probe" in result.stderr


@pytest.mark.slow
def test_compare_reports_several_faces_in_the_reference_as_unusable(runner):
    result = invoke(runner, "faces", "compare", FACES / "two_people.jpg", FACES / "obama_1.jpg")
    assert result.exit_code == 2
    assert json_lines(result)[0]["code"] == "multiple_faces"
    assert "ref" in result.stderr


def test_compare_reports_a_text_file_as_not_an_image(runner):
    result = invoke(runner, "faces", "compare", NOT_AN_IMAGE, NOT_AN_IMAGE)
    assert result.exit_code == 2
    (verdict,) = json_lines(result)
    assert verdict["code"] == "not_an_image" and verdict["score"] is None


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("only-one.jpg",),
        ("--pairs", "pairs.tsv", "a.jpg", "b.jpg"),
        ("missing.jpg", "also-missing.jpg"),
    ],
    ids=["nothing", "one-photo", "photos-and-pairs", "missing-files"],
)
def test_compare_argument_mistakes_are_usage_errors(runner, tmp_path, args):
    (tmp_path / "pairs.tsv").write_text("a.jpg\tb.jpg\n")
    shutil.copy(FACES / "obama_1.jpg", tmp_path / "a.jpg")
    shutil.copy(FACES / "obama_2.jpg", tmp_path / "b.jpg")
    named = [str(tmp_path / arg) if not arg.startswith("-") else arg for arg in args]
    result = invoke(runner, "faces", "compare", *named)
    assert result.exit_code == 2
    assert "Usage" in result.output and result.stdout.strip() == ""


@pytest.mark.slow
def test_compare_pairs_prints_a_line_per_pair_and_analyses_each_file_once(
    runner, tmp_path, monkeypatch
):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("obama_1.jpg", "obama_2.jpg", "biden_1.jpg", "two_people.jpg"):
        shutil.copy(FACES / name, photos / name)
    (tmp_path / "notes.txt").write_text("not a photo")
    pairs = photos / "pairs.tsv"
    pairs.write_text(
        "# reference\tprobe\n"
        "obama_1.jpg\tobama_2.jpg\n"
        "\n"
        "obama_1.jpg\tbiden_1.jpg\n"
        f"obama_1.jpg\t{tmp_path / 'notes.txt'}\n"
        "  # indented comment\n"
        "biden_1.jpg\ttwo_people.jpg\n"
    )
    analysed = []
    real_analyze = faces.analyze

    def counting(rgb, **options):
        analysed.append(rgb.shape)
        return real_analyze(rgb, **options)

    monkeypatch.setattr(faces, "analyze", counting)
    result = invoke(runner, "faces", "compare", "--pairs", pairs)
    assert result.exit_code == 2, result.output
    lines = json_lines(result)
    assert [(Path(line["ref"]).name, Path(line["probe"]).name) for line in lines] == [
        ("obama_1.jpg", "obama_2.jpg"),
        ("obama_1.jpg", "biden_1.jpg"),
        ("obama_1.jpg", "notes.txt"),
        ("biden_1.jpg", "two_people.jpg"),
    ]
    assert lines[0]["ref"] == str(photos / "obama_1.jpg")  # relative to the pairs file
    assert [line["code"] for line in lines] == [
        "match",
        "no_match",
        "not_an_image",
        "multiple_faces",
    ]
    assert [line["match"] for line in lines] == [True, False, False, False]
    assert lines[2]["score"] is None and lines[1]["score"] < 0.44
    # obama_1, obama_2, biden_1, two_people: each once; the text file never gets to analyze.
    assert len(analysed) == 4


@pytest.mark.slow
def test_compare_pairs_exits_0_when_every_pair_was_usable(runner, tmp_path):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(
        f"{FACES / 'obama_1.jpg'}\t{FACES / 'obama_3.jpg'}\n"
        f"{FACES / 'biden_1.jpg'}\t{FACES / 'biden_2.jpg'}\n"
        f"{FACES / 'biden_1.jpg'}\t{FACES / 'lin_manuel_miranda_1.jpg'}\n"
    )
    result = invoke(runner, "faces", "compare", "--pairs", pairs)
    assert result.exit_code == 0, result.output
    assert [line["code"] for line in json_lines(result)] == ["match", "match", "no_match"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("obama_1.jpg obama_2.jpg\n", "line 1: expected REF<TAB>PROBE"),
        ("# nothing\n\n", "lists no pairs"),
        ("obama_1.jpg\tnobody.jpg\n", "line 1: no such file"),
    ],
    ids=["no-tab", "empty", "missing-file"],
)
def test_compare_pairs_file_mistakes_are_usage_errors(runner, tmp_path, content, problem):
    shutil.copy(FACES / "obama_1.jpg", tmp_path / "obama_1.jpg")
    shutil.copy(FACES / "obama_2.jpg", tmp_path / "obama_2.jpg")
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text(content)
    result = invoke(runner, "faces", "compare", "--pairs", pairs)
    assert result.exit_code == 2
    assert problem in result.output and result.stdout.strip() == ""


# --------------------------------------------------------------------------- calibrate


def test_suggested_threshold_accepts_at_most_the_target_share_of_impostors():
    impostor = [0.9, 0.6, 0.8, 0.7]
    assert suggest_threshold(impostor, 0.25) == 0.699  # one of four accepted, not two
    assert suggest_threshold(impostor, 0.001) == 0.599  # below every impostor pair
    assert suggest_threshold([0.612, 0.612, 0.7], 0.001) == 0.611
    assert suggest_threshold([], 0.001) is None
    result = calibration(impostor, [0.3, 0.4, 0.55], [0.65], threshold=0.5, target_far=0.25)
    assert result["impostor"]["far"] == 0 and result["genuine"]["false_rejects"] == 1
    assert result["mismatch"]["frr_if_all_genuine"] == 0.5
    assert result["at_suggested"] == {
        "false_accepts": 1,
        "false_rejects": 0,
        "mismatches_accepted": 1,
    }
    assert result["supported"] is True and result["notes"] == []
    assert calibration(impostor, [], [], threshold=0.5, target_far=0.001)["supported"] is False


def test_calibration_of_similarities_counts_from_the_top():
    impostor = [0.1, 0.4, 0.2, 0.3]
    result = calibration(
        impostor, [0.7, 0.6, 0.42], [0.35], threshold=0.44, target_far=0.25, metric="similarity"
    )
    assert result["metric"] == "similarity" and result["threshold"] == 0.44
    assert result["impostor"]["closest"] == 0.4 and result["impostor"]["false_accepts"] == 0
    assert result["genuine"]["farthest"] == 0.42 and result["genuine"]["false_rejects"] == 1
    # One impostor of four may pass: the smallest threshold above the second closest.
    assert result["suggested_threshold"] == 0.301
    assert result["at_suggested"] == {
        "false_accepts": 1,
        "false_rejects": 0,
        "mismatches_accepted": 1,
    }


def trainee(app, number: int) -> int:
    return make_trainee(
        app,
        id_number=resident(f"19900{number}01", f"12{number}"),
        phone=f"1391234{number:04d}",
    )


def enrol(app, user_id: int, name: str):
    with app.test_request_context():
        enrolment = service.enrol_face(db.session.get(User, user_id), photo(name))
        db.session.commit()
        return enrolment.reference.id


def add_checks(app, user_id: int, *results: tuple[CheckStatus, str | None, float | None]) -> None:
    session_id = study_session(app, user_id)
    with app.app_context():
        for status, code, distance in results:
            db.session.add(
                Check(
                    session_id=session_id,
                    user_id=user_id,
                    kind=CheckKind.RANDOM,
                    status=status,
                    code=code,
                    score=distance,
                    threshold=0.5,
                    model="dlib",
                    expires_at=utcnow(),
                )
            )
        db.session.commit()


@pytest.mark.slow
def test_calibrate_reports_distances_and_suggests_a_threshold(runner, fresh_app, monkeypatch):
    monkeypatch.setitem(fresh_app.config, "FACE_MODEL", "dlib")  # figures in distances
    obama, biden, lin, twin = (trainee(fresh_app, number) for number in range(1, 5))
    enrol(fresh_app, obama, "obama_1.jpg")
    enrol(fresh_app, biden, "biden_1.jpg")
    enrol(fresh_app, lin, "lin_manuel_miranda_1.jpg")
    # A second account of the same man, confirmed by staff: that pair is no impostor.
    enrol(fresh_app, twin, "obama_2.jpg")
    with fresh_app.app_context():
        flag = db.session.scalar(sa.select(IdentityFlag).where(IdentityFlag.user_id == twin))
        flag.status = FlagStatus.CONFIRMED
        db.session.commit()
    add_checks(
        fresh_app,
        obama,
        (CheckStatus.PASSED, None, 0.35),
        (CheckStatus.PASSED, None, 0.41),
        (CheckStatus.FAILED, "mismatch", 0.74),
        (CheckStatus.FAILED, "expired", None),
        (CheckStatus.PENDING, None, None),
    )
    add_checks(
        fresh_app, biden, (CheckStatus.PASSED, None, 0.3), (CheckStatus.FAILED, "no_face", None)
    )

    result = invoke(runner, "faces", "calibrate", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["active_references"] == 4 and report["trainees"] == 4
    impostor = report["impostor"]
    assert impostor["count"] == 5  # 6 pairs of 4 accounts, less the confirmed twin
    assert 0.6 < impostor["closest"] <= impostor["p1"] <= impostor["p5"] <= impostor["median"]
    assert impostor["false_accepts"] == 0 and impostor["far"] == 0
    assert report["genuine"] == {
        "count": 3,
        "median": 0.35,
        "p95": pytest.approx(0.404),
        "farthest": 0.41,
        "false_rejects": 0,
        "frr": 0,
    }
    assert report["mismatch"]["count"] == 1 and report["mismatch"]["closest"] == 0.74
    assert report["mismatch"]["frr_if_all_genuine"] == 0.25
    suggested = report["suggested_threshold"]
    assert 0.41 < suggested < impostor["closest"] and suggested >= impostor["closest"] - 0.001
    assert report["model"] == "dlib" and report["metric"] == "distance"
    assert report["supported"] is False and "needs at least 1000" in report["notes"][0]

    text = invoke(runner, "faces", "calibrate", "--target-far", "0.01")
    assert text.exit_code == 0, text.output
    assert "impostor pairs (references of different trainees): 5" in text.stdout
    assert "false accepts at 0.500: 0/5 (0.00%)" in text.stdout
    assert "genuine scores (passed checks against their reference): 3" in text.stdout
    assert f"suggested threshold for false accepts <= 0.01: {suggested:.3f}" in text.stdout
    assert "needs at least 100)" in text.stdout


def test_calibrate_without_references_says_so(runner):
    result = invoke(runner, "faces", "calibrate")
    assert result.exit_code == 0, result.output
    assert "0 active references" in result.stdout
    assert "suggested threshold for false accepts <= 0.001: none" in result.stdout


# --------------------------------------------------------------------------- purge


def snapshot(app, user_id: int, name: str, *, age_days: float) -> int:
    """A stored snapshot whose retention ends ``age_days`` ago (negative: in the future)."""
    with app.test_request_context():
        evidence = service.store_evidence(
            db.session.get(User, user_id),
            photo(name),
            EvidenceKind.SNAPSHOT,
            dhash=None,
            result="match",
        )
        evidence.purge_after = utcnow() - timedelta(days=age_days)
        db.session.commit()
        return evidence.id


def expire_reference_photos(app) -> None:
    with app.app_context():
        for reference in db.session.scalars(sa.select(FaceReference)):
            db.session.get(Evidence, reference.evidence_id).purge_after = utcnow() - timedelta(
                days=1
            )
        db.session.commit()


def evidence_state(app) -> dict[int, tuple[str | None, bool, bool]]:
    """id -> (key, stored object exists, purged)."""
    with app.app_context():
        return {
            row.id: (
                row.key,
                row.key is not None and storage().exists(row.key),
                row.purged_at is not None,
            )
            for row in db.session.scalars(sa.select(Evidence))
        }


@pytest.mark.slow
def test_purge_removes_expired_images_and_keeps_the_active_reference(runner, fresh_app):
    user = trainee(fresh_app, 1)
    first = enrol(fresh_app, user, "obama_1.jpg")
    second = enrol(fresh_app, user, "obama_2.jpg")  # replaces the first: no check passed yet
    old = [snapshot(fresh_app, user, "obama_3.jpg", age_days=age) for age in (1, 400)]
    young = snapshot(fresh_app, user, "obama_480p.jpg", age_days=-30)
    expire_reference_photos(fresh_app)
    with fresh_app.app_context():
        references = {ref.id: ref for ref in db.session.scalars(sa.select(FaceReference))}
        assert references[first].status is FaceStatus.REPLACED
        assert references[second].status is FaceStatus.ACTIVE
        replaced_photo = references[first].evidence_id
        active_photo = references[second].evidence_id
    before = evidence_state(fresh_app)
    assert all(exists for _, exists, _ in before.values())

    dry = invoke(runner, "evidence", "purge", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would purge 3 image(s) (1 reference, 2 snapshot)" in dry.stdout
    assert "would keep 1 image(s)" in dry.stdout
    assert evidence_state(fresh_app) == before
    with fresh_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PurgeRun)) == 0

    result = invoke(runner, "evidence", "purge")
    assert result.exit_code == 0, result.output
    assert "purged 3 image(s)" in result.stdout and "kept 1 image(s)" in result.stdout
    after = evidence_state(fresh_app)
    for purged in (*old, replaced_photo):
        assert after[purged] == (None, False, True)
        assert not storage_exists(fresh_app, before[purged][0])
    for kept in (young, active_photo):
        assert after[kept] == before[kept]
    with fresh_app.app_context():
        (run,) = db.session.scalars(sa.select(PurgeRun))
        assert run.purged == 3 and run.cutoff <= utcnow()
        row = db.session.get(Evidence, old[0])
        assert row.sha256 and row.purged_at is not None  # the record of what was seen stays

    again = invoke(runner, "evidence", "purge")
    assert again.exit_code == 0 and "purged 0 image(s)" in again.stdout
    with fresh_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(PurgeRun)) == 2


def storage_exists(app, key: str) -> bool:
    with app.app_context():
        return storage().exists(key)
