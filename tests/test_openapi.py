"""The OpenAPI document: valid, complete against the URL map, and true to real responses."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from werkzeug.test import TestResponse

from app import openapi
from app.courses import service as courses
from app.error_codes import ERRORS, api_codes
from app.extensions import db
from app.identity.auth import API_OPEN_WITH_TEMPORARY
from app.identity.models import Role
from app.identity.throttle import MemoryFailureStore
from app.jobs.service import run_pending
from app.openapi.document import DOMAINS
from tests.conftest import (
    TRAINEE_ID,
    TRAINEE_PASSWORD,
    api_token,
    bearer,
    make_app,
    make_platform,
    make_staff,
    multipart,
)
from tests.courses.helpers import CLIP, add_lesson, create_course, put_chunk, upload_whole
from tests.verification.photos import photo, variant

IGNORED_METHODS = {"HEAD", "OPTIONS"}  # Werkzeug answers these for every route by itself
DOC_URI = "urn:veriskill:openapi"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
SRT = "1\n00:00:00,500 --> 00:00:02,000\n安全第一\n"
REGISTRATION = {
    "name": "王小明",
    "id_number": TRAINEE_ID,
    "phone": "13800138000",
    "password": TRAINEE_PASSWORD,
}


@pytest.fixture(scope="session")
def api_app(app: Flask, database_url: str) -> Iterator[Flask]:
    """The app serving the document: the session app once the factory registers the blueprint,
    until then a second app on the same (migrated) database with the blueprint added."""
    if "openapi" in app.blueprints:
        yield app
        return
    extra = make_app(database_url)
    extra.register_blueprint(openapi.bp)
    yield extra
    with extra.app_context():
        db.engine.dispose()


@pytest.fixture
def api(api_app: Flask, fresh_app: Flask) -> FlaskClient:
    """A client of api_app; fresh_app empties the database after the test."""
    api_app.extensions["veriskill.login_throttle"].store = MemoryFailureStore()
    return api_app.test_client()


@pytest.fixture
def doc(api: FlaskClient) -> dict[str, Any]:
    response = api.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.is_json
    return response.get_json()


def flask_path(rule: str) -> str:
    """`/api/v1/courses/<int:course_id>` -> `/api/v1/courses/{course_id}`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def pointer_part(text: str) -> str:
    return text.replace("~", "~0").replace("/", "~1")


