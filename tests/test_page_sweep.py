"""Every page, for every role, in both languages: no raw status code, no untranslated text.

The sweep walks `app.url_map`, so a new page is swept the day it is added: its path
parameters come from PARAMS (rows made here in real states: a course in review, a rejected
one, a failed lesson, a failed and a pending face check, an identity flag, an appeal, a
re-enrolled face, a revoked certificate...). A GET route that is not an HTML page, or whose
parameter cannot be filled, must be listed in NOT_PAGES with the reason; a route neither
fillable nor listed fails the sweep.

What is read is the text a person sees (and alt, title, placeholder and aria-label), parsed
with the standard library. Text a page marks as verbatim (`<code>`, `<kbd>`, `translate="no"`
for data such as user agents) is not words to translate; text marked `lang="en"` is English
on purpose (the API reference).
"""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from flask import url_for
from flask_babel import force_locale

from app.certificates.models import Certificate
from app.courses.models import Course, CourseStatus, Lesson, LessonStatus
from app.db import utcnow
from app.demo.cli import DEMO_TRAINEE
from app.extensions import db
from app.identity import service as identity
from app.labels import LABELS, label
from app.learning.models import Enrollment, HeartbeatRecord, StudySession
from app.learning.rules import Reason as HeldReason
from app.platforms import service as platforms
from app.platforms.models import Platform
from app.stats import reports as stats_reports
from app.subsidy.models import Action, Appeal, Decision, SubsidyStandard
from app.subsidy.rules import Status as SubsidyStatus
from app.verification.models import (
    Check,
    CheckKind,
    CheckStatus,
    EvidenceKind,
    FaceStatus,
    FlagStatus,
    IdentityFlag,
)
from tests.conftest import make_trainee
from tests.test_labels import model_enums
from tests.verification.rows import evidence_row, reference_row

pytestmark = pytest.mark.slow

ROLES = {
    "anonymous": None,
    "trainee": (DEMO_TRAINEE["id_number"], DEMO_TRAINEE["password"]),
    "auditor": ("demo-auditor", "DemoAudit2026"),
    "admin": ("demo-admin", "DemoAdmin2026"),
}

# Not pages for people, or not fillable here: each with the reason.
NOT_PAGES = {
    "static": "files",
    "site.health": "JSON for the load balancer",
    "site.switch_language": "redirects back to the page it came from",
    "identity.captcha_image": "a PNG picture",
    "subsidy.evidence_image": "a redirect to a signed image link",
    "courses.lesson_playlist": "HLS playlists for the player",
    "media.object": "stored files behind signed links",
    "stats.download_report": "a report version as CSV or XLSX",
    "stats.export_file": "an export's file behind a signed link",
}
# JSON, media and files; the API's HTML page (/api/docs) is swept.
SKIPPED_PREFIXES = ("/api/v1/", "/media/", "/static/")

# Latin words a Chinese page may show: names of brands, formats, units and keys.
ALLOWED_LATIN = {
    "VeriSkill",  # the brand, beside 职训通
    "ID",
    "API",
    "JSON",
    "HTTP",
    "OpenAPI",
    "MB",
    "MiB",
    "JPEG",
    "PNG",
    "WebP",
    "SRT",
    "WebVTT",
    "HLS",
    "GB",  # GB/T 6565, the national standard of occupation codes
    "QR",
    "English",  # the switch to English, written in English on purpose
    "Ctrl",
    "Enter",
    "Esc",
    "Tab",
    "Cookie",
    "p",  # 360p, 720p: video heights
    "s",  # 3 s
}

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
INVISIBLE = {"script", "style", "template", "head"}
VERBATIM = {"code", "kbd", "samp", "pre"}
READ_ATTRIBUTES = ("alt", "title", "placeholder", "aria-label")


