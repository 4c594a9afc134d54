"""The Content-Security-Policy in real headless Chromium: every page that runs script (the
player, the camera, the auditors' desk, the printable certificate with its QR code, the admin's
preview) works under it, and no page reports a single violation."""

from __future__ import annotations

import pytest

from app.certificates import service as certificates
from app.demo.cli import DEMO_STAFF, DEMO_TRAINEE
from app.extensions import db
from app.identity import service as identity
from tests.browser import chromium, live_server, sign_in
from tests.study import enrol_face
from tests.verification.photos import photo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Violations as the page sees them (the event), besides what Chromium prints on the console.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""
ADMIN = next((u, p) for role, u, p, _ in DEMO_STAFF if role.value == "admin")


@pytest.fixture(scope="module")
def browser():
    with chromium(["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]) as b:
        yield b


@pytest.fixture
def demo(fresh_app, seeded):
    """The demo content; the demo trainee enrolled with an enrolled face and a certificate."""
    with fresh_app.test_request_context():
        trainee_id = identity.find_by_login(DEMO_TRAINEE["id_number"]).id
        number = certificates.issue(seeded["enrollment_id"], hours=2).number
        db.session.commit()
    ids = {
        "course": seeded["course_id"],
        "lesson": seeded["lesson_id"],
        "enrollment": seeded["enrollment_id"],
        "certificate": number,
    }
    enrol_face(fresh_app, trainee_id, photo("obama_1.jpg"))
    return ids


def visit(page, url: str, ready: str | None, console: list[str]) -> list[str]:
    """Open `url`, wait until `ready` (a JS expression) holds, and return its violations."""
    response = page.goto(url)
    assert response.status == 200, url
    assert response.headers.get("content-security-policy"), url
    if ready:
        # As a function: Playwright would eval() a bare expression, which the policy forbids.
        page.wait_for_function(f"() => ({ready})", timeout=20_000)
    page.wait_for_timeout(300)  # late loads (images, segments) report too
    seen = page.evaluate("window.__csp") + console[:]
    console.clear()
    return [f"{url}: {violation}" for violation in seen]


def test_no_page_breaks_or_reports_a_violation_under_the_policy(
    browser, database_url, fresh_app, demo
):
    if not database_url.startswith("sqlite"):
        pytest.skip("what the browser runs does not depend on the database; runs on SQLite")
    trainee_pages = [
        ("/", None),
        ("/courses", None),
        ("/learn", None),
        (f"/learn/{demo['enrollment']}", None),
        # The player asks for the camera and a sign-in check before it plays.
        (f"/learn/lessons/{demo['lesson']}", "document.querySelector('video') !== null"),
        ("/me/face", "document.getElementById('camera').videoWidth > 0"),
        ("/me/archive", "document.querySelector('[data-print]') !== null"),
        (
            f"/certificates/{demo['certificate']}",
            "document.querySelector('svg.qr').getBoundingClientRect().width >= 120"
            " && getComputedStyle(document.querySelector('.certificate')).borderTopStyle"
            " === 'double'",
        ),
        (f"/verify/{demo['certificate']}", "document.querySelector('.verdict-valid') !== null"),
        ("/api/docs", "getComputedStyle(document.querySelector('.method')).color !== ''"),
    ]
    admin_pages = [
        ("/admin/courses", None),
        (f"/admin/courses/{demo['course']}", None),
        # hls.js plays through Media Source Extensions: the video gets frames.
        (
            f"/admin/lessons/{demo['lesson']}/preview",
            "document.getElementById('preview').readyState >= 2",
        ),
        ("/admin/platforms", None),
        ("/admin/standards", None),
        ("/audit", None),
        # The reference photo comes through the desk's logged, viewer-bound link.
        (
            f"/audit/enrollments/{demo['enrollment']}",
            "[...document.querySelectorAll('img')].some((i) => i.complete && i.naturalWidth > 0)",
        ),
    ]
    violations: list[str] = []
    with live_server(fresh_app) as base:
        for (login, password), pages in (
            ((DEMO_TRAINEE["id_number"], DEMO_TRAINEE["password"]), trainee_pages),
            (ADMIN, admin_pages),
        ):
            context = browser.new_context()
            context.add_init_script(RECORD_VIOLATIONS)
            page = context.new_page()
            console: list[str] = []
            page.on(
                "console",
                lambda message, console=console: (
                    console.append(message.text)
                    if "Content Security Policy" in message.text
                    else None
                ),
            )
            sign_in(page, base, login, password)
            for path, ready in pages:
                violations += visit(page, base + path, ready, console)
            if pages is trainee_pages:
                # The print buttons and the camera's photo still work (no inline handlers).
                page.goto(f"{base}/me/face")
                page.wait_for_function("() => document.getElementById('camera').videoWidth > 0")
                page.click("#take")
                page.wait_for_function(
                    "() => !['', '…'].includes(document.getElementById('result').textContent)"
                )
                violations += visit(page, f"{base}/me/archive", None, console)
            context.close()
    assert violations == []