class Contract:
    """Checks a real response against what the document promises for that operation."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.registry = Registry().with_resource(DOC_URI, DRAFT202012.create_resource(doc))

    def check(self, response: TestResponse, method: str, path: str) -> Any:
        operation = self.doc["paths"][path][method]
        status = str(response.status_code)
        text = response.get_data(as_text=True)[:500]
        assert status in operation["responses"], (
            f"{method.upper()} {path} answered {status}, which is not documented: {text}"
        )
        pointer = f"/paths/{pointer_part(path)}/{method}/responses/{status}"
        documented = operation["responses"][status]
        if "$ref" in documented:
            pointer = documented["$ref"].removeprefix("#")
            documented = openapi.resolve(self.doc, documented)
        content = documented.get("content")
        if not content:
            assert response.data == b"", f"{method.upper()} {path} {status} has a body: {text}"
            return None
        assert response.mimetype in content, (
            f"{method.upper()} {path} {status}: {response.mimetype}"
        )
        schema_uri = f"{DOC_URI}#{pointer}/content/{pointer_part(response.mimetype)}/schema"
        validator = Draft202012Validator(
            {"$ref": schema_uri},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        body = response.get_json()
        problems = [
            f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
            for error in validator.iter_errors(body)
        ]
        assert not problems, (
            f"{method.upper()} {path} {status} differs from the document: {problems}"
        )
        return body


@pytest.fixture
def contract(doc: dict[str, Any]) -> Contract:
    return Contract(doc)


def error_code(body: dict[str, Any]) -> str:
    return body["error"]["code"]


# --- The document itself ------------------------------------------------------------------------


def test_document_is_valid_openapi_3_1(doc):
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] == "VeriSkill API" and doc["info"]["version"] == "1"
    assert doc["servers"] == [{"url": "/"}]
    bearer_scheme = doc["components"]["securitySchemes"]["bearer"]
    assert (bearer_scheme["type"], bearer_scheme["scheme"]) == ("http", "bearer")


def test_every_api_route_is_documented_and_nothing_else(api_app, doc):
    routes = {
        (flask_path(rule.rule), method.lower())
        for rule in api_app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in (rule.methods or set()) - IGNORED_METHODS
    }
    documented = {
        (path, method) for path, operations in doc["paths"].items() for method in operations
    }
    assert not routes - documented, (
        f"routes missing from the app/*/openapi.py modules: {sorted(routes - documented)}"
    )
    assert not documented - routes, f"documented but not served: {sorted(documented - routes)}"


def test_every_error_code_the_document_names_is_explained(doc):
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                for code in openapi.error_codes_of(openapi.resolve(doc, response)):
                    assert ERRORS[code].status == int(status), (method, path, code)


def test_only_the_calls_open_with_a_temporary_password_omit_password_change_required(api_app, doc):
    open_routes = {
        (flask_path(rule.rule), method.lower())
        for rule in api_app.url_map.iter_rules()
        if rule.endpoint in API_OPEN_WITH_TEMPORARY
        for method in (rule.methods or set()) - IGNORED_METHODS
    }
    assert len(open_routes) == len(API_OPEN_WITH_TEMPORARY)
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if not operation["security"]:
                continue
            forbidden = operation["responses"].get("403", {})
            codes = openapi.error_codes_of(openapi.resolve(doc, forbidden))
            open_ = (path, method) in open_routes
            assert ("password_change_required" not in codes) == open_, (method, path)


def test_operations_name_their_auth_and_path_parameters(doc):
    for path, operations in doc["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, operation in operations.items():
            assert "security" in operation, (method, path)
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)
            if operation["security"]:
                assert "401" in operation["responses"], (method, path)


# --- Real responses match the document ----------------------------------------------------------


def test_accounts_answer_as_documented(api, contract, fresh_app):
    path = "/api/v1/auth/register"
    contract.check(api.post(path, json=REGISTRATION), "post", path)
    again = contract.check(api.post(path, json=REGISTRATION), "post", path)
    assert error_code(again) == "already_registered"
    invalid = contract.check(api.post(path, json={"name": "x"}), "post", path)
    assert error_code(invalid) == "invalid" and "id_number" in invalid["error"]["fields"]
    not_json = contract.check(api.post(path, data="name=x"), "post", path)
    assert error_code(not_json) == "unsupported_media_type"
    malformed = api.post(path, data="{", content_type="application/json")
    assert error_code(contract.check(malformed, "post", path)) == "malformed_json"

    path = "/api/v1/auth/token"
    issued = contract.check(
        api.post(path, json={"login": TRAINEE_ID, "password": TRAINEE_PASSWORD}), "post", path
    )
    wrong = api.post(path, json={"login": TRAINEE_ID, "password": "Wrong2026ok"})
    assert error_code(contract.check(wrong, "post", path)) == "bad_credentials"
    assert error_code(contract.check(api.post(path, json={}), "post", path)) == "invalid"

    me = contract.check(api.get("/api/v1/me", headers=bearer(issued["token"])), "get", "/api/v1/me")
    assert me["role"] == "trainee" and me["id_number"] == "110105********1239"
    anonymous = contract.check(api.get("/api/v1/me"), "get", "/api/v1/me")
    assert error_code(anonymous) == "unauthorized"
    forged = contract.check(api.get("/api/v1/me", headers=bearer("vsk_nope")), "get", "/api/v1/me")
    assert error_code(forged) == "invalid_token"

    make_staff(fresh_app, Role.AUDITOR, "auditor1")
    staff = api_token(api, "auditor1", "Audit2026ok")
    assert (
        contract.check(api.get("/api/v1/me", headers=bearer(staff)), "get", "/api/v1/me")[
            "username"
        ]
        == "auditor1"
    )
    contract.check(api.delete(path, headers=bearer(issued["token"])), "delete", path)
    gone = contract.check(api.delete(path, headers=bearer(issued["token"])), "delete", path)
    assert error_code(gone) == "invalid_token"


@pytest.mark.slow
def test_too_many_failed_sign_ins_answer_as_documented(api, contract, fresh_app):
    path = "/api/v1/auth/token"
    api.post("/api/v1/auth/register", json=REGISTRATION)
    for _ in range(fresh_app.config["LOGIN_MAX_FAILURES"]):
        api.post(path, json={"login": TRAINEE_ID, "password": "Wrong2026ok"})
    asked = api.post(path, json={"login": TRAINEE_ID, "password": TRAINEE_PASSWORD})
    assert error_code(contract.check(asked, "post", path)) == "captcha_required"
    for number in range(fresh_app.config["LOGIN_MAX_FAILURES_PER_ADDRESS"]):
        api.post(path, json={"login": f"user{number}", "password": "Wrong2026ok"})
    locked = api.post(path, json={"login": TRAINEE_ID, "password": TRAINEE_PASSWORD})
    body = contract.check(locked, "post", path)
    assert error_code(body) == "locked_out" and locked.headers["Retry-After"]


def test_occupations_answer_as_documented(api, contract):
    path = "/api/v1/occupations"
    page = contract.check(api.get(path), "get", path)
    assert page["total"] > 1000 and len(page["items"]) == 20
    found = contract.check(api.get(path, query_string={"q": "电工", "level": 4}), "get", path)
    assert any(item["code"] == "6-31-01-03" for item in found["items"])
    refused = contract.check(api.get(path, query_string={"per_page": 1000}), "get", path)
    assert error_code(refused) == "invalid"

    path = "/api/v1/occupations/{code}"
    detail = contract.check(api.get("/api/v1/occupations/6-31-01-03"), "get", path)
    assert detail["name"] == "电工" and detail["children"] == []
    group = contract.check(api.get("/api/v1/occupations/6"), "get", path)
    assert group["parent_code"] is None and group["children"]
    assert error_code(contract.check(api.get("/api/v1/occupations/9-99"), "get", path)) == (
        "not_found"
    )


def test_courses_answer_as_documented(api, contract, fresh_app):
    token = make_platform(fresh_app)
    path = "/api/v1/courses"
    new = {"occupation_code": "6-31-01-03", "title": "低压电工作业", "hours": 16, "level": "初级"}
    created = contract.check(api.post(path, json=new, headers=bearer(token)), "post", path)
    assert created["status"] == "draft"
    bad = api.post(path, json={**new, "hours": 0}, headers=bearer(token))
    assert error_code(contract.check(bad, "post", path)) == "invalid"
    api.post("/api/v1/auth/register", json=REGISTRATION)
    trainee = api_token(api, TRAINEE_ID, TRAINEE_PASSWORD)
    denied = api.post(path, json=new, headers=bearer(trainee))
    assert error_code(contract.check(denied, "post", path)) == "forbidden"
    listed = contract.check(api.get(path, headers=bearer(token)), "get", path)
    assert [course["id"] for course in listed["items"]] == [created["id"]]

    course_id = created["id"]
    path = "/api/v1/courses/{course_id}"
    contract.check(api.get(f"/api/v1/courses/{course_id}", headers=bearer(token)), "get", path)
    missing = api.get(f"/api/v1/courses/{course_id + 1000}", headers=bearer(token))
    assert error_code(contract.check(missing, "get", path)) == "not_found"

    path = "/api/v1/courses/{course_id}/submit"
    empty = api.post(f"/api/v1/courses/{course_id}/submit", headers=bearer(token))
    assert error_code(contract.check(empty, "post", path)) == "no_lessons"

    path = "/api/v1/courses/{course_id}/cover"
    cover = api.put(f"/api/v1/courses/{course_id}/cover", data=PNG, headers=bearer(token))
    assert contract.check(cover, "put", path) == {"id": course_id, "cover": True}
    text = api.put(f"/api/v1/courses/{course_id}/cover", data=b"GIF89a", headers=bearer(token))
    assert error_code(contract.check(text, "put", path)) == "not_an_image"

    path = "/api/v1/courses/{course_id}/lessons"
    lesson = api.post(
        f"/api/v1/courses/{course_id}/lessons", json={"title": "第一课"}, headers=bearer(token)
    )
    assert contract.check(lesson, "post", path)["position"] == 1
    misplaced = api.post(
        f"/api/v1/courses/{course_id}/lessons",
        json={"title": "第九课", "position": 9},
        headers=bearer(token),
    )
    assert error_code(contract.check(misplaced, "post", path)) == "invalid"

    path = "/api/v1/courses/{course_id}/submit"
    not_ready = api.post(f"/api/v1/courses/{course_id}/submit", headers=bearer(token))
    body = contract.check(not_ready, "post", path)
    assert error_code(body) == "lessons_not_ready" and body["error"]["lesson_ids"]


def test_resumable_upload_answers_as_documented(api, contract, fresh_app):
    token = make_platform(fresh_app)
    lesson_id = add_lesson(api, token, create_course(api, token))
    path = "/api/v1/lessons/{lesson_id}/video"
    url = f"/api/v1/lessons/{lesson_id}/video"
    data = CLIP.read_bytes()
    half = len(data) // 2

    def put(body: bytes, content_range: str | None) -> Any:
        headers = {**bearer(token), "Content-Type": "application/octet-stream"}
        if content_range is not None:
            headers["Content-Range"] = content_range
        return contract.check(api.put(url, data=body, headers=headers), "put", path)

    assert error_code(put(b"abc", "bytes 0-2")) == "bad_content_range"
    assert error_code(put(b"abc", "bytes 0-9/10")) == "length_mismatch"
    assert error_code(put(b"", None)) == "empty_upload"
    assert error_code(put(b"abc", "bytes 0-2/99999999999999")) == "too_large"
    assert error_code(put(b"plain text, not a video", None)) == "not_a_video"
    first = put(data[:half], f"bytes 0-{half - 1}/{len(data)}")
    assert first == {"received_bytes": half, "total_bytes": len(data), "status": "uploading"}
    skipped = put(data[half + 10 :], f"bytes {half + 10}-{len(data) - 1}/{len(data)}")
    assert error_code(skipped) == "wrong_offset" and skipped["error"]["expected_offset"] == half
    resized = put(data[half:] + b"!", f"bytes {half}-{len(data)}/{len(data) + 1}")
    assert error_code(resized) == "total_changed"

    state = api.get(f"/api/v1/lessons/{lesson_id}/upload", headers=bearer(token))
    assert contract.check(state, "get", "/api/v1/lessons/{lesson_id}/upload") == first
    last = put_chunk(api, token, lesson_id, data[half:], half, len(data))
    assert last.status_code == 202
    assert contract.check(last, "put", path)["status"] == "queued"
    assert error_code(put(data[:half], f"bytes 0-{half - 1}/{len(data)}")) == "processing"

    path = "/api/v1/lessons/{lesson_id}"
    queued = contract.check(
        api.get(f"/api/v1/lessons/{lesson_id}", headers=bearer(token)), "get", path
    )
    assert queued["status"] == "queued" and queued["playlist_url"] is None


def test_ready_lesson_and_captions_answer_as_documented(api, api_app, contract, fresh_app):
    token = make_platform(fresh_app)
    course_id = create_course(api, token)
    lesson_id = add_lesson(api, token, course_id)
    upload_whole(api, token, lesson_id, CLIP.read_bytes())
    with api_app.app_context():
        assert run_pending() == 1

    path = "/api/v1/lessons/{lesson_id}/captions"
    url = f"/api/v1/lessons/{lesson_id}/captions"
    form = {"language": "zh-CN", "file": (io.BytesIO(SRT.encode()), "lesson.srt")}
    caption = contract.check(api.post(url, data=form, headers=bearer(token)), "post", path)
    assert caption == {"language": "zh-CN", "label": "简体中文"}
    form = {"language": "zh-CN", "file": (io.BytesIO(b"not captions"), "x.srt")}
    bad = api.post(url, data=form, headers=bearer(token))
    assert error_code(contract.check(bad, "post", path)) == "invalid_captions"
    no_file = api.post(url, data={"language": "en"}, headers=bearer(token))
    assert error_code(contract.check(no_file, "post", path)) == "invalid"

    path = "/api/v1/lessons/{lesson_id}"
    ready = contract.check(
        api.get(f"/api/v1/lessons/{lesson_id}", headers=bearer(token)), "get", path
    )
    assert ready["status"] == "ready" and ready["playlist_url"] and ready["renditions"]
    make_staff(fresh_app, Role.ADMIN, "chief")
    admin = api_token(api, "chief", "Audit2026ok")
    contract.check(api.get(f"/api/v1/lessons/{lesson_id}", headers=bearer(admin)), "get", path)
    api.post("/api/v1/auth/register", json=REGISTRATION)
    trainee = api_token(api, TRAINEE_ID, TRAINEE_PASSWORD)
    denied = api.get(f"/api/v1/lessons/{lesson_id}", headers=bearer(trainee))
    assert error_code(contract.check(denied, "get", path)) == "forbidden"

    path = "/api/v1/courses/{course_id}/submit"
    submitted = api.post(f"/api/v1/courses/{course_id}/submit", headers=bearer(token))
    assert contract.check(submitted, "post", path)["status"] == "in_review"
    again = api.post(f"/api/v1/courses/{course_id}/submit", headers=bearer(token))
    assert error_code(contract.check(again, "post", path)) == "course_locked"
    course = api.get(f"/api/v1/courses/{course_id}", headers=bearer(token))
    contract.check(course, "get", "/api/v1/courses/{course_id}")

    with api_app.app_context():
        courses.publish(courses.get_course(course_id))
        db.session.commit()
    check_study(api, contract, trainee, course_id, lesson_id, admin)


def check_consent(api, contract, trainee) -> None:
    """No face without consent; the text, a stale version refused, then consent given."""
    body, content_type = multipart([("image", "f.jpg", photo("obama_1.jpg"))])
    face = "/api/v1/me/face"
    refused = api.put(face, data=body, content_type=content_type, headers=bearer(trainee))
    assert error_code(contract.check(refused, "put", face)) == "consent_required"
    path = "/api/v1/me/consent"
    [required] = contract.check(api.get(path, headers=bearer(trainee)), "get", path)["required"]
    stale = {"purpose": required["purpose"], "version": "face-2000-01"}
    wrong = api.post(path, json=stale, headers=bearer(trainee))
    assert error_code(contract.check(wrong, "post", path)) == "consent_version_outdated"
    current = {"purpose": required["purpose"], "version": required["version"]}
    given = api.post(path, json=current, headers=bearer(trainee))
    assert given.status_code == 201
    contract.check(given, "post", path)


def check_faces(api, contract, trainee) -> None:
    """Face enrolment: a refusal with its code, then a good photo, then the state."""
    path = "/api/v1/me/face"
    for data, code in ((photo("two_people.jpg"), "multiple_faces"), (b"text", "not_an_image")):
        body, content_type = multipart([("image", "f.jpg", data)])
        refused = api.put(path, data=body, content_type=content_type, headers=bearer(trainee))
        assert error_code(contract.check(refused, "put", path)) == code
    body, content_type = multipart([("image", "f.jpg", photo("obama_1.jpg"))])
    enrolled = api.put(path, data=body, content_type=content_type, headers=bearer(trainee))
    assert contract.check(enrolled, "put", path)["status"] == "active"
    state = api.get(path, headers=bearer(trainee))
    assert contract.check(state, "get", path)["enrolled"] is True


def check_study(api, contract, trainee, course_id, lesson_id, admin) -> None:
    """Enrolment, a study session and its heartbeats, on a published course."""
    path = "/api/v1/courses/{course_id}/enrollments"
    url = f"/api/v1/courses/{course_id}/enrollments"
    enrollment_id = contract.check(api.post(url, headers=bearer(trainee)), "post", path)["id"]
    again = contract.check(api.post(url, headers=bearer(trainee)), "post", path)
    assert error_code(again) == "already_enrolled" and again["id"] == enrollment_id
    assert error_code(contract.check(api.post(url, headers=bearer(admin)), "post", path)) == (
        "forbidden"
    )
    mine = api.get("/api/v1/me/enrollments", headers=bearer(trainee))
    assert contract.check(mine, "get", "/api/v1/me/enrollments")["items"][0]["id"] == enrollment_id
    path = "/api/v1/enrollments/{enrollment_id}"
    for caller in (trainee, admin):
        one = api.get(f"/api/v1/enrollments/{enrollment_id}", headers=bearer(caller))
        assert contract.check(one, "get", path)["course_id"] == course_id

    path = "/api/v1/lessons/{lesson_id}/sessions"
    url = f"/api/v1/lessons/{lesson_id}/sessions"
    check_consent(api, contract, trainee)
    no_face = contract.check(api.post(url, headers=bearer(trainee)), "post", path)
    assert error_code(no_face) == "face_not_enrolled"
    check_faces(api, contract, trainee)
    first = contract.check(api.post(url, headers=bearer(trainee)), "post", path)
    assert first["check"]["kind"] == "sign_in"
    check_path = "/api/v1/checks/{check_id}"
    body, content_type = multipart([("image", "a.jpg", variant("obama_2.jpg", 1))])
    verdict = api.post(
        f"/api/v1/checks/{first['check']['id']}",
        data=body,
        content_type=content_type,
        headers=bearer(trainee),
    )
    assert contract.check(verdict, "post", check_path)["passed"] is True
    closed = api.post(
        f"/api/v1/checks/{first['check']['id']}",
        data=body,
        content_type=content_type,
        headers=bearer(trainee),
    )
    assert error_code(contract.check(closed, "post", check_path)) == "check_closed"
    path = "/api/v1/sessions/{session_id}/heartbeats"
    url = f"/api/v1/sessions/{first['id']}/heartbeats"
    beat = contract.check(
        api.post(url, json={"position_s": 0}, headers=bearer(trainee)), "post", path
    )
    assert beat["credited_s"] == 0
    wrong = api.post(url, json={"position_s": -1}, headers=bearer(trainee))
    assert error_code(contract.check(wrong, "post", path)) == "invalid"
    api.post(f"/api/v1/lessons/{lesson_id}/sessions", headers=bearer(trainee))  # another device
    ended = contract.check(
        api.post(url, json={"position_s": 1}, headers=bearer(trainee)), "post", path
    )
    assert error_code(ended) == "session_ended" and ended["error"]["end_reason"] == "superseded"


def test_the_document_describes_itself(api, contract):
    contract.check(api.get("/api/v1/openapi.json"), "get", "/api/v1/openapi.json")


# --- The page for integrators -------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_docs_page_lists_every_operation(api, doc, lang):
    api.set_cookie("lang", lang)
    response = api.get("/api/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for path, operations in doc["paths"].items():
        assert f"<code>{path}</code>" in page, path
        for operation in operations.values():
            assert f'id="{operation["operationId"]}"' in page
    for code in api_codes():
        assert f"<code>{code}</code>" in page, code
    assert "Content-Range" in page and "expected_offset" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "no outside resources"


# --- Languages ----------------------------------------------------------------------------------

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_api_messages_follow_accept_language(api):
    def error(headers: dict[str, str]) -> dict[str, Any]:
        response = api.get("/api/v1/me", headers=headers)
        assert response.status_code == 401
        return response.get_json()["error"]

    assert CJK.search(error({})["message"])  # Chinese by default
    assert CJK.search(error({"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})["message"])
    assert CJK.search(error({"Accept-Language": "zh-TW"})["message"])
    english = error({"Accept-Language": "en-US,en;q=0.9"})
    assert english["message"].startswith("Sign in first") and english["code"] == "unauthorized"
    assert CJK.search(error({"Accept-Language": "fr-FR, de;q=0.5"})["message"])
    assert not CJK.search(error({"Accept-Language": "fr, en;q=0.3"})["message"])
    # Our own pages calling the API: the language switch wins, so the messages match the page.
    api.set_cookie("lang", "en")
    assert not CJK.search(error({"Accept-Language": "zh-CN"})["message"])
    api.set_cookie("lang", "zh")
    assert CJK.search(error({"Accept-Language": "en"})["message"])


def test_pages_keep_the_chosen_language_not_the_browsers(api):
    page = api.get("/", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    api.set_cookie("lang", "en")
    page = api.get("/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert '<html lang="en">' in page


def test_docs_page_speaks_the_readers_language_and_marks_english(api):
    from tests.test_page_sweep import problems, visible_text

    api.set_cookie("lang", "zh")
    page = api.get("/api/docs").get_data(as_text=True)
    assert "身份认证" in page and "Accept-Language" in page
    assert problems(page, "zh") == []
    english = [text for text, verbatim, is_english in visible_text(page) if is_english]
    assert any("Upload" in text or "upload" in text for text in english)  # the reference
    assert 'class="card op"' in page and page.count('class="card op" id=') == page.count(
        'lang="en">\n          <h3>'
    )
    api.set_cookie("lang", "en")
    page = api.get("/api/docs").get_data(as_text=True)
    assert "Authentication: send" in page and "身份认证" not in page


def test_every_domain_module_describing_the_api_is_collected():
    root = Path(openapi.__file__).resolve().parents[2]
    modules = {
        ".".join(path.relative_to(root).with_suffix("").parts)
        for path in (root / "app").glob("*/openapi.py")
    }
    assert modules == set(DOMAINS)
