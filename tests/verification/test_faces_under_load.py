"""Face work under concurrent requests, against a real gunicorn serving the real app.

Twenty face enrolments and twenty check answers sent at the same moment once killed a
gunicorn worker with SIGSEGV (dlib and OpenCV objects shared between threads) and answered a
one-face photo with "225 faces found". Here every request must be answered, none with a 5xx,
and no worker may be restarted: as `make run` serves (one worker, 8 threads, SQLite) and as a
production box would (two workers of four threads, PostgreSQL).
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.db import utcnow
from app.extensions import db
from app.verification.models import Check, CheckKind, CheckStatus, FaceReference, IdentityFlag
from tests.conftest import TRAINEE_PASSWORD, api_token, make_trainee, multipart
from tests.jobs.test_workers import kill_group, start, worker_env
from tests.study import enrol_face, study_session
from tests.verification.photos import photo, variant
from tests.verification.test_cli import resident

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = 20
SERVERS = {
    "make-run": ("sqlite", ["--workers", "1", "--threads", "8"]),
    "production": ("postgresql", ["--workers", "2", "--threads", "4"]),
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes, headers: dict[str, str]):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=240)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@contextmanager
def gunicorn(
    env: dict[str, str],
    log: Path,
    flags: list[str],
    python: str | Path = sys.executable,
):
    """The app under a real gunicorn with ``flags`` (workers, threads), run by ``python``,
    answering /healthz: yields (master process, port); the whole process group is killed
    after."""
    port = free_port()
    command = [
        str(python),
        "-m",
        "gunicorn",
        "--config",
        "gunicorn.conf.py",
        *flags,
        "--bind",
        f"127.0.0.1:{port}",
        "--timeout",
        "120",
        "wsgi:app",
    ]
    process = start(command, env, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if request(port, "GET", "/healthz", b"", {})[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        yield process, port
    finally:
        kill_group(process)


def worker_pids(master: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    return {int(pid) for pid in out.stdout.split()}


@pytest.mark.slow
@pytest.mark.parametrize("server", list(SERVERS))
def test_simultaneous_enrolments_and_checks_are_all_answered(
    server, database_url, fresh_app, tmp_path
):
    backend, flags = SERVERS[server]
    if not database_url.startswith(backend):
        pytest.skip(f"the {server} server runs on {backend}")
    people = (
        "obama_1.jpg",
        "biden_1.jpg",
        "lin_manuel_miranda_1.jpg",
        "biden_2.jpg",
        "obama_3.jpg",
    )
    photos = [variant(people[n % 5], n // 5) for n in range(PEOPLE)]
    enrolling = [
        make_trainee(
            fresh_app,
            resident(f"1990{n // 28 + 1:02d}{n % 28 + 1:02d}", "123"),
            phone=f"1380000{n:04d}",
        )
        for n in range(PEOPLE)
    ]
    checking = []
    for n in range(PEOPLE):
        id_number = resident(f"1985{n // 28 + 1:02d}{n % 28 + 1:02d}", "456")
        user_id = make_trainee(fresh_app, id_number, phone=f"1370000{n:04d}")
        enrol_face(fresh_app, user_id, photo("obama_1.jpg"))
        session_id = study_session(fresh_app, user_id)
        with fresh_app.app_context():
            check = Check(
                session_id=session_id,
                user_id=user_id,
                kind=CheckKind.SIGN_IN,
                expires_at=utcnow() + timedelta(minutes=10),
            )
            db.session.add(check)
            db.session.commit()
            checking.append((id_number, check.id))
    client = fresh_app.test_client()
    tokens = {
        user_id: api_token(
            client, resident(f"1990{n // 28 + 1:02d}{n % 28 + 1:02d}", "123"), TRAINEE_PASSWORD
        )
        for n, user_id in enumerate(enrolling)
    }
    check_tokens = [
        (api_token(client, number, TRAINEE_PASSWORD), check) for number, check in checking
    ]

    log = tmp_path / "gunicorn.log"
    env = worker_env(fresh_app, JOB_BACKEND="thread", LIVENESS="off")
    with gunicorn(env, log, flags) as (process, port):
        workers_before = worker_pids(process.pid)

        calls = []
        for n, user_id in enumerate(enrolling):
            body, content_type = multipart([("image", "face.jpg", photos[n])])
            headers = {"Authorization": f"Bearer {tokens[user_id]}", "Content-Type": content_type}
            calls.append(("PUT", "/api/v1/me/face", body, headers))
        for n, (token, check_id) in enumerate(check_tokens):
            frames = [("frames", f"{k}.jpg", variant("obama_2.jpg", n % 4 + k)) for k in range(3)]
            body, content_type = multipart(frames)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
            calls.append(("POST", f"/api/v1/checks/{check_id}", body, headers))

        results: list[tuple[int, bytes] | BaseException] = [None] * len(calls)  # type: ignore[list-item]
        gate = threading.Barrier(len(calls))

        def send(index: int) -> None:
            gate.wait()
            try:
                results[index] = request(port, *calls[index])
            except BaseException as error:
                results[index] = error

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(calls))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)

        dropped = [r for r in results if isinstance(r, BaseException)]
        assert dropped == [], (dropped, log.read_text()[-3000:])
        statuses = [status for status, _ in results]  # type: ignore[misc]
        assert all(status < 500 for status in statuses), (statuses, log.read_text()[-3000:])
        enrolled, answered = statuses[:PEOPLE], statuses[PEOPLE:]
        assert all(status in (200, 201) for status in enrolled), results[:PEOPLE]
        assert b"faces found" not in b"".join(body for _, body in results)  # type: ignore[misc]
        assert answered == [200] * PEOPLE, results[PEOPLE:]
        assert worker_pids(process.pid) == workers_before, log.read_text()[-3000:]
        assert process.poll() is None

    with fresh_app.app_context():
        checks = db.session.scalars(
            sa.select(Check).where(Check.id.in_([check for _, check in checking]))
        ).all()
        # Judged, and judged right: the same few crops answer several checks, so the later
        # ones are replays; none may come out as "no face" or "several faces".
        assert CheckStatus.PENDING not in {check.status for check in checks}
        assert {check.code for check in checks} <= {None, "replay"}
        assert any(check.status is CheckStatus.PASSED for check in checks)
        references = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(FaceReference)
            .where(FaceReference.user_id.in_(enrolling))
        )
        assert references == PEOPLE
        # Three people on twenty accounts: accounts are flagged only against accounts of the
        # same person (Lin's never against Obama's or Biden's).
        flags = db.session.execute(
            sa.select(IdentityFlag.user_id, IdentityFlag.other_user_id).where(
                IdentityFlag.user_id.in_(enrolling)
            )
        ).all()
        lin = {enrolling[n] for n in range(PEOPLE) if n % 5 == 2}
        assert flags and all((user in lin) == (other in lin) for user, other in flags)
