"""Fixtures: the app on SQLite and on PostgreSQL, a clean database per test, clients, factories.

Every test that touches the database runs twice: on a SQLite file and on the PostgreSQL named
by TEST_DATABASE_URL. Where no PostgreSQL answers, those runs skip with the reason, unless
REQUIRE_SERVICES=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from app import create_app
from app.bureau import service as bureau
from app.catalog import service as catalog
from app.courses.models import Course, Lesson
from app.demo.cli import DEMO_TRAINEE
from app.extensions import db
from app.identity import service as identity
from app.identity.models import Role, User
from app.identity.throttle import MemoryFailureStore
from app.learning import service as learning
from app.learning.models import Enrollment
from app.platforms import service as platforms
from app.platforms.models import Platform
from config import Config
from tests.audit.helpers import append_only_lifted
from tests.made_once import MADE_ONCE, reused_media
from tests.media_pipeline.moto_server import MotoServer, MotoUnavailable, start_moto

# Study fixtures (a published course, a trainee with a face, a fake clock) live there.
pytest_plugins = ["tests.study"]

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
# Under pytest-xdist (`make test` runs two workers) each worker has a database of its own,
# `<database>_gw0`, `<database>_gw1`, created on the same server when missing.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
SERVER_DATABASE_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
TEST_DATABASE_URL = f"{SERVER_DATABASE_URL}_{XDIST_WORKER}" if XDIST_WORKER else SERVER_DATABASE_URL
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Tables the suite loads once per database and keeps between tests.
KEPT_TABLES = {"occupation", "district", "alembic_version"}
STORAGE_ROOT = tempfile.mkdtemp(prefix="veriskill-test-storage-")
TRAINEE_ID = "110105199003071239"
TRAINEE_PASSWORD = "Study2026ok"


def service_missing(reason: str) -> None:
    """Skip where a service is absent on a developer's machine; fail in CI."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1)")
    pytest.skip(reason)


