"""Prometheus metrics: what the service does, for the operator's dashboards and alerts.

Counted where things happen (requests, heartbeats, face checks, the face model, jobs) in
every process: under gunicorn or Celery with several processes, each writes its samples to
files in PROMETHEUS_MULTIPROC_DIR and a scrape adds them up (`procdir` wipes the folder at
start). The job queue is not counted but read from the database at scrape time, so every
process reports the same truth. Exposed by `views.metrics` (`/metrics`, operator only) and, in
job workers, by `serve_worker_metrics` (WORKER_METRICS_LISTEN).

Every metric has labels, on purpose: a labelled metric writes nothing until first used, so
importing this module in a parent process leaves the folder empty until its children count.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Flask, Request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.observability.procdir import multiproc_dir

# Request latency: from a cached page (a few ms) to a face check judged in the request (1-2 s).
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The face model over a burst of frames: a quarter of a second to several seconds.
FACE_MODEL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
# Routes of requests that matched none (404s, scanners): one label value, not one per path.
UNMATCHED_ROUTE = "unmatched"

REQUEST_SECONDS = Histogram(
    "veriskill_http_request_duration_seconds",
    "Time to answer a request, by route (the URL rule), method and status class.",
    ["route", "method", "status"],
    buckets=REQUEST_BUCKETS,
)
HEARTBEATS = Counter(
    "veriskill_heartbeats_total",
    "Heartbeats judged: result credited (some time counted) or refused (none), by reason "
    "(none: credited in full; else app/learning/rules.py Reason).",
    ["result", "reason"],
)
HEARTBEAT_CREDITED_SECONDS = Counter(
    "veriskill_heartbeat_credited_seconds_total",
    "Study time credited by heartbeats (pending until a face check confirms it), by reason.",
    ["reason"],
)
FACE_CHECKS = Counter(
    "veriskill_face_checks_total",
    "Face checks closed, by kind (sign_in, random, closing) and result (passed or the code).",
    ["kind", "result"],
)
FACE_MODEL_SECONDS = Histogram(
    "veriskill_face_model_duration_seconds",
    "Time the face model took over one answer or photo (decode, detect, encode, compare).",
    ["operation"],
    buckets=FACE_MODEL_BUCKETS,
)
JOB_SECONDS = Histogram(
    "veriskill_job_duration_seconds",
    "Time a job worker spent on one run of a job, by kind.",
    ["kind"],
    buckets=(0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0),
)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def observe_request(route: str | None, method: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(route or UNMATCHED_ROUTE, method, status_class(status)).observe(seconds)


def heartbeat(credited_s: float, reason: str | None) -> None:
    """Count one judged heartbeat (call it with the rules' outcome, once per heartbeat)."""
    label = str(reason) if reason else "none"
    HEARTBEATS.labels("credited" if credited_s > 0 else "refused", label).inc()
    if credited_s > 0:
        HEARTBEAT_CREDITED_SECONDS.labels(label).inc(credited_s)


def face_check(kind: str, result: str) -> None:
    """Count one face check closed with its result (`passed` or the failure code)."""
    FACE_CHECKS.labels(kind, result).inc()


@contextmanager
def face_model_timer(operation: str) -> Iterator[None]:
    """Time the face model's work on one answer (`check`) or one photo (`enrol`)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        FACE_MODEL_SECONDS.labels(operation).observe(time.perf_counter() - started)


def job_ran(kind: str, seconds: float) -> None:
    JOB_SECONDS.labels(kind).observe(seconds)


# --- the job queue, read at scrape time ------------------------------------------------------


class _Families(Collector):
    """Metric families computed for one scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


class _Forward(Collector):
    """This process's own registry, for a server without PROMETHEUS_MULTIPROC_DIR."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def queue_families(now: datetime) -> list[Metric]:
    """Jobs queued and running by kind, and the age of the oldest queued one: one grouped
    query on the job table (its status-and-kind index), so every scrape sees the truth."""
    from app.extensions import db
    from app.jobs.models import Job, JobStatus
    from app.jobs.service import HANDLERS

    rows = db.session.execute(
        sa.select(Job.kind, Job.status, sa.func.count(), sa.func.min(Job.created_at))
        .where(Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))
        .group_by(Job.kind, Job.status)
    ).all()
    db.session.commit()
    depth = GaugeMetricFamily(
        "veriskill_jobs", "Jobs queued or running now, by kind.", labels=["kind", "status"]
    )
    age = GaugeMetricFamily(
        "veriskill_job_oldest_queued_age_seconds",
        "Age of the oldest queued job, by kind (0 when none waits).",
        labels=["kind"],
    )
    counts = {(kind, status): 0 for kind in HANDLERS for status in JobStatus}
    oldest: dict[str, float] = dict.fromkeys(HANDLERS, 0.0)
    for kind, status, count, first_at in rows:
        counts[(kind, JobStatus(status))] = count
        if status == JobStatus.QUEUED and first_at is not None:
            if first_at.tzinfo is None:  # SQLite hands back naive UTC
                first_at = first_at.replace(tzinfo=now.tzinfo)
            oldest[kind] = max(0.0, (now - first_at).total_seconds())
    for (kind, status), count in sorted(counts.items()):
        if status in (JobStatus.QUEUED, JobStatus.RUNNING):
            depth.add_metric([kind, status.value], count)
    for kind, seconds in sorted(oldest.items()):
        age.add_metric([kind], round(seconds, 3))
    return [depth, age]


def registry(extra: Iterable[Metric] = ()) -> CollectorRegistry:
    """What one scrape reports: every process's samples (from PROMETHEUS_MULTIPROC_DIR when
    set, else this process's), plus families computed for it."""
    scrape = CollectorRegistry()
    if multiproc_dir() is not None:
        multiprocess.MultiProcessCollector(scrape)
    else:
        scrape.register(_Forward())
    extra = list(extra)
    if extra:
        scrape.register(_Families(extra))
    return scrape


def exposition(extra: Iterable[Metric] = ()) -> bytes:
    return generate_latest(registry(extra))


# --- who may read them -------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value: str) -> list[Network]:
    """METRICS_ALLOW: comma-separated addresses or networks (`10.0.0.0/8, ::1`); ValueError
    names the one that is not."""
    networks = []
    for item in (part.strip() for part in value.split(",")):
        if item:
            networks.append(ipaddress.ip_network(item, strict=False))
    return networks


def operator_request(app: Flask, request: Request) -> bool:
    """The operator's scraper: a bearer token equal to METRICS_TOKEN, or a client address in
    METRICS_ALLOW (the real client's, behind PROXY_COUNT trusted proxies)."""
    token = app.config.get("METRICS_TOKEN")
    sent = request.headers.get("Authorization", "")
    bearer = sent[len("Bearer ") :] if sent.startswith("Bearer ") else ""
    if token and bearer and hmac.compare_digest(bearer.encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    networks = app.extensions.get("veriskill.metrics_allow")
    if networks is None:
        networks = app.extensions["veriskill.metrics_allow"] = parse_networks(
            app.config.get("METRICS_ALLOW") or ""
        )
    return any(address in network for network in networks)


# --- job workers ---------------------------------------------------------------------------------


def serve_worker_metrics(app: Flask) -> Any:
    """In a job worker (Celery's main process, `flask jobs work`), serve its metrics over HTTP
    at WORKER_METRICS_LISTEN (`host:port`; unset: off). Under Celery's process pool the pool
    children's samples are read from PROMETHEUS_MULTIPROC_DIR, so set it for Celery. Bind it to
    an address only the scraper reaches: this listener has no allow-list of its own."""
    listen = app.config.get("WORKER_METRICS_LISTEN")
    if not listen:
        return None
    host, _, port = listen.rpartition(":")
    return start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1", registry=registry())
