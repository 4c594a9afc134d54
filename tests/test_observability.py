"""Observability: JSON logs with a request id that follows a request into its jobs, Prometheus
metrics for the operator only, readiness that names the dependency that is down."""

from __future__ import annotations

import io
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask, g
from prometheus_client.parser import text_string_to_metric_families

from app.db import utcnow
from app.extensions import db
from app.identity.models import User
from app.jobs import service as jobs
from app.jobs.models import Job, JobStatus
from app.observability import logs
from app.observability import requests as observed
from config import ConfigError, ProductionConfig, check_observability
from tests.conftest import TEST_REDIS_URL, make_app, make_trainee, service_missing
from tests.jobs.test_workers import kill_group, start, worker_env

OBSERVED = "test_observed"
NGINX_ID = "0123456789abcdef0123456789abcdef"  # the shape of nginx's $request_id
job_log = logging.getLogger("tests.observed_job")


@jobs.handler(OBSERVED)
def observed_job(subject_id: int, _progress) -> None:
    job_log.info("observed job ran for subject %s", subject_id)


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The root handler's output as JSON lines in a buffer, for apps made with LOG_FORMAT=json;
    the text format is put back afterwards."""
    buffer = io.StringIO()
    yield buffer
    logs.configure("text")


def capture(app: Flask, buffer: io.StringIO) -> None:
    """Point the handler the app installed at the buffer (it wrote to stderr)."""
    handler = logs.installed_handler()
    assert handler is not None and app.config["LOG_FORMAT"] == "json"
    handler.setStream(buffer)


def parsed(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def stop_thread_backend(app: Flask) -> None:
    backend = app.extensions["veriskill.jobs"]
    backend.worker.stopped.set()
    backend.worker.wake.set()
    if backend.thread is not None:
        backend.thread.join(timeout=5)
    for thread in threading.enumerate():  # the worker's schedule timer, which it only signals
        if thread.name == "job-schedule":
            thread.join(timeout=5)
    with app.app_context():
        db.engine.dispose()


def wait_until_done(app: Flask, job_id: int) -> Job:
    deadline = time.monotonic() + 15
    with app.app_context():
        while time.monotonic() < deadline:
            job = db.session.get(Job, job_id)
            if job is not None and job.finished:
                db.session.expunge(job)
                db.session.remove()
                return job
            db.session.remove()
            time.sleep(0.1)
    pytest.fail(f"job {job_id} did not finish")


# --- logs and the request id ---------------------------------------------------------------------


def test_json_log_lines_carry_the_request_id_into_the_job_the_request_queued(fresh_app, json_lines):
    web = make_app(
        fresh_app.config["SQLALCHEMY_DATABASE_URI"],
        JOB_BACKEND="thread",
        JOB_POLL_S=0.2,
        LOG_FORMAT="json",
        PROXY_COUNT=1,
    )

    @web.post("/api/test/queue")
    def queue_a_job():
        job = jobs.enqueue(OBSERVED, 7)
        db.session.commit()
        logging.getLogger("tests.view").info("queued job %s", job.id)
        jobs.dispatch(job.id)
        return {"job_id": job.id}

    capture(web, json_lines)
    try:
        response = web.test_client().post("/api/test/queue", headers={"X-Request-ID": NGINX_ID})
        assert response.status_code == 200
        assert response.headers["X-Request-ID"] == NGINX_ID
        job_id = response.get_json()["job_id"]
        job = wait_until_done(web, job_id)
    finally:
        stop_thread_backend(web)
    assert job.status is JobStatus.DONE and job.request_id == NGINX_ID
    lines = parsed(json_lines)
    for line in lines:
        assert {"time", "level", "logger", "message", "request_id"} <= line.keys(), line
    ours = [line for line in lines if line["request_id"] == NGINX_ID]
    access = next(line for line in ours if line["logger"] == "veriskill.request")
    assert access["route"] == "/api/test/queue" and access["status"] == 200
    assert access["method"] == "POST" and access["duration_ms"] >= 0
    assert any(line["message"] == f"queued job {job_id}" for line in ours)
    ran = next(line for line in ours if line["logger"] == "tests.observed_job")
    assert ran["job_id"] == job_id and ran["job_kind"] == OBSERVED
    # The worker's lines after the job are no longer the request's.
    assert not any(
        line["logger"] == "tests.observed_job" and line["request_id"] != NGINX_ID for line in lines
    )


@pytest.mark.parametrize(
    ("proxies", "sent"),
    [
        (0, NGINX_ID),  # no proxy in front: a client's header is not trusted
        (1, "evil id; with spaces and quotes'"),
        (1, "x" * 65),
        (1, "short"),
    ],
)
def test_a_request_id_that_is_not_trusted_or_malformed_is_replaced(fresh_app, proxies, sent):
    web = make_app(fresh_app.config["SQLALCHEMY_DATABASE_URI"], PROXY_COUNT=proxies)
    answered = web.test_client().get("/healthz", headers={"X-Request-ID": sent})
    assert answered.headers["X-Request-ID"] != sent
    assert logs.valid_request_id(answered.headers["X-Request-ID"])
    with web.app_context():
        db.engine.dispose()


def test_each_request_gets_its_own_id(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert first != second and len(first) == 32


@pytest.mark.slow
def test_a_polling_worker_process_logs_the_job_under_the_queuing_request_id(
    database_url, fresh_app, tmp_path
):
    """`flask jobs work`, a process of its own, reads the id from the job's row."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the column is read the same on both; the thread test covers PostgreSQL")
    with fresh_app.test_request_context(), logs.bound(request_id=NGINX_ID):
        job_id = jobs.enqueue("no_such_kind", 3).id  # fails at once, logged all the same
        db.session.commit()
    log = tmp_path / "worker.log"
    env = worker_env(fresh_app, JOB_BACKEND="external", LOG_FORMAT="json")
    worker = start([sys.executable, "-m", "flask", "jobs", "work"], env, log)
    try:
        job = wait_until_done(fresh_app, job_id)
    finally:
        kill_group(worker)
    assert job.error_code == "unknown_job"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    started = [line for line in lines if line["message"] == "job started"]
    assert started and all(line["request_id"] == NGINX_ID for line in started), lines
    assert started[0]["job_id"] == job_id and started[0]["job_kind"] == "no_such_kind"


