"""`make bench`, load stage: heartbeat capacity of a production-like server on this box.

Seeds ``BENCH_LOAD_STEPS`` learners (largest step) into a fresh PostgreSQL database
``bench_load`` (created and dropped here; ``BENCH_LOAD_PG`` names the server, default
``postgresql://postgres@127.0.0.1:5432``): trainees enrolled in a published two-hour lesson,
each with an open study session whose sign-in check passed and the signed-in browser cookie and
CSRF token the player sends. Then gunicorn serves the app as production does (4 workers x 4
threads, ``VERISKILL_ENV=production``, ``JOB_BACKEND=celery`` over ``BENCH_LOAD_REDIS``) and an
open-loop generator in this process sends each active learner's heartbeat every 15 s (phases
spread, the position advancing in real time) over keep-alive connections, as nginx would, for
``BENCH_LOAD_STEP_S`` seconds (default 40) per step. A heartbeat shed with 503 is sent again
after its Retry-After, as the player does. Latency counts from when a heartbeat was due, so a
queue in the generator is the server's delay too.

Printed per step: learners, heartbeats/s answered, p50 and p95, shed (503) and errors (other
statuses, time-outs), and CPU per heartbeat: gunicorn's processes and the database's backends
(from /proc), and the generator's own. Everything shares the same cores.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repo's packages are not installed
sys.path.insert(0, str(ROOT / "tools"))

import bench  # noqa: E402  (tools/bench.py: process helpers)

DATABASE = "bench_load"
HEARTBEAT_S = 15.0
LESSON_S = 7200.0  # two hours: 720 coverage buckets, as in the measurements
WORKERS = 4
THREADS = 4
CONNECTIONS = 1024  # at most this many requests in flight, as nginx's worker_connections
TIMEOUT_S = 10.0  # a heartbeat unanswered this long counts as an error
KEEPALIVE_S = 1.5  # reuse an idle connection only this long: gunicorn closes them after 2 s
USER_AGENT = "veriskill-bench-load/1"
DEFAULT_STEPS = "1000,2000,3000,4000,5000,6000"
SECRET = "bench-load-secret-not-for-production-0123456789"  # noqa: S105  (a bench's own)
TICKS = os.sysconf("SC_CLK_TCK")


def steps() -> list[int]:
    raw = os.environ.get("BENCH_LOAD_STEPS", "").strip() or DEFAULT_STEPS
    try:
        counts = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        sys.exit(f"BENCH_LOAD_STEPS is a comma-separated list of learner counts, not {raw!r}")
    if not counts or min(counts) <= 0:
        sys.exit(f"BENCH_LOAD_STEPS needs positive learner counts, not {raw!r}")
    return counts


# --------------------------------------------------------------------------- database


def server_url() -> str:
    return os.environ.get("BENCH_LOAD_PG", "").strip() or "postgresql://postgres@127.0.0.1:5432"


@contextlib.contextmanager
def fresh_database(name: str = DATABASE) -> Iterator[str]:
    """A new database `name` for this run, dropped afterwards whatever happens."""
    import psycopg

    admin = f"{server_url()}/postgres"

    def run(sql: str) -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql)

    run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    run(f"CREATE DATABASE {name}")
    try:
        yield f"{server_url()}/{name}"
    finally:
        run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def app_environment(database_url: str, tmp: Path) -> dict[str, str]:
    """Production's settings, with bench secrets and local storage (heartbeats touch none)."""
    return {
        **os.environ,
        "VERISKILL_ENV": "production",
        "SECRET_KEY": SECRET,
        "DATA_KEY": SECRET[::-1],
        "AUDIT_KEY": SECRET.upper(),
        "PUBLIC_BASE_URL": "https://bench.invalid",
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ.get("BENCH_LOAD_REDIS", "").strip() or "redis://127.0.0.1:6379/1",
        "JOB_BACKEND": "celery",
        "STORAGE_BACKEND": "local",
        "STORAGE_ROOT": str(tmp / "storage"),
        "AUDIT_ANCHOR_PATH": str(tmp / "anchors.jsonl"),
        "VERISKILL_INSTANCE": str(tmp / "instance"),
        "FLASK_APP": "wsgi",
    }


@dataclass
class Learner:
    session_id: int
    cookie: str
    csrf: str
    start_s: float  # where in the lesson the learner began
    phase_s: float
    seq: int = 0
    began_at: float | None = None