class VisibleText(HTMLParser):
    """The pieces of text a person reads, each with whether it is verbatim or English."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, bool, bool, bool]] = []  # tag, hidden, verbatim, english
        self.pieces: list[tuple[str, bool, bool]] = []  # text, verbatim, english
        self.title = ""

    def state(self) -> tuple[bool, bool, bool]:
        return self.stack[-1][1:] if self.stack else (False, False, False)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        hidden, verbatim, english = self.state()
        values = dict(attrs)
        hidden = hidden or (tag in INVISIBLE and tag != "head")
        verbatim = verbatim or tag in VERBATIM or values.get("translate") == "no"
        if "lang" in values:
            english = (values["lang"] or "").startswith("en")
        if not hidden and not (tag == "input" and values.get("type") == "hidden"):
            for name in READ_ATTRIBUTES:
                if values.get(name):
                    self.pieces.append((values[name] or "", verbatim, english))
            if (
                tag == "input"
                and values.get("type") in ("submit", "button")
                and values.get("value")
            ):
                self.pieces.append((values["value"] or "", verbatim, english))
        if tag not in VOID:
            self.stack.append((tag, hidden, verbatim, english))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        for at in range(len(self.stack) - 1, -1, -1):
            if self.stack[at][0] == tag:
                del self.stack[at:]
                return

    def handle_data(self, data: str) -> None:
        if not data.strip():
            return
        tags = [entry[0] for entry in self.stack]
        if "title" in tags:
            self.pieces.append((data, False, self.state()[2]))
            return
        hidden, verbatim, english = self.state()
        if not hidden and "head" not in tags:
            self.pieces.append((data, verbatim, english))


def visible_text(html: str) -> list[tuple[str, bool, bool]]:
    parser = VisibleText()
    parser.feed(html)
    parser.close()
    return parser.pieces


def all_codes() -> set[str]:
    codes = set(LABELS)
    for kind in [*model_enums(), SubsidyStatus, HeldReason]:
        codes |= {member.value for member in kind}
    return codes


CODES = all_codes()
UNDERSCORED = re.compile(
    r"\b(" + "|".join(sorted((c for c in CODES if "_" in c), key=len, reverse=True)) + r")\b"
)
LATIN = re.compile(r"[A-Za-z]+")
TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@\-]*")


def problems(html: str, lang: str) -> list[str]:
    found = []
    for text, verbatim, english in visible_text(html):
        if verbatim:
            continue
        line = " ".join(text.split())
        for match in UNDERSCORED.finditer(line):
            found.append(f"raw code {match.group(0)!r} in {line[:120]!r}")
        if lang != "zh" or english:
            continue
        for token in TOKEN.findall(line):
            if re.search(r"[0-9]", token) or "://" in token:
                continue  # a number, a code such as VS2026-7KQ3M-X9D2R, an address
            for word in LATIN.findall(token):
                if word in CODES:
                    found.append(f"raw code {word!r} in {line[:120]!r}")
                elif word not in ALLOWED_LATIN and not re.fullmatch(r"[A-Z]", word):
                    found.append(f"untranslated {word!r} in {line[:120]!r}")
    return found


# --- rows in every state a page can show ------------------------------------------------------


def make_states(app, seeded) -> dict[str, list]:
    """Rows behind each state a page shows; the values for the routes' parameters."""
    with app.test_request_context():
        trainee = identity.find_by_login(DEMO_TRAINEE["id_number"])
        auditor = identity.find_by_login("demo-auditor")
        demo = db.session.get(Course, seeded["course_id"])
        lesson = db.session.get(Lesson, seeded["lesson_id"])
        enrollment = db.session.get(Enrollment, seeded["enrollment_id"])
        now = utcnow()

        def course(status: CourseStatus, title: str, **fields) -> Course:
            row = Course(
                platform_id=demo.platform_id,
                occupation_code=demo.occupation_code,
                title=title,
                level=demo.level,
                hours=Decimal("8.0"),
                status=status,
                **fields,
            )
            db.session.add(row)
            db.session.flush()
            return row

        in_review = course(CourseStatus.IN_REVIEW, "电工安全（审核中）", submitted_at=now)
        rejected = course(CourseStatus.REJECTED, "电工安全（已驳回）", reject_reason="缺少第三课。")
        course(CourseStatus.DRAFT, "电工安全（草稿）")
        course(CourseStatus.WITHDRAWN, "电工安全（已下架）")
        for position, status in enumerate(LessonStatus, start=1):
            row = Lesson(
                course_id=in_review.id, position=position, title=f"第{position}课", status=status
            )
            if status is LessonStatus.FAILED:
                row.error_code, row.error_message = (
                    "not_a_video",
                    "Invalid data found when processing input",
                )
            db.session.add(row)

        # A sitting with every kind of face check, and heartbeats held back for reasons.
        session = StudySession(
            enrollment_id=enrollment.id,
            lesson_id=lesson.id,
            trainee_id=trainee.id,
            started_at=now - timedelta(minutes=30),
            ended_at=now - timedelta(minutes=5),
            user_agent="Mozilla/5.0 (Linux; Android 12) Chrome/120",
            address="127.0.0.1",
        )
        db.session.add(session)
        db.session.flush()
        checks = {}
        for status, code, kind in [
            (CheckStatus.PASSED, "passed", CheckKind.SIGN_IN),
            (CheckStatus.FAILED, "mismatch", CheckKind.RANDOM),
            (CheckStatus.FAILED, "expired", CheckKind.RANDOM),
            (CheckStatus.CANCELLED, "session_ended", CheckKind.CLOSING),
            (CheckStatus.PENDING, None, CheckKind.RANDOM),
        ]:
            row = Check(
                session_id=session.id,
                user_id=trainee.id,
                kind=kind,
                status=status,
                code=code,
                score=0.21 if code == "mismatch" else None,
                threshold=0.44 if code == "mismatch" else None,
                model="sface" if code == "mismatch" else None,
                position_s=5.0,
                attempts=1,
                expires_at=now,
                answered_at=None if status is CheckStatus.PENDING else now - timedelta(minutes=10),
            )
            db.session.add(row)
            db.session.flush()
            checks[code] = row
        evidence_row(
            trainee.id,
            EvidenceKind.SNAPSHOT,
            check_id=checks["mismatch"].id,
            result="no_match",
            score=0.21,
        )
        beats = [
            *([HeldReason.CHECK_PENDING] * 7),
            *([HeldReason.GAP] * 3),
            HeldReason.HIDDEN,
            None,
        ]
        for seq, reason in enumerate(beats):
            db.session.add(
                HeartbeatRecord(
                    session_id=session.id,
                    received_at=1_800_000_000.0 + 15 * seq,
                    seq=seq,
                    position_s=float(seq),
                    hidden=reason is HeldReason.HIDDEN,
                    playing=True,
                    credited_s=0.0 if reason else 15.0,
                    reason=reason.value if reason else None,
                )
            )

        # Faces: the trainee's in use and a re-enrolment waiting for staff; another trainee
        # whose face matches (an open flag) and one cleared long ago.
        reference_row(trainee.id, FaceStatus.ACTIVE)
        pending = reference_row(trainee.id, FaceStatus.PENDING_APPROVAL)
        other_id = make_trainee(app, "11010519491231002X", phone="13700000001", name="赵六")
        reference_row(other_id, FaceStatus.ACTIVE)
        open_flag = IdentityFlag(
            user_id=other_id,
            code="duplicate_identity",
            other_user_id=trainee.id,
            score=0.71,
            model="sface",
        )
        cleared_flag = IdentityFlag(
            user_id=trainee.id,
            code="possible_duplicate",
            other_user_id=other_id,
            score=0.5,
            model="sface",
            status=FlagStatus.CLEARED,
            resolved_by=auditor.id,
            resolved_at=now,
            note="两人长相相近，但不是同一人。",
        )
        db.session.add_all([open_flag, cleared_flag])

        # A rejection, the trainee's appeal, a revoked certificate and a valid one.
        rejection = Decision(
            enrollment_id=enrollment.id,
            action=Action.REJECT,
            reason="照片不是本人。",
            decided_by=auditor.id,
        )
        db.session.add(rejection)
        db.session.flush()
        db.session.add(
            Appeal(
                enrollment_id=enrollment.id,
                rejection_id=rejection.id,
                message="确实是我本人在学习。",
            )
        )
        certificates = []
        for number, revoked in [("VS2026-SWEEP-00001", True), ("VS2026-SWEEP-00002", False)]:
            db.session.add(
                Certificate(
                    number=number,
                    verify_code="AB12CD34",
                    enrollment_id=enrollment.id,
                    user_id=trainee.id,
                    holder_name=trainee.name,
                    occupation_code=demo.occupation_code,
                    occupation_name="电工",
                    course_title=demo.title,
                    level=demo.level,
                    hours=Decimal("0.50"),
                    issued_at=now - timedelta(days=3),
                    revoked_at=now - timedelta(days=1) if revoked else None,
                    revoke_reason="subsidy_rejected" if revoked else None,
                )
            )
            certificates.append(number)
            if not revoked:
                break
        _, token = platforms.issue_token(db.session.get(Platform, demo.platform_id), "测试")
        db.session.add(
            SubsidyStandard(
                occupation_code=demo.occupation_code, level=None, amount_yuan=Decimal("600")
            )
        )
        frozen = stats_reports.freeze_month("2026-03")
        db.session.commit()
        return {
            "period": [frozen.period],
            "course_id": [demo.id, in_review.id, rejected.id],
            "lesson_id": [lesson.id],
            "enrollment_id": [enrollment.id],
            "flag_id": [open_flag.id, cleared_flag.id],
            "reference_id": [pending.id],
            "number": certificates,
            "code": [demo.occupation_code, demo.occupation_code.rsplit("-", 1)[0]],
            "check_id": [checks["mismatch"].id],
            "platform_id": [demo.platform_id],
            "token_id": [token.id],
        }


