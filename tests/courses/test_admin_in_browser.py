"""Admin course pages in Chromium: captions from real-world files play at their times, and the
lesson list follows an upload by itself."""

import pytest

from app.identity.models import Role
from app.jobs.service import run_pending
from tests.browser import chromium, live_server, sign_in
from tests.conftest import make_platform, make_staff
from tests.courses.helpers import CLIP, add_lesson, create_course, upload_whole
from tests.courses.test_playback import lesson_json, post_captions, ready_lesson

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Timings as hand-made files carry them: one digit of fraction, none at all.
LOOSE_SRT = "1\n00:00:00,1 --> 00:00:04\n安全第一\n\n2\n00:00:04,5 --> 00:00:08\n规范操作\n"


def test_captions_without_milliseconds_play_at_their_times(client, fresh_app):
    token, lesson_id = ready_lesson(client, fresh_app)
    assert post_captions(client, token, lesson_id, LOOSE_SRT).status_code == 201
    make_staff(fresh_app, Role.ADMIN, "chief")
    with chromium() as browser, live_server(fresh_app) as base:
        page = browser.new_page(viewport={"width": 360, "height": 740})
        sign_in(page, base, "chief", "Audit2026ok")
        page.goto(f"{base}/admin/lessons/{lesson_id}/preview")
        page.evaluate(
            "() => { const v = document.querySelector('video'); v.muted = true; "
            "return v.play().catch(() => null); }"
        )
        page.wait_for_function(
            "() => { const t = document.querySelector('video').textTracks[0];"
            " return t && t.cues && t.cues.length === 2; }",
            timeout=30_000,
        )
        cues = page.evaluate(
            "() => Array.from(document.querySelector('video').textTracks[0].cues,"
            " c => [c.startTime, c.endTime, c.text])"
        )
        (start1, end1, text1), (start2, end2, text2) = cues
        assert (text1, text2) == ("安全第一", "规范操作")
        assert abs(start1 - 0.1) < 0.05 and abs(end1 - 4.0) < 0.05
        assert abs(start2 - 4.5) < 0.05 and abs(end2 - 8.0) < 0.05
        # While the video is inside the first cue, that cue is the one showing.
        page.wait_for_function(
            "() => { const v = document.querySelector('video');"
            " return v.currentTime > 1 && v.currentTime < 3.5; }",
            timeout=30_000,
        )
        active = page.evaluate(
            "() => Array.from(document.querySelector('video').textTracks[0].activeCues || [],"
            " c => c.text)"
        )
        assert active == ["安全第一"]


def test_the_lesson_list_follows_an_upload_without_a_reload(client, fresh_app):
    token = make_platform(fresh_app)
    course_id = create_course(client, token)
    lesson_id = add_lesson(client, token, course_id)
    make_staff(fresh_app, Role.ADMIN, "chief")
    with chromium() as browser, live_server(fresh_app) as base:
        page = browser.new_page(viewport={"width": 360, "height": 740})
        sign_in(page, base, "chief", "Audit2026ok")
        page.goto(f"{base}/admin/courses/{course_id}")
        row = f".lesson[data-lesson-id='{lesson_id}']"
        assert page.get_attribute(row, "data-status") == "awaiting_upload"
        assert page.locator("#pipeline-live").is_visible()
        upload_whole(client, token, lesson_id, CLIP.read_bytes())
        with fresh_app.app_context():
            assert run_pending() == 1
        assert lesson_json(client, token, lesson_id)["status"] == "ready"
        # Nobody touches the page: it notices by itself and shows the new state.
        page.wait_for_function(
            f'() => {{ const r = document.querySelector("{row}");'
            " return r && r.dataset.status === 'ready'; }",
            timeout=30_000,
        )
        assert page.locator(f"{row} a[href$='/preview']").is_visible()