def seed(env: dict[str, str], count: int) -> list[Learner]:
    """Migrate the database and add ``count`` learners studying one lesson; returns them with
    the cookies the app itself signs for them."""
    os.environ.update(env)  # config.py reads the environment when first imported
    from flask import g, session
    from flask_login import login_user
    from flask_migrate import upgrade
    from flask_wtf.csrf import generate_csrf

    from app import create_app
    from app.catalog import service as catalog
    from app.courses.models import Course, CourseStatus, Lesson, LessonStatus
    from app.db import utcnow
    from app.extensions import db
    from app.identity import service as identity
    from app.identity.models import Role, User
    from app.learning.models import Enrollment, LessonProgress, StudySession
    from app.platforms.models import Platform
    from app.verification.models import Check, CheckKind, CheckStatus

    app = create_app()
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        catalog.load()
        db.session.commit()
        platform = Platform(name="负载平台")
        course = Course(
            platform=platform,
            occupation_code="6-31-01-03",
            title="低压电工作业",
            hours=Decimal("16"),
            status=CourseStatus.PUBLISHED,
            published_at=utcnow(),
        )
        lesson = Lesson(position=1, title="第一课", status=LessonStatus.READY, duration_s=LESSON_S)
        course.lessons.append(lesson)
        db.session.add(course)
        password = identity.password_hasher().hash("BenchLoad2026")
        users = [
            User(
                role=Role.TRAINEE,
                name="学员",
                id_number_digest=identity.id_digest(f"bench-{n}"),
                password_hash=password,
            )
            for n in range(count)
        ]
        db.session.add_all(users)
        db.session.flush()
        enrollments = [Enrollment(trainee_id=u.id, course_id=course.id) for u in users]
        db.session.add_all(enrollments)
        db.session.flush()
        now, rng = time.time(), random.Random(14)  # noqa: S311  (spread, not secrets)
        starts = [rng.uniform(0, LESSON_S - 1800) for _ in users]
        sessions = [
            StudySession(
                enrollment_id=e.id,
                lesson_id=lesson.id,
                trainee_id=e.trainee_id,
                next_check_after_s=1e9,  # no random check comes during the run
                opened_at=now,
            )
            for e in enrollments
        ]
        db.session.add_all(sessions)
        db.session.add_all(
            LessonProgress(enrollment_id=e.id, lesson_id=lesson.id, furthest_s=start)
            for e, start in zip(enrollments, starts, strict=True)
        )
        db.session.flush()
        db.session.add_all(
            Check(
                session_id=s.id,
                user_id=s.trainee_id,
                kind=CheckKind.SIGN_IN,
                status=CheckStatus.PASSED,
                expires_at=utcnow(),
                answered_at=utcnow(),
            )
            for s in sessions
        )
        db.session.commit()
        serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
        learners = []
        for user, row, start in zip(users, sessions, starts, strict=True):
            with app.test_request_context(
                headers={"User-Agent": USER_AGENT}, environ_base={"REMOTE_ADDR": "127.0.0.1"}
            ):
                g.pop("csrf_token", None)  # g is the app context's: one token per learner
                login_user(user)
                session["signed_in_at"] = session["seen_at"] = session["authenticated_at"] = now
                token = generate_csrf()
                cookie = serializer.dumps(dict(session))
            learners.append(Learner(row.id, cookie, token, start, rng.uniform(0, HEARTBEAT_S)))
        db.engine.dispose()
    return learners


# --------------------------------------------------------------------------- CPU


def proc_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found]


def backends(database_url: str) -> list[int]:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (DATABASE,),
        ).fetchall()
    return [row[0] for row in rows]


@dataclass
class CpuSample:
    server: dict[int, float]
    database: dict[int, float]
    generator: float


