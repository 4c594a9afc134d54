"""Configuration read from environment variables, with embedded defaults for `make run`.

`VERISKILL_ENV` picks the profile: `development` (the default: SQLite, local disk, jobs on a
thread in the server process, demo content) or `production` (everything from the environment,
no defaults for secrets, no demo content).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import ClassVar, overload
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("VERISKILL_INSTANCE", BASE_DIR / "instance"))


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


@overload
def env_str(name: str, default: str) -> str: ...
@overload
def env_str(name: str, default: None = None) -> str | None: ...
def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    raw = env_str(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = env_str(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None


def env_bool(name: str, default: bool) -> bool:
    raw = env_str(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be on or off, not {raw!r}")


def normalize_database_url(url: str) -> str:
    """Route plain PostgreSQL URLs to the psycopg 3 driver we ship."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def instance_secret(name: str) -> str:
    """A random secret kept in instance/ so development sessions survive restarts."""
    path = INSTANCE_DIR / name
    if not path.exists():
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


class Config:
    """Settings shared by every profile; each reads its environment variable."""

    ENV_NAME = "base"
    # Secrets, set by each profile's __init__ (from the environment or instance/).
    SECRET_KEY: str
    DATA_KEY: str
    AUDIT_KEY: str
    # Babel: Simplified Chinese unless the visitor switches.
    BABEL_DEFAULT_LOCALE = "zh"
    BABEL_DEFAULT_TIMEZONE = env_str("TIMEZONE", "Asia/Shanghai")
    LANGUAGES = ("zh", "en")

    # A ping before each checkout costs a round trip per request, but without it a connection
    # the database dropped (a restart, a failover) fails the next request with a 500 and a job
    # with an error; a request must never pay for that. Connections are also renewed after
    # half an hour, so a proxy or firewall that forgets idle ones is never met.
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict] = {"pool_pre_ping": True, "pool_recycle": 1800}
    # Plain requests are small; routes that take uploads raise their own limit.
    MAX_CONTENT_LENGTH = env_int("MAX_REQUEST_BYTES", 1024 * 1024)

    # A signed-in browser session ends after this long without a request, and this long after
    # sign-in whatever happens (the player's heartbeats count as requests).
    SESSION_IDLE_S = env_int("SESSION_IDLE_S", 30 * 60)
    SESSION_MAX_S = env_int("SESSION_MAX_S", 12 * 3600)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    WTF_CSRF_TIME_LIMIT = 8 * 3600

    # API tokens issued by /api/v1/auth/token.
    TOKEN_TTL_S = env_int("TOKEN_TTL_S", 12 * 3600)

    # Sign-in throttling (app/identity/throttle.py): attempts counted before the password is
    # checked, per address and per account, each count lasting LOGIN_LOCKOUT_S after its last
    # attempt. Past LOGIN_MAX_FAILURES an account needs a captcha (never locked, so nobody can
    # lock a trainee out); past LOGIN_MAX_FAILURES_PER_ADDRESS the address is locked.
    LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)
    LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("LOGIN_MAX_FAILURES_PER_ADDRESS", 20)
    LOGIN_LOCKOUT_S = env_int("LOGIN_LOCKOUT_S", 15 * 60)
    # Argon2id cost of password hashes: (passes, memory in KiB, lanes), argon2-cffi's defaults
    # (RFC 9106, low-memory choice). Only the test suite lowers it; a stored hash carries its
    # own cost and is re-hashed at the next sign-in when it differs from this.
    PASSWORD_HASH_COST: ClassVar[tuple[int, int, int]] = (3, 65536, 4)
    # Registrations: at most REGISTER_MAX_PER_ADDRESS attempts per address per REGISTER_WINDOW_S.
    REGISTER_MAX_PER_ADDRESS = env_int("REGISTER_MAX_PER_ADDRESS", 10)
    REGISTER_WINDOW_S = env_int("REGISTER_WINDOW_S", 3600)
    # Money and identity decisions on the auditors' desk ask for the password again when the
    # auditor's last authentication is older than this.
    REAUTH_S = env_int("REAUTH_S", 10 * 60)

    # Number of reverse proxies in front of the app whose X-Forwarded-For we trust.
    PROXY_COUNT = env_int("PROXY_COUNT", 0)
    # The address people reach the site at (scheme and host only): printed certificates and
    # their QR codes point there, never at whatever Host header a request brought. Required,
    # and https, in production.
    PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:5000")

    REDIS_URL = env_str("REDIS_URL")
    DEMO_CONTENT = False
    DEMO_YEAR = False

    # Object storage: `local` (files under STORAGE_ROOT) or `minio` (MINIO_*; private bucket).
    STORAGE_BACKEND = env_str("STORAGE_BACKEND", "local")
    MINIO_ENDPOINT = env_str("MINIO_ENDPOINT")
    MINIO_ACCESS_KEY = env_str("MINIO_ACCESS_KEY")
    MINIO_SECRET_KEY = env_str("MINIO_SECRET_KEY")
    MINIO_BUCKET = env_str("MINIO_BUCKET", "veriskill")
    MINIO_SECURE = env_str("MINIO_SECURE", "true")
    MINIO_REGION = env_str("MINIO_REGION", "us-east-1")
    # Signed media URLs live this long, plus twice the video's duration.
    MEDIA_URL_TTL_S = env_int("MEDIA_URL_TTL_S", 15 * 60)
    # Behind nginx with local storage: after checking a `/media/o/` link the app answers with
    # headers only, `X-Accel-Redirect: <this prefix><key>`, and nginx sends the file from its
    # internal location (deploy/nginx). Empty (the default, `make run`): the app sends the bytes.
    MEDIA_ACCEL_REDIRECT = env_str("MEDIA_ACCEL_REDIRECT", "")

    # Jobs: `thread` (inside the web process), `celery` (workers over REDIS_URL) or
    # `external` (`flask jobs work` processes poll the database).
    JOB_BACKEND = env_str("JOB_BACKEND", "thread")
    JOB_POLL_S = env_float("JOB_POLL_S", 5.0)
    JOB_HEARTBEAT_S = env_float("JOB_HEARTBEAT_S", 10.0)
    JOB_STALE_S = env_float("JOB_STALE_S", 60.0)
    JOB_MAX_ATTEMPTS = env_int("JOB_MAX_ATTEMPTS", 3)
    # The sweeper (app/jobs/service.py `sweep`, run by every worker's timer, once per interval
    # across all of them): every JOB_SWEEP_S it takes back jobs of dead workers and wakes
    # workers again for jobs queued JOB_DISPATCH_GRACE_S since their last wake-up (the broker
    # was down, the message lost). Temporary folders of stopped workers go once untouched for
    # JOB_SCRATCH_MAX_AGE_S.
    JOB_SWEEP_S = env_float("JOB_SWEEP_S", 15.0)
    JOB_DISPATCH_GRACE_S = env_float("JOB_DISPATCH_GRACE_S", 60.0)
    JOB_SCRATCH_MAX_AGE_S = env_float("JOB_SCRATCH_MAX_AGE_S", 600.0)
    # Periodic tasks (app/jobs/schedule.py): every job worker runs a timer that takes their
    # turns; off where a dedicated `flask schedule run` does (workers keep only their own
    # host's tidying). Expired codes, ended tokens, abandoned uploads and old run history go
    # every EXPIRY_SWEEP_S; an upload not continued for UPLOAD_ABANDONED_S is dropped; each
    # task keeps its newest SCHEDULE_HISTORY_RUNS runs; the evidence purge runs by the rule
    # in EVIDENCE_PURGE_AT (seconds, or "daily HH:MM" / "weekly mon HH:MM" / "monthly D HH:MM"
    # on the bureau's clock, or off).
    SCHEDULE_IN_WORKERS = env_bool("SCHEDULE_IN_WORKERS", True)
    EXPIRY_SWEEP_S = env_float("EXPIRY_SWEEP_S", 3600.0)
    UPLOAD_ABANDONED_S = env_float("UPLOAD_ABANDONED_S", 7 * 86400.0)
    SCHEDULE_HISTORY_RUNS = env_int("SCHEDULE_HISTORY_RUNS", 500)
    EVIDENCE_PURGE_AT = env_str("EVIDENCE_PURGE_AT", "daily 03:00")
    # Desk-queue rows an event marked stale are recomputed this often (and before each view).
    DESK_QUEUE_REFRESH_S = env_float("DESK_QUEUE_REFRESH_S", 300.0)
    # The bureau's statistics are rolled up from the records this often (app/stats/rollup.py).
    STATS_ROLLUP_S = env_float("STATS_ROLLUP_S", 600.0)
    # The previous month's figures are frozen into its report by this rule (app/jobs/when.py).
    STATS_FREEZE_AT = env_str("STATS_FREEZE_AT", "monthly 1 01:00")
    # A finished export's download link works this long (seconds).
    STATS_EXPORT_LINK_TTL_S = env_int("STATS_EXPORT_LINK_TTL_S", 300)
    # Export files (rosters name people) are deleted this long after they were requested.
    STATS_EXPORT_KEEP_S = env_int("STATS_EXPORT_KEEP_S", 7 * 24 * 3600)

    # Videos from platforms.
    VIDEO_MAX_BYTES = env_int("VIDEO_MAX_BYTES", 4 * 1024**3)
    UPLOAD_CHUNK_MAX_BYTES = env_int("UPLOAD_CHUNK_MAX_BYTES", 64 * 1024**2)
    VIDEO_MAX_DURATION_S = env_float("VIDEO_MAX_DURATION_S", 4 * 3600.0)
    HLS_SEGMENT_S = env_float("HLS_SEGMENT_S", 6.0)
    TRANSCODE_PRESET = env_str("TRANSCODE_PRESET", "veryfast")
    PLATFORM_TOKEN_TTL_DAYS = env_int("PLATFORM_TOKEN_TTL_DAYS", 365)

    # Study time: the player reports every HEARTBEAT_S seconds; see app/learning/rules.py.
    HEARTBEAT_S = env_float("HEARTBEAT_S", 15.0)

    # Face checks. A random check comes after a draw from [MIN, MAX] seconds of credited study;
    # the trainee has CHECK_WINDOW_S to answer.
    CHECK_INTERVAL_MIN_S = env_float("CHECK_INTERVAL_MIN_S", 300.0)
    CHECK_INTERVAL_MAX_S = env_float("CHECK_INTERVAL_MAX_S", 900.0)
    CHECK_WINDOW_S = env_float("CHECK_WINDOW_S", 60.0)
    # An answer waiting this long for a worker's verdict is handed back (`not_judged`, a fresh
    # window to answer again) by the sweeper's schedule rather than left "judging".
    CHECK_JUDGE_MAX_WAIT_S = env_float("CHECK_JUDGE_MAX_WAIT_S", 90.0)
    # Judge answers in job workers (the answer gets 202, the player polls) or in the request.
    # Unset (None): in workers exactly when JOB_BACKEND is celery; see
    # verification.service.checks_in_worker, which reads it, so overrides of either apply.
    CHECKS_IN_WORKER: bool | None = (
        env_bool("CHECKS_IN_WORKER", False) if env_str("CHECKS_IN_WORKER") else None
    )
    LIVENESS = env_bool("LIVENESS", True)
    # The face model (README, "Face models and thresholds"): `default` (the vendored ONNX
    # model), `dlib`, or the path of an ONNX file of the ArcFace family, whose input scale is
    # FACE_MODEL_INPUT (`unit`: (x - 127) / 128; `raw`: 0-255). The thresholds are in the
    # model's own terms (a distance for dlib, a cosine similarity for ONNX models); unset, the
    # model's calibrated defaults, which a model of your own does not have.
    FACE_MODEL = env_str("FACE_MODEL", "default")
    FACE_MODEL_INPUT = env_str("FACE_MODEL_INPUT", "unit")
    FACE_THRESHOLD: float | None = (
        env_float("FACE_THRESHOLD", 0.0) if env_str("FACE_THRESHOLD") else None
    )
    FACE_DUPLICATE_THRESHOLD: float | None = (
        env_float("FACE_DUPLICATE_THRESHOLD", 0.0) if env_str("FACE_DUPLICATE_THRESHOLD") else None
    )
    # Face images are kept this long after the subsidy decision they back (or after they were
    # taken, if no decision comes), then `flask evidence purge` removes them.
    EVIDENCE_RETENTION_DAYS = env_int("EVIDENCE_RETENTION_DAYS", 3 * 365)
    # Auditors open face images through signed links that live this long; each view is logged.
    EVIDENCE_URL_TTL_S = env_int("EVIDENCE_URL_TTL_S", 120)

    # Subsidy: the share of clean, complete enrolments an auditor looks at anyway (0 turns
    # spot checks off).
    SPOT_CHECK_RATE = env_float("SPOT_CHECK_RATE", 0.05)
    # Four eyes on refusing money: a rejection stands once a second auditor rejects too.
    REJECTION_NEEDS_SECOND_AUDITOR = env_bool("REJECTION_NEEDS_SECOND_AUDITOR", False)

    # Audit log (app/audit/service.py): the chain's head is written, HMAC-sealed with
    # AUDIT_KEY, to this append-only file outside the database every AUDIT_ANCHOR_S seconds
    # (and by `flask audit anchor`); `flask audit verify` compares the log against it.
    AUDIT_ANCHOR_PATH = env_str("AUDIT_ANCHOR_PATH", str(INSTANCE_DIR / "audit-anchors.jsonl"))
    AUDIT_ANCHOR_S = env_float("AUDIT_ANCHOR_S", 300.0)

    # Text messages (app/identity/sms.py): `log` (the message, code included, goes to the
    # server log: development), `aliyun` (Alibaba Cloud SMS) or empty (off: no password
    # recovery by SMS, registration without a phone code).
    SMS_BACKEND = env_str("SMS_BACKEND", "")
    SMS_ALIYUN_ENDPOINT = env_str("SMS_ALIYUN_ENDPOINT", "https://dysmsapi.aliyuncs.com/")
    SMS_ALIYUN_ACCESS_KEY_ID = env_str("SMS_ALIYUN_ACCESS_KEY_ID")
    SMS_ALIYUN_ACCESS_KEY_SECRET = env_str("SMS_ALIYUN_ACCESS_KEY_SECRET")
    SMS_ALIYUN_SIGN_NAME = env_str("SMS_ALIYUN_SIGN_NAME")
    # Message kind -> the provider's approved template code: "password_reset=SMS_1,register=SMS_2".
    SMS_ALIYUN_TEMPLATES = env_str("SMS_ALIYUN_TEMPLATES", "")
    SMS_TIMEOUT_S = env_float("SMS_TIMEOUT_S", 10.0)
    # Codes: valid SMS_CODE_TTL_S, SMS_CODE_MAX_ATTEMPTS wrong tries each; at most
    # SMS_CODE_MAX_PER_PHONE to one phone and SMS_CODE_MAX_PER_ADDRESS asked from one client
    # address per SMS_CODE_WINDOW_S, and one per phone every SMS_CODE_RESEND_S.
    SMS_CODE_TTL_S = env_int("SMS_CODE_TTL_S", 300)
    SMS_CODE_MAX_ATTEMPTS = env_int("SMS_CODE_MAX_ATTEMPTS", 5)
    SMS_CODE_MAX_PER_PHONE = env_int("SMS_CODE_MAX_PER_PHONE", 5)
    SMS_CODE_MAX_PER_ADDRESS = env_int("SMS_CODE_MAX_PER_ADDRESS", 20)
    SMS_CODE_WINDOW_S = env_int("SMS_CODE_WINDOW_S", 3600)
    SMS_CODE_RESEND_S = env_int("SMS_CODE_RESEND_S", 60)

    # Observability (app/observability): log lines as `text` (for people) or `json` (one
    # object per line, production's default); /metrics and readiness details only for
    # addresses in METRICS_ALLOW or a bearer METRICS_TOKEN; job workers serve their metrics at
    # WORKER_METRICS_LISTEN (host:port, unset: off); each readiness check waits READY_TIMEOUT_S.
    LOG_FORMAT = env_str("LOG_FORMAT", "text")
    LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
    METRICS_ALLOW = env_str("METRICS_ALLOW", "127.0.0.1/32,::1/128")
    METRICS_TOKEN = env_str("METRICS_TOKEN")
    WORKER_METRICS_LISTEN = env_str("WORKER_METRICS_LISTEN")
    READY_TIMEOUT_S = env_float("READY_TIMEOUT_S", 2.0)