def page_paths(app, params: dict[str, list]) -> list[str]:
    paths, unfilled = [], []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint in NOT_PAGES:
            continue
        if rule.rule.startswith(SKIPPED_PREFIXES):
            continue
        missing = [name for name in rule.arguments if name not in params]
        if missing:
            unfilled.append(f"{rule.rule} ({', '.join(missing)})")
            continue
        names = sorted(rule.arguments)
        for values in itertools.product(*(params[name] for name in names)):
            with app.test_request_context():
                paths.append(url_for(rule.endpoint, **dict(zip(names, values, strict=True))))
    assert not unfilled, (
        f"give these parameters values in make_states, or list them in NOT_PAGES: {unfilled}"
    )
    return sorted(set(paths))


def sign_in(client, login: str, password: str) -> None:
    from tests.conftest import csrf_from

    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"login": login, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, f"{login} could not sign in"


def test_visible_text_skips_verbatim_and_marks_english():
    html = (
        "<html><head><title>标题</title><script>var in_review;</script></head><body>"
        '<p>审核中 <code>in_review</code><img alt="照片"><input type="hidden" value="x_y"></p>'
        '<p translate="no">Mozilla/5.0</p><div lang="en"><p>Upload</p></div>'
        "<p>draft</p></body></html>"
    )
    assert visible_text(html) == [
        ("标题", False, False),
        ("审核中 ", False, False),
        ("in_review", True, False),
        ("照片", False, False),
        ("Mozilla/5.0", True, False),
        ("Upload", False, True),
        ("draft", False, False),
    ]
    assert problems(html, "zh") == ["raw code 'draft' in 'draft'"]
    assert problems("<p>waiting for check_pending</p>", "en") == [
        "raw code 'check_pending' in 'waiting for check_pending'"
    ]