def test_log_settings_are_checked_at_start():
    config = ProductionConfig.__new__(ProductionConfig)
    config.LOG_FORMAT = "xml"
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        check_observability(config)
    config.LOG_FORMAT = "json"
    config.METRICS_ALLOW = "10.0.0.0/8, not-a-network"
    with pytest.raises(ConfigError, match="METRICS_ALLOW"):
        check_observability(config)
    config.METRICS_ALLOW = "10.0.0.0/8"
    config.METRICS_TOKEN = "short"
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        check_observability(config)
    config.METRICS_TOKEN = "t" * 40
    check_observability(config)
    assert ProductionConfig.LOG_FORMAT == "json"


# --- metrics ---------------------------------------------------------------------------------


def scrape(client, address: str = "127.0.0.1", **headers: str):
    return client.get("/metrics", environ_base={"REMOTE_ADDR": address}, headers=headers)


def samples(body: bytes) -> dict[tuple[str, frozenset], float]:
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_requests_by_route_and_report_the_queue(client, fresh_app):
    healthz = {"route": "/healthz", "method": "GET", "status": "2xx"}
    unmatched = {"route": "unmatched", "method": "GET", "status": "4xx"}
    count = "veriskill_http_request_duration_seconds_count"
    before = samples(scrape(client).data)
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    for path in ("/no/such/page/1", "/no/such/page/2"):
        assert client.get(path).status_code == 404
    with fresh_app.app_context():
        for subject in (1, 2):
            jobs.enqueue(OBSERVED, subject).created_at = utcnow() - timedelta(seconds=90)
        db.session.commit()
    response = scrape(client)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    after = samples(response.data)
    assert value(after, count, **healthz) - value(before, count, **healthz) == 3
    # Paths nobody routes share one series, whatever the path.
    assert value(after, count, **unmatched) - value(before, count, **unmatched) == 2
    assert not any("/no/such" in str(labels) for _, labels in after)
    assert value(after, "veriskill_jobs", kind=OBSERVED, status="queued") == 2
    assert value(after, "veriskill_jobs", kind=OBSERVED, status="running") == 0
    assert value(after, "veriskill_job_oldest_queued_age_seconds", kind=OBSERVED) >= 90