class DevelopmentConfig(Config):
    """`make run`: nothing to install by hand, state under instance/."""

    ENV_NAME = "development"
    DEMO_CONTENT = env_bool("DEMO_CONTENT", True)
    # With the demo content, a labelled year of activity for the bureau's statistics.
    DEMO_YEAR = env_bool("DEMO_YEAR", True)
    # Codes are printed in the terminal of `make run` (SMS_BACKEND= turns SMS off).
    SMS_BACKEND = os.environ.get("SMS_BACKEND", "log")

    def __init__(self) -> None:
        self.SECRET_KEY = env_str("SECRET_KEY") or instance_secret("secret_key")
        self.DATA_KEY = env_str("DATA_KEY") or instance_secret("data_key")
        # Seals the audit log; its own secret so the people who verify the log need not hold
        # the key that decrypts ID numbers (see app/audit/service.py).
        self.AUDIT_KEY = env_str("AUDIT_KEY") or instance_secret("audit_key")
        self.SQLALCHEMY_DATABASE_URI = normalize_database_url(
            env_str("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'veriskill.db'}")
        )
        self.STORAGE_ROOT = env_str("STORAGE_ROOT", str(INSTANCE_DIR / "storage"))


class ProductionConfig(Config):
    """Everything that matters comes from the environment; missing secrets stop the start."""

    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE
    LOG_FORMAT = env_str("LOG_FORMAT", "json")

    def __init__(self) -> None:
        self.SECRET_KEY = self.required("SECRET_KEY")
        self.DATA_KEY = self.required("DATA_KEY")
        self.AUDIT_KEY = self.required("AUDIT_KEY")
        self.PUBLIC_BASE_URL = self.required("PUBLIC_BASE_URL")
        self.SQLALCHEMY_DATABASE_URI = normalize_database_url(self.required("DATABASE_URL"))
        self.STORAGE_ROOT = env_str("STORAGE_ROOT")

    @staticmethod
    def required(name: str) -> str:
        value = env_str(name)
        if value is None:
            raise ConfigError(f"{name} must be set in production")
        return value


