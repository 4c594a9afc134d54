"""`make bench`, statistics stage: the dashboard and a district export at city scale.

In a fresh PostgreSQL database ``bench_stats`` (created and dropped here; ``BENCH_LOAD_PG``
names the server, as for tools/bench_load.py) a few INSERT ... SELECT generate_series
statements make a year of records: ``BENCH_STATS_ENROLMENTS`` enrolments (default 1,000,000;
five per trainee, over every district, twelve platforms and 600 courses), one study session
each, ``BENCH_STATS_HEARTBEATS`` heartbeat records (default 5,000,000), lesson progress, a face
check per session (3 % failed), decisions with amounts and certificates for the completions.
Then the stats roll-up (``app.stats.rollup.roll_up``) runs once, and two things are timed,
each against a baseline measured in the same process a moment before:

a. the dashboard's reads: ``service.summary`` for the city and the breakdowns by district,
   month and programme, as the page asks for them; baseline: the same figures computed from
   the records by each figure's own query (``Figure.select``: the city, by district, by
   programme, by month), which is what the page would cost without the roll-up;
b. a district roster export (the largest district's enrolments, narrowed as a district
   officer's export is, written as XLSX or, without the export module, CSV); baseline: the
   same rows read by one plain SQL scan, nothing formatted.

The dashboard's reads are the median of ``BENCH_STATS_ROUNDS`` rounds (default 3); the
dashboard's scan, which takes as long as a roll-up, and the export and its baseline, which
take seconds, run once each (after a warm-up). Not a test: nothing is
asserted; the figures are ratios so they travel between machines.
"""

from __future__ import annotations

import csv
import importlib
import io
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repo's packages are not installed
sys.path.insert(0, str(ROOT / "tools"))

import bench  # noqa: E402  (tools/bench.py: env_number)
import bench_load  # noqa: E402  (tools/bench_load.py: the PostgreSQL server to use)

DATABASE = "bench_stats"
YEAR = 2026
COURSES = 600
PLATFORMS = 12
PER_TRAINEE = 5  # enrolments per trainee (distinct courses)
SECRET = "bench-stats-secret-not-for-production-0123456789"  # noqa: S105  (a bench's own)


def make_app(database_url: str, tmp: Path) -> Any:
    os.environ.update(
        {
            "VERISKILL_ENV": "development",
            "VERISKILL_INSTANCE": str(tmp / "instance"),
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET,
            "DATA_KEY": SECRET[::-1],
            "AUDIT_KEY": SECRET.upper(),
            "STORAGE_ROOT": str(tmp / "storage"),
            "AUDIT_ANCHOR_PATH": str(tmp / "anchors.jsonl"),
            "JOB_BACKEND": "external",
            "DEMO_CONTENT": "off",
        }
    )
    from app import create_app
    from config import load_config

    return create_app(load_config())


# --------------------------------------------------------------------------- records

