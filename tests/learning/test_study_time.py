"""Study time is what the server saw: scripted clients earn only what the rules allow."""

import math

from app.extensions import db
from app.learning.models import HeartbeatRecord
from tests.conftest import make_trainee


def watch_honestly(study, session, start=0.0, end=10.0, step=2.0):
    return study.watch(session, start, end, step)


def test_honest_trainee_earns_the_lesson_and_completes_it(study):
    enrollment_id = study.enrol()
    reply = watch_honestly(study, study.start())
    assert math.isclose(reply["lesson_credited_s"], 10.0, abs_tol=0.6)
    assert reply["completed"] is True and reply["coverage"] >= 0.95
    body = study.enrollment(enrollment_id)
    assert set(body) >= {
        "id",
        "course_id",
        "lessons",
        "credited_s",
        "required_s",
        "completed",
        "subsidy",
    }
    lesson = body["lessons"][0]
    assert set(lesson) >= {"id", "duration_s", "credited_s", "coverage", "completed"}
    assert lesson["completed"] is True and body["completed"] is True
    assert body["subsidy"]["status"] == "eligible"  # the subsidy tests cover the rest


def test_positions_faster_than_real_time_earn_only_real_time(study):
    study.enrol()
    session = study.start()
    study.beat(session, 0)
    reply = study.beat(session, 8, after=2).get_json()  # claims 8 s watched in 2 s
    assert reply["credited_s"] <= 2.0
    total = study.beat(session, 10, after=2).get_json()["lesson_credited_s"]
    assert total <= 4.0


def test_jumping_ahead_earns_nothing(study):
    study.enrol()
    session = study.start()
    study.beat(session, 0)
    skip = study.beat(session, 9, after=2).get_json()
    assert skip["credited_s"] <= 2.0 and skip["lesson_credited_s"] <= 2.0
    later = study.beat(session, 10, after=2).get_json()
    assert later["credited_s"] == 0 and later["reason"] == "ahead_of_furthest"
    assert later["completed"] is False


def test_heartbeats_from_a_hidden_page_earn_nothing(study):
    study.enrol()
    session = study.start()
    study.beat(session, 0)
    hid = study.beat(session, 2, after=2, hidden=True).get_json()
    assert hid["credited_s"] <= 2.0  # played until the page was hidden
    for second in (4, 6, 8):
        reply = study.beat(session, second, after=2, hidden=True).get_json()
        assert reply["credited_s"] == 0 and reply["reason"] == "hidden"
    assert reply["lesson_credited_s"] == hid["lesson_credited_s"]


def test_a_long_gap_closes_the_span(study):
    study.enrol()
    session = study.start()
    study.beat(session, 0)
    reply = study.beat(session, 2, after=60).get_json()
    assert reply["credited_s"] == 0 and reply["reason"] == "gap"
    assert study.beat(session, 4, after=2).get_json()["credited_s"] > 0


def test_second_device_ends_the_first_session(study):
    study.enrol()
    phone = study.start()
    study.beat(phone, 0)
    laptop = study.start()
    refused = study.beat(phone, 2, after=2)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "session_ended"
    study.beat(laptop, 0)
    assert study.beat(laptop, 2, after=2).get_json()["lesson_credited_s"] <= 2.0


def test_both_devices_in_turn_never_earn_more_than_the_clock(study):
    study.enrol()
    total = 0.0
    for _ in range(3):
        session = study.start()
        study.beat(session, 0)
        total = study.beat(session, 2, after=2).get_json()["lesson_credited_s"]
    assert total <= 6.0 + 0.01  # three sittings of two seconds each


def test_credit_never_exceeds_the_lesson_length(study):
    study.enrol()
    session = study.start()
    for _ in range(3):  # watch the whole clip three times
        watch_honestly(study, session)
        study.beat(session, 0, after=2)
    final = study.beat(session, 2, after=2).get_json()
    assert final["lesson_credited_s"] <= 10.1


def test_every_heartbeat_is_kept_as_evidence(study, fresh_app):
    study.enrol()
    watch_honestly(study, study.start())
    with fresh_app.app_context():
        rows = db.session.query(HeartbeatRecord).all()
        assert len(rows) == 7  # six while watching, and the paused one after the closing check
        assert rows[0].reason == "first_heartbeat"
        assert sum(row.credited_s for row in rows) > 9


def test_bad_heartbeats_get_clear_4xx(study, client, fresh_app):
    study.enrol()
    session = study.start()
    for body in (
        {"position_s": -1},
        {"position_s": "10"},
        {"position_s": True},
        {},
        {"position_s": 999},
        {"position_s": 1, "hidden": "yes"},
        {"position_s": 1, "seq": -1},
        {"position_s": 1, "seq": 1.5},
        {"position_s": 1, "seq": "3"},
        {"position_s": 1, "seq": 2**31},
    ):
        response = client.post(
            f"/api/v1/sessions/{session}/heartbeats", json=body, headers=study.auth
        )
        assert response.status_code == 422, body
    nan = client.post(
        f"/api/v1/sessions/{session}/heartbeats",
        data='{"position_s": NaN}',
        content_type="application/json",
        headers=study.auth,
    )
    # NaN is not JSON (RFC 8259): the body is refused before any field is read.
    assert nan.status_code == 400
    assert nan.get_json()["error"]["code"] == "malformed_json"
    make_trainee(fresh_app, "440304199512310024", phone="13700000000")
    from tests.conftest import api_token

    other = api_token(client, "440304199512310024", "Study2026ok")
    response = client.post(
        f"/api/v1/sessions/{session}/heartbeats",
        json={"position_s": 1},
        headers={"Authorization": f"Bearer {other}"},
    )
    assert response.status_code == 404