PROFILES: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "production": ProductionConfig,
}


def load_config() -> Config:
    name = env_str("VERISKILL_ENV", "development")
    if name not in PROFILES:
        raise ConfigError(f"VERISKILL_ENV must be one of {sorted(PROFILES)}, not {name!r}")
    config = PROFILES[name]()
    check_settings(config)
    check_face_model(config)
    return config


# The shortest production secret accepted: `python -c "import secrets;
# print(secrets.token_urlsafe(48))"` makes one of 64.
MIN_SECRET_CHARS = 32
POSITIVE_SETTINGS = (
    "HEARTBEAT_S",
    "CHECK_WINDOW_S",
    "CHECK_INTERVAL_MIN_S",
    "CHECK_INTERVAL_MAX_S",
    "JOB_POLL_S",
    "JOB_STALE_S",
    "JOB_HEARTBEAT_S",
    "JOB_SWEEP_S",
    "JOB_DISPATCH_GRACE_S",
    "EXPIRY_SWEEP_S",
    "DESK_QUEUE_REFRESH_S",
    "STATS_ROLLUP_S",
    "STATS_EXPORT_LINK_TTL_S",
    "STATS_EXPORT_KEEP_S",
    "UPLOAD_ABANDONED_S",
    "SCHEDULE_HISTORY_RUNS",
    "CHECK_JUDGE_MAX_WAIT_S",
    "EVIDENCE_RETENTION_DAYS",
    "SESSION_IDLE_S",
    "SESSION_MAX_S",
    "TOKEN_TTL_S",
    "LOGIN_MAX_FAILURES",
    "LOGIN_MAX_FAILURES_PER_ADDRESS",
    "LOGIN_LOCKOUT_S",
    "REGISTER_MAX_PER_ADDRESS",
    "REGISTER_WINDOW_S",
    "REAUTH_S",
    "AUDIT_ANCHOR_S",
    "SMS_TIMEOUT_S",
    "READY_TIMEOUT_S",
    "SMS_CODE_TTL_S",
    "SMS_CODE_MAX_ATTEMPTS",
    "SMS_CODE_MAX_PER_PHONE",
    "SMS_CODE_MAX_PER_ADDRESS",
    "SMS_CODE_WINDOW_S",
    "SMS_CODE_RESEND_S",
)