def test_metrics_are_a_404_to_anyone_else(client, fresh_app, monkeypatch):
    unknown = client.get("/no-such-page", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    refused = scrape(client, "203.0.113.9")
    assert refused.status_code == 404 == unknown.status_code
    assert b"veriskill_" not in refused.data
    # The same page as for a path that does not exist (which names the path it was asked for).
    assert refused.data.replace(b"/metrics", b"/no-such-page") == unknown.data
    monkeypatch.setitem(fresh_app.config, "METRICS_TOKEN", "s" * 40)
    assert scrape(client, "203.0.113.9", Authorization="Bearer wrong").status_code == 404
    assert scrape(client, "203.0.113.9", Authorization="Bearer " + "s" * 40).status_code == 200


def test_metrics_allow_list_takes_networks(fresh_app):
    web = make_app(
        fresh_app.config["SQLALCHEMY_DATABASE_URI"], METRICS_ALLOW="10.20.0.0/16, 2001:db8::/32"
    )
    with web.test_client() as client:
        assert scrape(client, "10.20.3.4").status_code == 200
        assert scrape(client, "2001:db8::7").status_code == 200
        assert scrape(client, "10.21.0.1").status_code == 404
        assert scrape(client, "127.0.0.1").status_code == 404  # the default is replaced
    with web.app_context():
        db.engine.dispose()


@pytest.mark.slow
def test_heartbeats_and_face_checks_are_counted(database_url, study, client):
    if not database_url.startswith("sqlite"):
        pytest.skip("counting does not depend on the database; the study runs once")
    before = samples(scrape(client).data)
    study.enrol()
    session_id = study.start()  # a sign-in check, passed
    assert study.beat(session_id, 0).status_code == 200  # the first: nothing to credit yet
    assert study.beat(session_id, 2, after=2).status_code == 200  # credited in full
    after = samples(scrape(client).data)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("veriskill_heartbeats_total", result="refused", reason="first_heartbeat") == 1
    assert grew("veriskill_heartbeats_total", result="credited", reason="none") == 1
    assert grew("veriskill_heartbeat_credited_seconds_total", reason="none") == 2
    assert grew("veriskill_face_checks_total", kind="sign_in", result="passed") == 1
    assert grew("veriskill_face_model_duration_seconds_count", operation="check") == 1
    route = "/api/v1/sessions/<int:session_id>/heartbeats"
    assert (
        grew(
            "veriskill_http_request_duration_seconds_count",
            route=route,
            method="POST",
            status="2xx",
        )
        == 2
    )


# --- readiness -----------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_readiness_answers_ok_when_everything_answers(client):
    response = client.get("/healthz/ready")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == "ready"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "redis": "skipped",  # not configured here
        "storage": "ok",
        "face_model": "ok",
    }