# Every statement reads its sizes from bind parameters; one transaction, then ANALYZE.
GENERATE = (
    # Platforms and courses, spread over districts, occupations and the programmes.
    """INSERT INTO programme (year, name, target_trainings, target_groups, occupation_codes,
           budget_yuan, created_at)
       SELECT :year, '基准计划' || n, 10000 * n, '[]', '[]', 0, now()
       FROM generate_series(1, 8) AS n""",
    """INSERT INTO platform (name, contact_name, contact_phone, contact_email, status,
           created_at, district_code)
       SELECT '基准平台' || n, '', '', '', 'active', now(),
              (SELECT code FROM district ORDER BY position OFFSET (n * 3) % 41 LIMIT 1)
       FROM generate_series(1, :platforms) AS n""",
    """INSERT INTO course (platform_id, occupation_code, title, hours, description, status,
           created_at, updated_at, published_at, district_code, programme_id)
       SELECT p.id, o.code, '基准课程' || c.n, 16, '', 'published', now(), now(), now(),
              p.district_code,
              CASE WHEN c.n % 3 = 0 THEN (SELECT min(id) FROM programme) + c.n % 8 END
       FROM generate_series(1, :courses) AS c(n)
       JOIN LATERAL (SELECT id, district_code FROM platform
                     ORDER BY id OFFSET c.n % :platforms LIMIT 1) p ON true
       JOIN LATERAL (SELECT code FROM occupation WHERE level = 4
                     ORDER BY code OFFSET (c.n * 7) % 1600 LIMIT 1) o ON true""",
    """INSERT INTO lesson (course_id, position, title, media_id, status, progress,
           upload_received, duration_s, created_at, updated_at)
       SELECT id, 1, '第一课', md5(id::text), 'ready', 1, 0, 57600, now(), now() FROM course""",
    # Trainees over every district; the first ten of the list get more.
    """INSERT INTO "user" (role, name, id_number_digest, id_number_masked, phone,
           password_hash, active, created_at, session_epoch, password_change_required,
           district_code)
       SELECT 'trainee', '学员' || n, md5('bench-' || n),
              '500101********' || lpad((n % 10000)::text, 4, '0'),
              '17' || lpad(n::text, 9, '0'), 'x', true, now(), 0, false,
              d.code
       FROM generate_series(1, :trainees) AS n
       JOIN (SELECT code, row_number() OVER (ORDER BY position) - 1 AS i FROM district) d
         ON d.i = CASE WHEN n % 3 = 0 THEN n % 10 ELSE n % 41 END""",
    # Enrolments over the months; about 70 % completed.
    """INSERT INTO enrollment (trainee_id, course_id, created_at, completed_at, programme_id)
       SELECT u.id, c.id, e.at,
              CASE WHEN (u.id + k) % 10 < 7 THEN e.at + interval '12 days' END,
              c.programme_id
       FROM "user" u
       CROSS JOIN generate_series(0, :per_trainee - 1) AS k
       JOIN LATERAL (SELECT make_timestamptz(:year, 1, 1, 0, 0, 0, 'UTC')
                            + ((u.id * 7 + k * 61) % 330) * interval '1 day'
                            + ((u.id + k) % 86400) * interval '1 second' AS at) e ON true
       JOIN course c ON c.id = (SELECT min(id) FROM course) + (u.id * 7 + k * 13) % :courses
       WHERE u.role = 'trainee'""",
    # One finished sitting per enrolment, its progress and a face check (3 % failed).
    """INSERT INTO study_session (enrollment_id, lesson_id, trainee_id, started_at, ended_at,
           end_reason, last_active, credited_s, user_agent, address, unverified_s,
           since_check_s, next_check_after_s, credited_spans, lapsed_s, awaiting_check)
       SELECT e.id, l.id, e.trainee_id, e.created_at, e.created_at + interval '2 hours',
              'closed', false, 7200, '', '', 0, 0, 0, '[]', 0, false
       FROM enrollment e JOIN lesson l ON l.course_id = e.course_id""",
    """INSERT INTO lesson_progress (enrollment_id, lesson_id, credited_s, furthest_s,
           position_s, covered, coverage, completed_at, updated_at, voided_s, pending_s)
       SELECT s.enrollment_id, s.lesson_id,
              CASE WHEN e.completed_at IS NULL THEN 3600 ELSE 57600 END, 0, 0, '[]',
              CASE WHEN e.completed_at IS NULL THEN 0.5 ELSE 1 END, e.completed_at,
              s.ended_at, 0, 0
       FROM study_session s JOIN enrollment e ON e.id = s.enrollment_id""",
    """INSERT INTO face_check (session_id, user_id, kind, status, attempts, created_at,
           expires_at, answered_at, settled_s)
       SELECT id, trainee_id, 'sign_in',
              CASE WHEN id % 33 = 0 THEN 'failed' ELSE 'passed' END, 1, started_at,
              started_at + interval '2 minutes', started_at + interval '20 seconds', 0
       FROM study_session""",
    # Heartbeats: every session's first n, n chosen so the total is the one asked for.
    """INSERT INTO heartbeat (session_id, received_at, seq, position_s, hidden, playing,
           credited_s)
       SELECT s.id, extract(epoch FROM s.started_at) + 15 * b, b, 15 * b, false, true, 15
       FROM study_session s
       CROSS JOIN generate_series(1, :beats_per_session) AS b""",
    # Decisions with amounts and certificates for the completions without a failed check.
    """INSERT INTO subsidy_decision (enrollment_id, action, reason, amount_yuan, decided_at)
       SELECT e.id, 'eligible', 'bench', 800, e.completed_at
       FROM enrollment e WHERE e.completed_at IS NOT NULL""",
    """INSERT INTO certificate (number, verify_code, enrollment_id, user_id, holder_name,
           occupation_code, occupation_name, course_title, hours, issued_at)
       SELECT 'VS2026-' || lpad(e.id::text, 11, '0'), 'BENCH', e.id, e.trainee_id, '学员',
              c.occupation_code, '', c.title, 16, e.completed_at
       FROM enrollment e JOIN course c ON c.id = e.course_id
       WHERE e.completed_at IS NOT NULL""",
)