def check_settings(config: Config) -> None:
    """Refuse at start, by name, the values that would let a server start and misbehave later:
    short production secrets, shares and intervals out of range, Celery without its broker."""
    if config.ENV_NAME == "production":
        for name in ("SECRET_KEY", "DATA_KEY", "AUDIT_KEY"):
            if len(getattr(config, name)) < MIN_SECRET_CHARS:
                raise ConfigError(
                    f"{name} must be at least {MIN_SECRET_CHARS} characters "
                    '(python -c "import secrets; print(secrets.token_urlsafe(48))")'
                )
        if config.AUDIT_KEY in (config.SECRET_KEY, config.DATA_KEY):
            raise ConfigError("AUDIT_KEY must be a secret of its own, not SECRET_KEY or DATA_KEY")
    for name in POSITIVE_SETTINGS:
        if not getattr(config, name) > 0:
            raise ConfigError(f"{name} must be more than 0, not {getattr(config, name)!r}")
    if config.CHECK_INTERVAL_MIN_S > config.CHECK_INTERVAL_MAX_S:
        raise ConfigError("CHECK_INTERVAL_MIN_S must not be more than CHECK_INTERVAL_MAX_S")
    if not 0 <= config.SPOT_CHECK_RATE <= 1:
        raise ConfigError(f"SPOT_CHECK_RATE is a share from 0 to 1, not {config.SPOT_CHECK_RATE!r}")
    for name in ("FACE_THRESHOLD", "FACE_DUPLICATE_THRESHOLD"):
        value = getattr(config, name)
        if value is not None and not 0 < value < 2:
            raise ConfigError(f"{name} is a face score between 0 and 2, not {value!r}")
    if config.JOB_BACKEND not in ("thread", "celery", "external"):
        raise ConfigError(
            f"JOB_BACKEND must be thread, celery or external, not {config.JOB_BACKEND!r}"
        )
    if config.JOB_SCRATCH_MAX_AGE_S < 0:
        raise ConfigError(
            f"JOB_SCRATCH_MAX_AGE_S must not be negative, not {config.JOB_SCRATCH_MAX_AGE_S!r}"
        )
    if config.JOB_MAX_ATTEMPTS < 1:
        raise ConfigError(f"JOB_MAX_ATTEMPTS must be at least 1, not {config.JOB_MAX_ATTEMPTS!r}")
    if config.JOB_HEARTBEAT_S >= config.JOB_STALE_S:
        raise ConfigError("JOB_HEARTBEAT_S must be less than JOB_STALE_S")
    if config.JOB_BACKEND == "celery" and not config.REDIS_URL:
        raise ConfigError("JOB_BACKEND=celery needs REDIS_URL (Celery's broker)")
    check_public_base_url(config)
    check_schedule_rules(config)
    check_media_accel(config)
    check_sms(config)
    check_observability(config)