def test_readiness_names_a_stopped_redis_and_only_the_operator_sees_why(fresh_app):
    web = make_app(
        fresh_app.config["SQLALCHEMY_DATABASE_URI"],
        REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0",
        READY_TIMEOUT_S=1.0,
    )
    with web.test_client() as client:
        response = client.get("/healthz/ready")
        public = client.get("/healthz/ready", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    with web.app_context():
        db.engine.dispose()
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not_ready"
    redis_check = body["checks"]["redis"]
    assert redis_check["status"] == "failed" and redis_check["reason"] == "ConnectionError"
    assert "refused" in redis_check["detail"].lower()
    assert body["checks"]["database"]["status"] == "ok"
    assert public.status_code == 503
    assert public.get_json()["checks"]["redis"] == {"status": "failed", "reason": "ConnectionError"}
    assert "127.0.0.1" not in public.get_data(as_text=True)


@pytest.mark.redis
def test_readiness_checks_a_running_redis(fresh_app):
    import redis

    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as error:
        service_missing(f"Redis at {TEST_REDIS_URL} is not reachable: {error}")
    web = make_app(fresh_app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=TEST_REDIS_URL)
    with web.test_client() as client:
        response = client.get("/healthz/ready")
    with web.app_context():
        db.engine.dispose()
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"]["redis"]["status"] == "ok"


def test_readiness_names_storage_it_cannot_write(fresh_app, tmp_path):
    root = tmp_path / "storage"
    web = make_app(fresh_app.config["SQLALCHEMY_DATABASE_URI"], STORAGE_ROOT=str(root))
    root.rmdir()
    root.write_text("a file where the storage folder was (a volume that went away)")
    with web.test_client() as client:
        response = client.get("/healthz/ready")
    with web.app_context():
        db.engine.dispose()
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["storage"] == {
        "status": "failed",
        "reason": "FileExistsError",
        "detail": checks["storage"]["detail"],
    }
    assert checks["database"]["status"] == "ok"


# --- several processes --------------------------------------------------------------------------


@pytest.mark.slow
def test_metrics_add_up_across_gunicorn_workers(database_url, fresh_app, tmp_path):
    """Two worker processes count into PROMETHEUS_MULTIPROC_DIR; every scrape, whichever
    worker answers it, reports the requests of both. The folder is emptied at start."""
    if not database_url.startswith("sqlite"):
        pytest.skip("counting across processes does not depend on the database")
    from tests.verification.test_faces_under_load import gunicorn, request

    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_1.db").write_bytes(b"left over from the last run")
    env = worker_env(fresh_app, JOB_BACKEND="external", PROMETHEUS_MULTIPROC_DIR=str(folder))
    log = tmp_path / "gunicorn.log"
    with gunicorn(env, log, ["--workers", "2", "--threads", "2"]) as (_, port):
        assert not (folder / "counter_1.db").exists()
        sent = 0
        while len(pids_counting(folder)) < 2 and sent < 400:  # until both workers served
            assert request(port, "GET", "/healthz", b"", {"Connection": "close"})[0] == 200
            sent += 1
        totals = set()
        for _ in range(6):
            status, body = request(port, "GET", "/metrics", b"", {"Connection": "close"})
            assert status == 200
            totals.add(
                value(
                    samples(body),
                    "veriskill_http_request_duration_seconds_count",
                    route="/healthz",
                    method="GET",
                    status="2xx",
                )
            )
        pids = pids_counting(folder)
    assert len(pids) == 2, (pids, log.read_text()[-2000:])
    # Every scrape, whichever worker answered it, saw all of them (the start-up probes of
    # /healthz that the helper made count too).
    assert len(totals) == 1 and totals.pop() >= sent, totals


def pids_counting(folder: Path) -> set[str]:
    return {path.stem.rsplit("_", 1)[-1] for path in folder.glob("histogram_*.db")}


def test_the_access_line_names_the_caller_without_loading_it_again(fresh_app):
    """After a commit the signed-in user is expired; naming it in the log must not cost the
    request another round trip to the database."""
    user_id = make_trainee(fresh_app)
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    with fresh_app.test_request_context("/"):
        user = db.session.get(User, user_id)
        db.session.commit()  # expires the user, as a view's commit does
        g._login_user = user
        engine = db.engine
        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            assert observed._user_id() == user_id
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
    assert statements == []