@pytest.hookimpl(tryfirst=True)  # before `-m` selects: browser tests are `slow` by themselves
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests on one database only leave out their run on the other; every browser test (it
    starts Chromium) is `slow`; under pytest-xdist, the tests that share Redis (Celery brokers
    they flush, counters) run one after another on one worker (each worker has its own
    database and files already)."""
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.slow)
    elsewhere = [item for item in items if not runs_on_its_database(item)]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if runs_on_its_database(item)]
    if config.pluginmanager.hasplugin("xdist"):
        for item in items:
            if uses_redis(item):
                item.add_marker(pytest.mark.xdist_group("redis"))


def runs_on_its_database(item: pytest.Item) -> bool:
    """False for the run of a one-database test on the other database.

    `@pytest.mark.database("postgresql")` keeps a test on PostgreSQL alone (heavy scenarios
    whose SQLite run shows nothing more). Browser tests run on SQLite alone: a page in
    Chromium goes through the same routes and services on either database, `make run` serves
    SQLite, and every route they drive has API or page tests on both databases.
    """
    callspec = getattr(item, "callspec", None)
    database = callspec.params.get("database_url") if callspec is not None else None
    if database is None:
        return True
    marker = item.get_closest_marker("database")
    if marker is not None:
        return database == marker.args[0]
    return item.get_closest_marker("browser") is None or database == "sqlite"


def uses_redis(item: pytest.Item) -> bool:
    module = getattr(item, "module", None)
    shared = ("TEST_REDIS_URL", "CELERY_REDIS_URL")
    return item.get_closest_marker("redis") is not None or any(
        hasattr(module, name) for name in shared
    )


@pytest.fixture(scope="session", autouse=True)
def made_once_removed() -> Iterator[None]:
    """The ffmpeg and face-model outputs kept for the session are deleted after it."""
    yield
    MADE_ONCE.remove()


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """An S3-compatible server on 127.0.0.1 (moto), standing in for MinIO."""
    try:
        server = start_moto()
    except MotoUnavailable as error:
        service_missing(f"moto's S3 server could not start: {error}")
    try:
        yield server
    finally:
        server.stop()


class TestConfig(Config):
    ENV_NAME = "test"
    TESTING = True
    SECRET_KEY = "test-secret-key"
    DATA_KEY = "test-data-key"
    AUDIT_KEY = "test-audit-key"
    AUDIT_ANCHOR_PATH = os.path.join(tempfile.mkdtemp(prefix="veriskill-audit-"), "anchors.jsonl")
    LOGIN_MAX_FAILURES = 5
    LOGIN_MAX_FAILURES_PER_ADDRESS = 20
    LOGIN_LOCKOUT_S = 900
    REDIS_URL = None
    DEMO_CONTENT = True
    STORAGE_BACKEND = "local"
    # Tests run queued jobs themselves (jobs.service.run_pending) or start real workers.
    JOB_BACKEND = "external"
    JOB_HEARTBEAT_S = 1.0
    JOB_STALE_S = 5.0
    TRANSCODE_PRESET = "ultrafast"
    # Still photos answer checks in tests; liveness has its own tests with a burst.
    LIVENESS = False
    # Scenarios expect the rules' own status; spot checks have their own tests.
    SPOT_CHECK_RATE = 0.0
    # The suite hashes thousands of throwaway passwords: 1 ms each instead of ~250 ms.
    # tests/identity/test_password_cost.py holds the strong cost everywhere else.
    PASSWORD_HASH_COST = (1, 1024, 1)


def reset_postgres(url: str, schema: str = "public") -> None:
    try:
        if url == TEST_DATABASE_URL != SERVER_DATABASE_URL:
            create_worker_database()
        with psycopg.connect(url, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as error:
        service_missing(f"PostgreSQL at {url} is not reachable: {error}".strip())


def create_worker_database() -> None:
    """This xdist worker's database, made through the configured one when it is missing."""
    name = TEST_DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(SERVER_DATABASE_URL, connect_timeout=3, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return
        conn.execute(f'CREATE DATABASE "{name}"')


def make_app(database_url: str, **overrides: Any) -> Flask:
    settings = {"SQLALCHEMY_DATABASE_URI": database_url, "STORAGE_ROOT": STORAGE_ROOT}
    return create_app(TestConfig(), {**settings, **overrides})


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    reset_postgres(TEST_DATABASE_URL)
    return re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", TEST_DATABASE_URL)


@pytest.fixture(scope="session")
def app(database_url: str) -> Iterator[Flask]:
    """One app per database, migrated from empty, with the catalogue and districts loaded."""
    app = make_app(database_url)
    with app.app_context():
        upgrade()
        catalog.load()
        bureau.load_districts()
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


def clean_database(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn, append_only_lifted(conn):
            for table in reversed(db.metadata.sorted_tables):
                if table.name not in KEPT_TABLES:
                    conn.execute(table.delete())
    app.extensions["veriskill.login_throttle"].store = MemoryFailureStore()
    shutil.rmtree(app.config["STORAGE_ROOT"], ignore_errors=True)
    Path(app.config["AUDIT_ANCHOR_PATH"]).unlink(missing_ok=True)


@pytest.fixture
def fresh_app(app: Flask) -> Iterator[Flask]:
    """The session app, with every table but the catalogue emptied after the test."""
    yield app
    clean_database(app)


@pytest.fixture
def ctx(fresh_app: Flask) -> Iterator[Flask]:
    """An app context for calling services directly."""
    with fresh_app.test_request_context():
        yield fresh_app
        db.session.rollback()


@pytest.fixture
def client(fresh_app: Flask) -> FlaskClient:
    return fresh_app.test_client()


@pytest.fixture
def runner(fresh_app: Flask):
    return fresh_app.test_cli_runner()


def count_rows(app: Flask, model: type) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def make_trainee(
    app: Flask, id_number: str = TRAINEE_ID, *, consent: bool = True, **fields: Any
) -> int:
    """A registered trainee; with ``consent`` (the default) one who has consented to face
    processing, as every trainee who enrols a face must have."""
    data = {"name": "李四", "id_number": id_number, "phone": "13912345678"}
    data.update(fields)
    data.setdefault("password", TRAINEE_PASSWORD)
    with app.test_request_context():
        from app.timeutil import today_local

        user = identity.register_trainee(data, today=today_local())
        db.session.commit()
        user_id = user.id
    if consent:
        give_consent(app, user_id)
    return user_id


def give_consent(app: Flask, user_id: int) -> None:
    """Record the trainee's consent to face processing at the text's current version.

    A factory: the row as `consent.service.give` writes it, without its audit entry (the
    tests of the audit log count entries; tests/consent goes through the service and the API).
    """
    from app.consent import texts as consent_texts
    from app.consent.models import Consent

    with app.app_context():
        purpose = consent_texts.FACE
        version = consent_texts.CURRENT[purpose]
        db.session.add(Consent(user_id=user_id, purpose=purpose, version=version))
        db.session.commit()


def make_staff(
    app: Flask, role: Role = Role.AUDITOR, username: str = "auditor1", district: str | None = None
) -> int:
    """A staff account with the password Audit2026ok; `district` for a district officer."""
    with app.test_request_context():
        user = identity.create_staff(role, username, "Audit2026ok", district_code=district)
        db.session.commit()
        return user.id


def make_platform(app: Flask, name: str = "鲁班学堂") -> str:
    """A new active platform; returns its API token."""
    with app.test_request_context():
        platform = platforms.create(name, contact_name="张工")
        token, _ = platforms.issue_token(platform, label="测试")
        db.session.commit()
        return token


def multipart(files: list[tuple[str, str, bytes]], fields: dict[str, str] | None = None):
    """A multipart/form-data body built in memory: (data, content_type) for the test client.

    Werkzeug's test client spools large bodies to a temporary file that it never closes,
    which the warnings-as-errors setting rightly refuses.
    """
    boundary = "veriskill-test-boundary"
    parts = []
    for name, value in (fields or {}).items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    for name, filename, data in files:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_token(client: FlaskClient, login: str, password: str) -> str:
    response = client.post("/api/v1/auth/token", json={"login": login, "password": password})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["token"]


def sign_in_page(client: FlaskClient, login: str, password: str = "Audit2026ok") -> None:
    """Sign a browser session in through the real form."""
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"login": login, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def get_user(app: Flask, user_id: int) -> User:
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None
        db.session.expunge(user)
        return user


@pytest.fixture
def seeded(fresh_app, runner):
    """The demo content (accounts, a published course with two processed lessons), the demo
    trainee enrolled; the ids of real rows for the routes' arguments."""
    with reused_media():  # the demo clips are made and transcoded once per session
        assert runner.invoke(args=["demo", "seed"]).exit_code == 0
    with fresh_app.test_request_context():
        trainee = identity.find_by_login(DEMO_TRAINEE["id_number"])
        course_id = db.session.scalar(sa.select(Course.id))
        learning.enroll(trainee, course_id)
        db.session.commit()
        return {
            "course_id": course_id,
            "lesson_id": db.session.scalar(sa.select(sa.func.min(Lesson.id))),
            "enrollment_id": db.session.scalar(sa.select(Enrollment.id)),
            "platform_id": db.session.scalar(sa.select(Platform.id)),
        }