def check_observability(config: Config) -> None:
    """A known log format and level, allow-list networks that parse, a production metrics
    token as long as a secret, a worker metrics address with a port."""
    import ipaddress
    import logging

    if config.LOG_FORMAT not in ("json", "text"):
        raise ConfigError(f"LOG_FORMAT must be json or text, not {config.LOG_FORMAT!r}")
    if not isinstance(logging.getLevelName(str(config.LOG_LEVEL).upper()), int):
        raise ConfigError(
            f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {config.LOG_LEVEL!r}"
        )
    for item in (config.METRICS_ALLOW or "").split(","):
        try:
            if item.strip():
                ipaddress.ip_network(item.strip(), strict=False)
        except ValueError:
            raise ConfigError(
                f"METRICS_ALLOW: {item.strip()!r} is not an address or network (10.0.0.0/8)"
            ) from None
    token = config.METRICS_TOKEN
    if token and config.ENV_NAME == "production" and len(token) < MIN_SECRET_CHARS:
        raise ConfigError(f"METRICS_TOKEN must be at least {MIN_SECRET_CHARS} characters")
    listen = config.WORKER_METRICS_LISTEN
    if listen and not listen.rpartition(":")[2].isdigit():
        raise ConfigError(f"WORKER_METRICS_LISTEN must be host:port, not {listen!r}")