def generate(app: Any, enrolments: int, heartbeats: int) -> dict[str, int]:
    import sqlalchemy as sa

    from app.bureau import service as bureau
    from app.catalog import service as catalog
    from app.extensions import db

    trainees = max(1, enrolments // PER_TRAINEE)
    params = {
        "year": YEAR,
        "platforms": PLATFORMS,
        "courses": COURSES,
        "trainees": trainees,
        "per_trainee": PER_TRAINEE,
        "beats_per_session": max(1, round(heartbeats / (trainees * PER_TRAINEE))),
    }
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(directory=str(ROOT / "migrations"))
        catalog.load()
        bureau.load_districts()
        db.session.commit()
        # Secondary indexes of the big tables are built once after the inserts, not row by row.
        indexes = db.session.execute(
            sa.text(
                """SELECT i.indexname, i.indexdef FROM pg_indexes i
                   JOIN pg_class c ON c.relname = i.indexname
                   JOIN pg_index x ON x.indexrelid = c.oid
                   WHERE i.tablename IN ('heartbeat', 'study_session', 'lesson_progress',
                                         'face_check', 'enrollment', 'subsidy_decision',
                                         'certificate')
                     AND NOT x.indisunique AND NOT x.indisprimary"""
            )
        ).all()
        for name, _ in indexes:
            db.session.execute(sa.text(f'DROP INDEX "{name}"'))
        for statement in GENERATE:
            text = sa.text(statement)
            used = {k: v for k, v in params.items() if f":{k}" in statement}
            db.session.execute(text, used)
        for _, definition in indexes:
            db.session.execute(sa.text(definition))
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))
        row = db.session.execute(
            sa.text(
                """SELECT (SELECT count(*) FROM enrollment), (SELECT count(*) FROM heartbeat),
                          (SELECT count(*) FROM study_session), (SELECT count(*) FROM certificate),
                          (SELECT count(*) FROM "user" WHERE role = 'trainee')"""
            )
        ).one()
        names = ("enrollment", "heartbeat", "study_session", "certificate", "user")
        counts = dict(zip(names, (int(n) for n in row), strict=True))
        db.session.rollback()
    return counts


# --------------------------------------------------------------------------- baselines


def scan_dashboard(app: Any) -> int:
    """The dashboard's figures straight from the records, each under its published
    definition (app/stats/figures.py): the city, by district, by programme and by month, as
    the roll-up computes them. What every page view would cost without the roll-up."""
    from app.extensions import db
    from app.stats import figures

    rows = 0
    with app.app_context():
        bounds = figures.month_bounds(YEAR)
        start, end = bounds[0], bounds[-1]
        for figure in figures.FIGURES.values():
            for by in ((), ("district",), ("programme",)):
                rows += len(db.session.execute(figure.select(start, end, by)).all())
            if figure.source().stock:
                for month_start, month_end in itertools.pairwise(bounds):
                    rows += len(db.session.execute(figure.select(month_start, month_end)).all())
            else:
                rows += len(db.session.execute(figure.select(start, end, months=bounds)).all())
        db.session.rollback()
    return rows


def stats_modules() -> dict[str, Any] | None:
    try:
        return {
            "rollup": importlib.import_module("app.stats.rollup"),
            "service": importlib.import_module("app.stats.service"),
        }
    except ImportError:
        return None