def test_every_page_speaks_words_not_codes(seeded, fresh_app):
    params = make_states(fresh_app, seeded)
    paths = page_paths(fresh_app, params)
    assert len(paths) > 20
    report: dict[str, list[str]] = {}
    swept = 0
    for role, credentials in ROLES.items():
        for lang in ("zh", "en"):
            client = fresh_app.test_client()
            client.set_cookie("lang", lang)
            if credentials:
                sign_in(client, *credentials)
            for path in paths:
                response = client.get(path)
                assert response.status_code < 500, (role, lang, path)
                if response.mimetype != "text/html":
                    continue
                swept += 1
                found = problems(response.get_data(as_text=True), lang)
                if found:
                    report[f"{role} {lang} {path} ({response.status_code})"] = sorted(set(found))
    assert swept > 100
    assert not report, "\n".join(
        f"{page}:\n  " + "\n  ".join(found) for page, found in report.items()
    )


def test_sweep_covers_the_states_it_was_given(seeded, fresh_app):
    """The rows above really put each state on a page: otherwise the sweep proves little."""
    params = make_states(fresh_app, seeded)

    def page(role: str, path: str) -> str:
        client = fresh_app.test_client()
        client.set_cookie("lang", "zh")
        sign_in(client, *ROLES[role])
        response = client.get(path)
        assert response.status_code == 200, path
        return response.get_data(as_text=True)

    review = page("auditor", f"/audit/enrollments/{params['enrollment_id'][0]}")
    queue = page("auditor", "/audit")
    course = page("admin", f"/admin/courses/{params['course_id'][1]}")
    with fresh_app.test_request_context(), force_locale("zh"):
        for code, kind in [("mismatch", "check"), ("failed", "check"), ("pending", "check")]:
            assert label(code, kind) in review, code
        assert label("appealed") in queue and label("check_mismatch") in queue
        assert label("in_review") in course
    learning = page("trainee", f"/learn/{params['enrollment_id'][0]}")
    assert "此情况共出现 3 次" in learning
    assert "等待工作人员审批" in page("trainee", "/me/face")