def check_sms(config: Config) -> None:
    """A known SMS backend; production never prints codes to its log, and the Alibaba Cloud
    backend has its keys, its signature and a template for every code it sends."""
    backend = config.SMS_BACKEND or ""
    if backend not in ("", "log", "aliyun"):
        raise ConfigError(f"SMS_BACKEND must be log, aliyun or empty (off), not {backend!r}")
    if backend == "log" and config.ENV_NAME == "production":
        raise ConfigError(
            "SMS_BACKEND=log writes codes to the server log: use aliyun in production, "
            "or leave SMS_BACKEND empty to turn SMS off"
        )
    if backend != "aliyun":
        return
    for name in (
        "SMS_ALIYUN_ACCESS_KEY_ID",
        "SMS_ALIYUN_ACCESS_KEY_SECRET",
        "SMS_ALIYUN_SIGN_NAME",
    ):
        if not getattr(config, name):
            raise ConfigError(f"{name} must be set with SMS_BACKEND=aliyun")
    try:
        templates = parse_sms_templates(config.SMS_ALIYUN_TEMPLATES)
    except ValueError as error:
        raise ConfigError(f"SMS_ALIYUN_TEMPLATES: {error}") from None
    missing = [kind for kind in ("password_reset", "register") if kind not in templates]
    if missing:
        raise ConfigError(
            f"SMS_ALIYUN_TEMPLATES must name a template for {', '.join(missing)} "
            '(e.g. "password_reset=SMS_123456789,register=SMS_123456790")'
        )
    parts = urlsplit(config.SMS_ALIYUN_ENDPOINT or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"SMS_ALIYUN_ENDPOINT must be an http(s) address, not {config.SMS_ALIYUN_ENDPOINT!r}"
        )
    if config.ENV_NAME == "production" and parts.scheme != "https":
        raise ConfigError("SMS_ALIYUN_ENDPOINT must be https:// in production")