def read_dashboard(app: Any, modules: dict[str, Any]) -> int:
    """What the dashboard page asks the stats service for: the city's summary, and the
    breakdowns by district, month and programme."""
    service = modules["service"]
    from app.extensions import db
    from app.stats import figures

    keys = list(figures.FIGURES)
    with app.test_request_context():
        summary = service.summary(YEAR)
        rows = len(summary["figures"])
        for by in ("district", "month", "programme"):
            rows += len(service.breakdown(YEAR, by, keys))
        db.session.rollback()
    return rows


# --------------------------------------------------------------------------- export

ROSTER_COLUMNS = [
    "trainee",
    "id_number",
    "course",
    "occupation",
    "enrolled_at",
    "completed_at",
    "verified_hours",
    "certificate",
    "subsidy_yuan",
]
ROSTER_SCAN = """
SELECT u.name, u.id_number_masked, c.title, c.occupation_code, e.created_at, e.completed_at,
       (SELECT sum(p.credited_s - p.voided_s - p.pending_s) / 3600 FROM lesson_progress p
         WHERE p.enrollment_id = e.id),
       (SELECT min(number) FROM certificate ct WHERE ct.enrollment_id = e.id
         AND ct.revoked_at IS NULL),
       (SELECT sum(amount_yuan) FROM subsidy_decision s WHERE s.enrollment_id = e.id)
FROM enrollment e JOIN "user" u ON u.id = e.trainee_id JOIN course c ON c.id = e.course_id
WHERE u.district_code = :district ORDER BY e.id
"""


def largest_district(app: Any) -> str:
    import sqlalchemy as sa

    from app.extensions import db

    with app.app_context():
        code = db.session.scalar(
            sa.text(
                """SELECT district_code FROM "user" WHERE role = 'trainee'
                   GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"""
            )
        )
        db.session.rollback()
    return str(code)


def scan_roster(app: Any, district: str) -> int:
    import sqlalchemy as sa

    from app.extensions import db

    with app.app_context():
        rows = db.session.execute(sa.text(ROSTER_SCAN), {"district": district}).all()
        db.session.rollback()
    return len(rows)


def roster_rows(district: str) -> list[list[Any]]:
    """The roster through the ORM, narrowed as a district officer's export is, masked."""
    import sqlalchemy as sa

    from app.bureau import scope
    from app.certificates.models import Certificate
    from app.courses.models import Course
    from app.extensions import db
    from app.identity.models import User
    from app.learning.models import Enrollment, LessonProgress
    from app.subsidy.models import Decision

    hours = (
        sa.select(
            sa.func.sum(
                LessonProgress.credited_s - LessonProgress.voided_s - LessonProgress.pending_s
            )
            / 3600
        )
        .where(LessonProgress.enrollment_id == Enrollment.id)
        .scalar_subquery()
    )
    number = (
        sa.select(sa.func.min(Certificate.number))
        .where(Certificate.enrollment_id == Enrollment.id, Certificate.revoked_at.is_(None))
        .scalar_subquery()
    )
    amount = (
        sa.select(sa.func.sum(Decision.amount_yuan))
        .where(Decision.enrollment_id == Enrollment.id)
        .scalar_subquery()
    )
    query = (
        sa.select(User, Course.title, Course.occupation_code, Enrollment, hours, number, amount)
        .join(Enrollment, Enrollment.trainee_id == User.id)
        .join(Course, Course.id == Enrollment.course_id)
        .order_by(Enrollment.id)
    )
    with scope.narrowed_to(district):
        return [
            [
                user.name_masked,
                user.id_number_masked,
                title,
                code,
                enrollment.created_at.isoformat(),
                enrollment.completed_at.isoformat() if enrollment.completed_at else "",
                round(float(verified or 0), 2),
                certificate or "",
                str(paid or ""),
            ]
            for user, title, code, enrollment, verified, certificate, paid in db.session.execute(
                query
            )
        ]