def sample(gunicorn_pid: int, database_url: str) -> CpuSample:
    server = [gunicorn_pid, *children(gunicorn_pid)]
    return CpuSample(
        {pid: proc_cpu_s(pid) for pid in server},
        {pid: proc_cpu_s(pid) for pid in backends(database_url)},
        time.process_time(),
    )


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two samples; a process that appeared meanwhile counts from zero."""
    return sum(max(0.0, value - before.get(pid, 0.0)) for pid, value in after.items())


# --------------------------------------------------------------------------- load


@dataclass
class Step:
    learners: int
    latencies: list[float] = field(default_factory=list)
    shed: int = 0
    errors: int = 0


class Stale(Exception):
    """The server had closed the keep-alive connection before the request went out."""


class Generator:
    """Open loop: every active learner's heartbeat is due every HEARTBEAT_S whatever the server
    does, and goes out when due over an idle keep-alive connection or a new one, as nginx
    forwards (up to CONNECTIONS at once, nginx's worker_connections): any queue is the
    server's."""

    def __init__(self, port: int, learners: list[Learner]) -> None:
        self.port = port
        self.learners = learners
        self.active = 0
        self.step: Step | None = None
        self.failures: collections.Counter[str] = collections.Counter()
        # Idle keep-alive connections with when each was last used (loop time).
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.slots = asyncio.Semaphore(CONNECTIONS)
        self.sending: set[asyncio.Task] = set()

    def due(self, first: float, learner: Learner, step: Step) -> None:
        """Send a heartbeat now (first due at ``first``, loop time)."""
        if not self.active:  # the run is over: a retry timer that fired late sends nothing
            return
        task = asyncio.create_task(self.deliver(first, learner, step))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    async def schedule(self, learner: Learner, index: int) -> None:
        """One learner's heartbeats, while it is among the active ones."""
        loop = asyncio.get_running_loop()
        due = loop.time() + learner.phase_s
        while index < self.active:
            await asyncio.sleep(max(0.0, due - loop.time()))
            if index >= self.active or self.step is None:
                return
            self.due(due, learner, self.step)
            due += HEARTBEAT_S

    async def deliver(self, first: float, learner: Learner, step: Step) -> None:
        """One heartbeat; a 503 is sent again after its Retry-After, as the player does."""
        loop = asyncio.get_running_loop()
        async with self.slots:
            reply = await self.exchange(learner, step)
        if reply is None:
            return
        status, headers = reply
        if status == 200:
            step.latencies.append(loop.time() - first)  # a shed heartbeat's wait counts
        elif status == 503:
            step.shed += 1
            retry = float(headers.get("retry-after", "1")) + random.uniform(0, 1)  # noqa: S311
            loop.call_later(retry, self.due, first, learner, step)
        else:
            step.errors += 1
            self.failures[f"HTTP {status}"] += 1

    async def exchange(self, learner: Learner, step: Step) -> tuple[int, dict] | None:
        """Status and headers, or None (counted as an error) when no answer came."""
        for attempt in (1, 2):
            connection = self.reuse() if attempt == 1 else None
            try:
                if connection is None:
                    connection = await asyncio.open_connection("127.0.0.1", self.port)
                status, headers = await asyncio.wait_for(self.send(*connection, learner), TIMEOUT_S)
            except Stale:
                # gunicorn closed an idle keep-alive connection (after 2 s): the request never
                # reached it, so it goes again on another, as any client does.
                connection[1].close()
                if attempt == 1:
                    continue
                step.errors += 1
                self.failures["Stale"] += 1
                return None
            except Exception as error:  # any failure is an error, counted by kind
                if connection is not None:
                    connection[1].close()
                step.errors += 1
                self.failures[type(error).__name__] += 1
                return None
            if headers.get("connection", "").lower() == "close":
                connection[1].close()
            else:
                self.idle.append((*connection, asyncio.get_running_loop().time()))
            return status, headers
        return None

    def reuse(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The most recently used idle connection gunicorn has not closed yet (it keeps them
        2 s), as nginx's upstream keepalive does; older ones are closed."""
        now = asyncio.get_running_loop().time()
        while self.idle:
            reader, writer, used = self.idle.pop()
            if now - used < KEEPALIVE_S:
                return reader, writer
            writer.close()
        return None

    async def send(self, reader, writer, learner: Learner) -> tuple[int, dict]:
        now = time.time()
        if learner.began_at is None:
            learner.began_at = now
        learner.seq += 1
        position = min(LESSON_S, learner.start_s + (now - learner.began_at))
        body = json.dumps(
            {"position_s": round(position, 3), "hidden": False, "playing": True, "seq": learner.seq}
        ).encode()
        stamp = time.time()  # sent when due: the generator is nginx, receiving it now
        head = (
            f"POST /api/v1/sessions/{learner.session_id}/heartbeats HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nUser-Agent: {USER_AGENT}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"Cookie: session={learner.cookie}\r\nX-CSRFToken: {learner.csrf}\r\n"
            # What nginx stamps when the request reaches it (see app/study/api.py, overload).
            f"X-Request-Start: t={stamp:.3f}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        status_line = await reader.readline()
        if not status_line:
            raise Stale
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = value
            if name == "set-cookie" and value.startswith("session="):
                learner.cookie = value.split(";", 1)[0].removeprefix("session=")
        await reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers

    async def run(self, counts: list[int], step_s: float, on_step) -> None:
        schedulers: list[asyncio.Task] = []
        try:
            for count in counts:
                self.step = Step(count)
                before = self.active
                self.active = count
                schedulers += [
                    asyncio.create_task(self.schedule(self.learners[i], i))
                    for i in range(before, count)
                ]
                on_step("start", self.step)
                await asyncio.sleep(step_s)
                on_step("end", self.step)
        finally:
            self.active = 0
            for task in (*schedulers, *self.sending):
                task.cancel()
            await asyncio.gather(*schedulers, *self.sending, return_exceptions=True)
            for _reader, writer, _used in self.idle:
                writer.close()


@contextlib.contextmanager
def production_server(env: dict[str, str], port: int, log: Path) -> Iterator[int]:
    """gunicorn as the README's production start: 4 workers x 4 threads."""
    argv = [
        str(bench.BIN / "gunicorn"),
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(WORKERS),
        "--threads", str(THREADS),
        "--error-logfile", str(log),
        "wsgi:app",
    ]  # fmt: skip
    # The app's own lines (one JSON line a request, as in production) go to the log file, as
    # they would to the journal, not to the terminal between the figures.
    with log.open("ab") as sink:
        process = subprocess.Popen(  # noqa: S603
            argv, cwd=ROOT, env=env, start_new_session=True, stdout=sink, stderr=sink
        )
    try:
        bench.wait_for_http(port, "/healthz", process, log, "gunicorn")
        yield process.pid
    finally:
        bench.stop(process)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    counts = steps()
    step_s = bench.env_number("BENCH_LOAD_STEP_S", 40.0)
    print(
        f"load: heartbeat capacity, gunicorn {WORKERS}x{THREADS}, PostgreSQL and this generator "
        f"on {os.cpu_count()} CPUs, {step_s:g} s per step, load average "
        f"{os.getloadavg()[0]:.1f} at start",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="veriskill-load-") as tmp_name:
        tmp = Path(tmp_name)
        with fresh_database() as url:
            env = app_environment(url, tmp)
            began = time.monotonic()
            learners = seed(env, max(counts))
            print(f"load: seeded {len(learners)} learners in {time.monotonic() - began:.0f} s")
            port = bench.free_port()
            with production_server(env, port, tmp / "gunicorn.log") as pid:
                db_url = url
                rows: list[str] = []
                marks: dict[int, tuple[CpuSample, float]] = {}

                def on_step(when: str, step: Step) -> None:
                    now = sample(pid, db_url)
                    if when == "start":
                        marks[step.learners] = (now, time.monotonic())
                        return
                    first, started = marks[step.learners]
                    rows.append(report(step, first, now, time.monotonic() - started))
                    print(rows[-1], flush=True)

                print(
                    "learners | heartbeats/s | p50 ms | p95 ms | shed | errors | "
                    "CPU ms/heartbeat: web + database = total | generator | load avg",
                    flush=True,
                )
                generator = Generator(port, learners)
                asyncio.run(generator.run(counts, step_s, on_step))
                if generator.failures:
                    print(f"load: errors by kind: {dict(generator.failures)}")
    return 0


def report(step: Step, first: CpuSample, last: CpuSample, wall_s: float) -> str:
    done = len(step.latencies)
    web = spent(first.server, last.server)
    database = spent(first.database, last.database)
    generator = last.generator - first.generator
    per = 1000 / done if done else float("nan")
    return (
        f"{step.learners:>8,} | {done / wall_s:>12.0f} | "
        f"{percentile(step.latencies, 0.5) * 1000:>6.0f} | "
        f"{percentile(step.latencies, 0.95) * 1000:>6.0f} | {step.shed:>4} | {step.errors:>6} | "
        f"{web * per:.1f} + {database * per:.1f} = {(web + database) * per:.1f} | "
        f"{generator * per:.1f} | {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    sys.exit(main())