def parse_sms_templates(raw: str | dict | None) -> dict[str, str]:
    """`kind=TemplateCode,kind=TemplateCode` (or a dict, from overrides) as a dict."""
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    templates: dict[str, str] = {}
    for item in (raw or "").split(","):
        if not item.strip():
            continue
        kind, sep, code = item.partition("=")
        if not sep or not kind.strip() or not code.strip():
            raise ValueError(f"write kind=TemplateCode pairs separated by commas, not {item!r}")
        templates[kind.strip()] = code.strip()
    return templates


def check_public_base_url(config: Config) -> None:
    """PUBLIC_BASE_URL is a scheme and a host (and port), nothing else; https in production."""
    url = config.PUBLIC_BASE_URL or ""
    parts = urlsplit(url)
    schemes = ("https",) if config.ENV_NAME == "production" else ("http", "https")
    if (
        parts.scheme not in schemes
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ConfigError(
            f"PUBLIC_BASE_URL must be {' or '.join(schemes)}:// and a host "
            f"(e.g. https://peixun.example.gov.cn), not {url!r}"
        )


def check_media_accel(config: Config) -> None:
    """MEDIA_ACCEL_REDIRECT is an nginx location prefix, `/.../`, or empty. (On MinIO it is
    unused: segments are presigned URLs of the store, and face images come through the app.)"""
    prefix = config.MEDIA_ACCEL_REDIRECT or ""
    if not prefix:
        return
    if not (prefix.startswith("/") and prefix.endswith("/")) or len(prefix) < 3 or "?" in prefix:
        raise ConfigError(
            f"MEDIA_ACCEL_REDIRECT must be an internal nginx location such as /_protected_media/, "
            f"not {prefix!r}"
        )


# Settings holding a periodic task's rule (app/jobs/when.py) rather than a plain number.
SCHEDULE_RULE_SETTINGS = ("EVIDENCE_PURGE_AT", "STATS_FREEZE_AT")


def check_schedule_rules(config: Config) -> None:
    """A calendar rule with a typo would leave its task silently off: refuse it at start."""
    from app.jobs import when

    for name in SCHEDULE_RULE_SETTINGS:
        try:
            when.parse(getattr(config, name))
        except ValueError as error:
            raise ConfigError(f"{name}: {error}") from None


def check_face_model(config: Config) -> None:
    """The face model's file must be there (a process would otherwise fail at its first face),
    and an ONNX file of the operator's own has no calibrated thresholds: they must be given."""
    from media_pipeline import model_files

    if config.FACE_MODEL_INPUT not in ("unit", "raw"):
        raise ConfigError(f"FACE_MODEL_INPUT must be unit or raw, not {config.FACE_MODEL_INPUT!r}")
    if config.FACE_MODEL == "default" and not model_files.VENDORED_MODEL.is_file():
        raise ConfigError(model_files.missing_message())
    own_model = config.FACE_MODEL not in ("default", "dlib")
    if own_model and not Path(config.FACE_MODEL).is_file():
        raise ConfigError(f"FACE_MODEL: no such file {config.FACE_MODEL} (or default, or dlib)")
    if own_model and (config.FACE_THRESHOLD is None or config.FACE_DUPLICATE_THRESHOLD is None):
        raise ConfigError(
            "FACE_MODEL names a model of your own: set FACE_THRESHOLD and "
            "FACE_DUPLICATE_THRESHOLD for it (README: Face models and thresholds)"
        )