def export_roster(app: Any, district: str) -> tuple[int, str]:
    """(bytes, how): the reports' own export when it is there, else rows and the writer."""
    from app.extensions import db

    with app.test_request_context():
        rows = roster_rows(district)
        try:
            export = importlib.import_module("app.stats.export")
        except ImportError:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(ROSTER_COLUMNS)
            writer.writerows(rows)
            body, how = buffer.getvalue().encode("utf-8-sig"), "CSV (no app.stats.export yet)"
        else:
            body, how = export.xlsx_bytes("roster", ROSTER_COLUMNS, rows), "XLSX"
        db.session.rollback()
    return len(body), how


# --------------------------------------------------------------------------- timing


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def compare(
    rounds: int, measured: Callable[[], Any], baseline: Callable[[], Any]
) -> tuple[float, float]:
    """Median seconds of each, the two alternating so a busy moment weighs on both."""
    a, b = [], []
    for round_ in range(rounds):
        pair = (measured, baseline) if round_ % 2 == 0 else (baseline, measured)
        for work in pair:
            seconds, _ = timed(work)
            (a if work is measured else b).append(seconds)
    return statistics.median(a), statistics.median(b)


def main() -> int:
    enrolments = round(bench.env_number("BENCH_STATS_ENROLMENTS", 1_000_000))
    heartbeats = round(bench.env_number("BENCH_STATS_HEARTBEATS", 5_000_000))
    rounds = round(bench.env_number("BENCH_STATS_ROUNDS", 3))
    print(
        f"stats: {enrolments:,} enrolments, {heartbeats:,} heartbeats, {rounds} rounds, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="veriskill-stats-") as tmp_name:
        tmp = Path(tmp_name)
        with bench_load.fresh_database(DATABASE) as url:
            app = make_app(url.replace("postgresql://", "postgresql+psycopg://", 1), tmp)
            seconds, counts = timed(lambda: generate(app, enrolments, heartbeats))
            print(
                f"stats: generated {counts['enrollment']:,} enrolments, "
                f"{counts['heartbeat']:,} heartbeats, {counts['study_session']:,} sessions, "
                f"{counts['certificate']:,} certificates, {counts['user']:,} trainees "
                f"in {seconds:.0f} s",
                flush=True,
            )
            lines = ["what | measured | baseline (scan) | ratio"]
            modules = stats_modules()
            if modules is None:
                scan_s = statistics.median(
                    timed(lambda: scan_dashboard(app))[0] for _ in range(rounds)
                )
                print(
                    "stats: app.stats.rollup/service not there: the dashboard is not timed; "
                    f"its figures by scanning the records take {scan_s * 1000:.0f} ms",
                    flush=True,
                )
            else:

                def roll() -> int:
                    from app.extensions import db

                    with app.app_context():
                        written = int(modules["rollup"].roll_up(YEAR))
                        db.session.commit()
                    return written

                seconds, written = timed(roll)
                print(
                    f"stats: roll-up of {YEAR}: {written:,} values in {seconds:.1f} s", flush=True
                )
                read_dashboard(app, modules)  # warm: the roll-up has read every table already
                # The scan takes as long as the roll-up (seconds): once is enough beside reads
                # that take milliseconds; the reads are the median of the rounds.
                scan, _ = timed(lambda: scan_dashboard(app))
                dash = statistics.median(
                    timed(lambda: read_dashboard(app, modules))[0] for _ in range(rounds)
                )
                lines.append(
                    f"dashboard reads | {dash * 1000:.1f} ms | {scan * 1000:.0f} ms | "
                    f"1/{scan / dash:,.0f}"
                )
            district = largest_district(app)
            rows = scan_roster(app, district)  # warm
            size, how = export_roster(app, district)
            # Seconds each: one interleaved pair is enough.
            export_s, scan_s = compare(
                1, lambda: export_roster(app, district), lambda: scan_roster(app, district)
            )
            lines.append(
                f"district export ({rows:,} rows, {how}, {size / 1e6:.1f} MB) | "
                f"{export_s * 1000:.0f} ms | {scan_s * 1000:.0f} ms | {export_s / scan_s:.2f}"
            )
            for line in lines:
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
