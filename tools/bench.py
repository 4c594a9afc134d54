"""`make bench`: transcode speed and segment serving, as ratios against a baseline in the same run.

Not a test: nothing is asserted, every figure is relative to something measured a moment
before on the same machine, so the numbers travel between laptops and CI boxes.

1. Transcode: a test pattern (``BENCH_SECONDS``, default 30 s, 1280x720 with sound) is encoded
   as a single plain 720p HLS rendition by a hand-written ffmpeg command and through
   ``video.transcode_hls`` as the full 360/540/720 ladder, twice each, interleaved. Both use the
   production preset (``TRANSCODE_PRESET``, default veryfast; ``BENCH_PRESET`` overrides), CRF 23.
2. Serving: the ladder's segments go into a ``LocalStorage`` root, served three ways: by the
   real app under gunicorn (2 workers x 4 threads) behind signed ``/media/o/`` URLs; by nginx
   (2 workers) in front of a second such gunicorn with ``MEDIA_ACCEL_REDIRECT``, where the app
   checks each signature and nginx sends the file (``X-Accel-Redirect``, as deploy/nginx does);
   and by the same nginx straight from the root, no check at all (the floor). wrk (or, without
   it, a small Python client) fetches whole segments and 64 KiB ranges from each in turn:
   ``BENCH_ROUNDS`` rounds (default 3) of ``BENCH_LOAD_S`` seconds (default 3); medians are
   shown, with app/nginx and X-Accel/nginx ratios (goal for X-Accel: at least 0.90).

Then tools/bench_faces.py, and tools/bench_replay.py (replay check: index vs scan, 1k-1M images).
Last, tools/bench_load.py: heartbeat capacity of the production-like server (learners vs p50/p95).

The load generator shares the CPUs with the servers, as everything does on a small box; on a
busy machine the spread of the per-round ratios shows how far to trust them.

Every process it starts is stopped and every temporary file removed, whatever happens.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repo's packages are not installed

import bench_faces  # noqa: E402  (tools/bench_faces.py, beside this script)
import bench_load  # noqa: E402  (tools/bench_load.py, beside this script)
import bench_replay  # noqa: E402  (tools/bench_replay.py, beside this script)

from config import Config  # noqa: E402
from media_pipeline import storage as store  # noqa: E402
from media_pipeline import video  # noqa: E402

BIN = Path(sys.executable).parent
SIZE = (1280, 720)
CRF = 23
SEGMENT_S = 6.0
RANGE = (0, 65535)
LOAD_THREADS = 2
LOAD_CONNECTIONS = 16
GUNICORN_WORKERS = 2
GUNICORN_THREADS = 4
URL_TTL_S = 3600
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
PY_CLIENT_MAX_REQUESTS = 200_000
INSTALL_HINT = "apt-get install nginx wrk"


def env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        sys.exit(f"{name} must be a number, not {raw!r}")
    if value <= 0:
        sys.exit(f"{name} must be positive, not {raw!r}")
    return value


# --------------------------------------------------------------------------- transcode


@dataclass(frozen=True)
class TranscodeFigures:
    source_s: float
    single_wall_s: float
    ladder_wall_s: float


def single_rendition_argv(source: Path, out: Path, *, preset: str, has_audio: bool) -> list[str]:
    """One 720p rung as transcode_hls would make it, but alone and without its extra steps."""
    (plan,) = video.plan_renditions(*SIZE, ladder=(SIZE[1],))
    argv = [
        video.ffmpeg_path(),
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-i",
        str(source),
        "-map",
        "0:v:0",
        "-vf",
        f"scale={plan.width}:{plan.height},setsar=1,format=yuv420p",
        "-c:v",
        "libx264",
        "-preset:v",
        preset,
        "-crf:v",
        str(CRF),
        "-maxrate:v",
        f"{plan.video_kbps}k",
        "-bufsize:v",
        f"{2 * plan.video_kbps}k",
        "-force_key_frames",
        f"expr:gte(t,n_forced*{SEGMENT_S:g})",
    ]
    if has_audio:
        argv += ["-map", "0:a:0", "-c:a", "aac", "-b:a", f"{plan.audio_kbps}k", "-ac", "2"]
    argv += [
        "-f",
        "hls",
        "-hls_time",
        f"{SEGMENT_S:g}",
        "-hls_playlist_type",
        "vod",
        "-hls_flags",
        "independent_segments",
        "-hls_segment_type",
        "mpegts",
        "-hls_segment_filename",
        str(out / "seg_%05d.ts"),
        str(out / "index.m3u8"),
    ]
    return argv


def bench_transcode(
    work: Path, *, seconds: float, preset: str
) -> tuple[TranscodeFigures, video.HlsResult]:
    """Single, ladder, ladder, single: a machine that speeds up or slows down during the run
    (other jobs, thermal limits) weighs on both sides alike."""
    source = video.make_test_pattern(
        work / "source.mp4", seconds=seconds, title="VeriSkill bench", width=SIZE[0], height=SIZE[1]
    )
    info = video.probe(source)
    timeout_s = video.default_transcode_timeout_s(info.duration_s)
    walls: dict[str, list[float]] = {"single": [], "ladder": []}
    result: video.HlsResult | None = None
    for run, kind in enumerate(("single", "ladder", "ladder", "single")):
        out = work / f"{kind}-{run}"
        started = time.perf_counter()
        if kind == "single":
            out.mkdir()
            argv = single_rendition_argv(source, out, preset=preset, has_audio=info.has_audio)
            completed = subprocess.run(  # noqa: S603 - argument list, no shell
                argv, capture_output=True, timeout=timeout_s, check=False
            )
            if completed.returncode != 0:
                tail = completed.stderr.decode("utf-8", "replace")[-2000:]
                raise RuntimeError(f"plain ffmpeg failed (exit {completed.returncode}): {tail}")
        else:
            result = video.transcode_hls(
                source, out, segment_s=SEGMENT_S, preset=preset, crf=CRF, timeout_s=timeout_s
            )
        walls[kind].append(time.perf_counter() - started)
    assert result is not None
    figures = TranscodeFigures(
        info.duration_s, statistics.mean(walls["single"]), statistics.mean(walls["ladder"])
    )
    return figures, result


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a server this script started: polite signal, then kill its process group."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its own session: only its workers
            process.wait()


def wait_for_http(
    port: int, path: str, process: subprocess.Popen[bytes], log: Path, what: str
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                connection.request("GET", path)
                if connection.getresponse().status == 200:
                    return
            finally:
                connection.close()
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise RuntimeError(f"{what} did not start on port {port}:\n{tail}")


@contextlib.contextmanager
def gunicorn(env: dict[str, str], port: int, log: Path) -> Iterator[None]:
    """The app as `make run` serves it, or (MEDIA_ACCEL_REDIRECT in env) behind nginx."""
    argv = [
        str(BIN / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(GUNICORN_WORKERS),
        "--threads",
        str(GUNICORN_THREADS),
        "--error-logfile",
        str(log),
        "wsgi:app",
    ]
    process = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True)  # noqa: S603
    try:
        wait_for_http(port, "/healthz", process, log, "gunicorn")
        yield
    finally:
        stop(process)


NGINX_CONF = """\
{user}worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    types {{ video/mp2t ts; application/vnd.apple.mpegurl m3u8; }}
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream accel_app {{
        server 127.0.0.1:{app_port};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location = /ready {{ return 200; }}
        # The floor: files straight from the root, nothing checked.
        location /plain/ {{ alias {root}/; }}
        # As deploy/nginx/veriskill.conf.template: the app checks the link, nginx sends the file.
        location /media/o/ {{
            proxy_pass http://accel_app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
        location {accel_prefix} {{
            internal;
            alias {root}/;
        }}
    }}
}}
"""
# The internal location the accel app names in X-Accel-Redirect (MEDIA_ACCEL_REDIRECT).
ACCEL_PREFIX = "/_protected_media/"


@contextlib.contextmanager
def nginx(binary: str, tmp: Path, root: Path, port: int, app_port: int) -> Iterator[None]:
    """nginx serving the root itself under /plain/, and /media/o/ through the accel app."""
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            # Objects are mode 0600 under a 0700 temp dir: workers must be the files' owner.
            user="user root root;\n" if os.geteuid() == 0 else "",
            workers=GUNICORN_WORKERS,
            tmp=tmp,
            root=root,
            port=port,
            app_port=app_port,
            accel_prefix=ACCEL_PREFIX,
        )
    )
    log = tmp / "nginx-error.log"
    argv = [binary, "-p", str(tmp), "-c", str(conf), "-e", str(log)]
    process = subprocess.Popen(argv, env={"PATH": os.defpath}, start_new_session=True)  # noqa: S603
    try:
        wait_for_http(port, "/ready", process, log, "nginx")
        yield
    finally:
        stop(process, signal.SIGQUIT)  # graceful shutdown of nginx's master and workers


# --------------------------------------------------------------------------- load


@dataclass(frozen=True)
class Load:
    requests: int
    body_bytes: int
    duration_s: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s

    @property
    def mb_per_s(self) -> float:
        return self.body_bytes / self.duration_s / 1e6


WRK_SCRIPT = """\
local paths = {{
{paths}
}}
local i = 0
{headers}
request = function()
    i = i % #paths + 1
    return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("BENCH %d %d %d %d\\n", summary.requests, summary.bytes,
        summary.duration, e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def run_wrk(
    binary: str, tmp: Path, port: int, paths: Sequence[str], byte_range: str | None, load_s: float
) -> Load:
    script = tmp / "paths.lua"
    quoted = ",\n".join(f'    "{p}"' for p in paths)  # signed paths are URL-safe ASCII
    headers = f'wrk.headers["Range"] = "{byte_range}"' if byte_range else ""
    script.write_text(WRK_SCRIPT.format(paths=quoted, headers=headers))
    argv = [
        binary,
        f"-t{LOAD_THREADS}",
        f"-c{LOAD_CONNECTIONS}",
        f"-d{load_s:g}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{port}",
    ]
    completed = subprocess.run(  # noqa: S603
        argv, capture_output=True, text=True, timeout=load_s + 60, check=False
    )
    match = re.search(r"^BENCH (\d+) (\d+) (\d+) (\d+)$", completed.stdout, re.MULTILINE)
    if completed.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed: {completed.stdout[-1000:]}{completed.stderr[-1000:]}")
    requests, total_bytes, duration_us, errors = (int(g) for g in match.groups())
    # wrk counts header bytes too; take them off so MB/s means payload, as for the Python client.
    header_bytes = requests * _mean_header_bytes(port, paths[0], byte_range)
    return Load(requests, max(0, total_bytes - header_bytes), duration_us / 1e6, errors)


def _mean_header_bytes(port: int, path: str, byte_range: str | None) -> int:
    status, headers, _ = fetch(port, path, byte_range)
    return len(f"HTTP/1.1 {status} OK\r\n") + sum(len(f"{k}: {v}\r\n") for k, v in headers) + 2


def run_python_client(
    port: int, paths: Sequence[str], byte_range: str | None, load_s: float
) -> Load:
    """Keep-alive GETs from a thread pool, bounded in time and count; slower than wrk."""
    deadline = time.monotonic() + load_s
    lock = threading.Lock()
    totals = {"requests": 0, "bytes": 0, "errors": 0}
    headers = {"Range": byte_range} if byte_range else {}

    def worker(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        i = offset
        try:
            while time.monotonic() < deadline:
                with lock:
                    if totals["requests"] >= PY_CLIENT_MAX_REQUESTS:
                        return
                try:
                    connection.request("GET", paths[i % len(paths)], headers=headers)
                    response = connection.getresponse()
                    body = response.read()
                    ok = response.status in (200, 206)
                except (OSError, http.client.HTTPException):
                    connection.close()
                    body, ok = b"", False
                with lock:
                    totals["requests"] += 1
                    totals["bytes"] += len(body)
                    totals["errors"] += not ok
                i += 1
        finally:
            connection.close()

    started = time.monotonic()
    with ThreadPoolExecutor(LOAD_CONNECTIONS) as pool:
        list(pool.map(worker, range(LOAD_CONNECTIONS)))
    return Load(totals["requests"], totals["bytes"], time.monotonic() - started, totals["errors"])


def fetch(port: int, path: str, byte_range: str | None) -> tuple[int, list[tuple[str, str]], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Range": byte_range} if byte_range else {})
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def check_server(name: str, port: int, path: str, expected: bytes) -> None:
    """Every server must give the same bytes, or the comparison means nothing."""
    status, headers, body = fetch(port, path, None)
    if status != 200 or body != expected:
        raise RuntimeError(f"{name} GET {path}: status {status}, {len(body)} bytes")
    if any(k.lower() == "x-accel-redirect" for k, _ in headers):
        raise RuntimeError(f"{name} GET {path}: X-Accel-Redirect reached the client")
    byte_range = f"bytes={RANGE[0]}-{RANGE[1]}"
    status, _, body = fetch(port, path, byte_range)
    if status != 206 or body != expected[RANGE[0] : RANGE[1] + 1]:
        raise RuntimeError(f"{name} Range GET {path}: status {status}, {len(body)} bytes")


# --------------------------------------------------------------------------- serving


def app_environment(tmp: Path, root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "VERISKILL_ENV": "development",
        "VERISKILL_INSTANCE": str(tmp / "instance"),
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
        "STORAGE_BACKEND": "local",
        "STORAGE_ROOT": str(root),
        "SECRET_KEY": "bench-secret-key-not-for-production",
        "DATA_KEY": "bench-data-key-not-for-production",
        "JOB_BACKEND": "external",
        "DEMO_CONTENT": "off",
        "FLASK_APP": "wsgi",
    }


def signed_paths(env: dict[str, str], keys: Sequence[str]) -> list[str]:
    """Object URLs made by the app's own code, with the same settings gunicorn gets."""
    os.environ.update(env)  # config.py reads the environment when first imported
    from app import create_app
    from app.media import service
    from config import load_config

    overrides = {
        "STORAGE_BACKEND": "local",
        "STORAGE_ROOT": env["STORAGE_ROOT"],
        "JOB_BACKEND": "external",
        "DEMO_CONTENT": False,
    }
    app = create_app(load_config(), overrides=overrides)
    with app.test_request_context():
        return [service.object_url(key, URL_TTL_S) for key in keys]


def bench_serving(hls: video.HlsResult, tmp: Path, load_s: float, rounds: int) -> list[str]:
    nginx_bin = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    wrk_bin = shutil.which("wrk")
    lines: list[str] = []
    if wrk_bin is None:
        lines.append(
            f"(wrk not found: a Python client drives the load and caps both servers, nginx "
            f"most; `{INSTALL_HINT}` for real figures)"
        )

    root = tmp / "storage"
    backend = store.LocalStorage(root)
    prefix = "hls/bench"
    backend.upload_dir(prefix, hls.out_dir, store.content_type_for)
    keys = [f"{prefix}/{segment}" for segment in hls.segments]
    sizes = [backend.size(key) for key in keys]
    client = (
        f"wrk {LOAD_THREADS} threads x {LOAD_CONNECTIONS} connections"
        if wrk_bin
        else f"python client {LOAD_CONNECTIONS} connections"
    )
    lines.append(
        f"segments: {len(keys)} .ts across {len(hls.renditions)} renditions, "
        f"mean {statistics.mean(sizes) / 1e3:.0f} kB; range {RANGE[0]}-{RANGE[1]}; {client}; "
        f"{rounds} x {load_s:g} s per server and case (medians)"
    )

    env = app_environment(tmp, root)
    subprocess.run(  # noqa: S603
        [str(BIN / "flask"), "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    app_paths = signed_paths(env, keys)
    # nginx checks no signature: it is the floor the app is measured against.
    nginx_paths = [f"/plain/{key}" for key in keys]
    expected = (root / keys[0]).read_bytes()

    def load(port: int, paths: Sequence[str], byte_range: str | None) -> Load:
        if wrk_bin is not None:
            return run_wrk(wrk_bin, tmp, port, paths, byte_range, load_s)
        return run_python_client(port, paths, byte_range, load_s)

    cases = (("full GET", None), ("Range GET", f"bytes={RANGE[0]}-{RANGE[1]}"))
    servers: dict[str, tuple[int, list[str]]] = {}
    with contextlib.ExitStack() as running:
        app_port = free_port()
        running.enter_context(gunicorn(env, app_port, tmp / "gunicorn.log"))
        check_server("app", app_port, app_paths[0], expected)
        servers["app"] = (app_port, app_paths)
        if nginx_bin is None:
            lines.append(f"nginx not found: app figures only; `{INSTALL_HINT}` to compare")
        else:
            accel_port, nginx_port = free_port(), free_port()
            accel_env = {**env, "MEDIA_ACCEL_REDIRECT": ACCEL_PREFIX}
            running.enter_context(gunicorn(accel_env, accel_port, tmp / "gunicorn-accel.log"))
            running.enter_context(nginx(nginx_bin, tmp, root, nginx_port, accel_port))
            check_server("nginx", nginx_port, nginx_paths[0], expected)
            check_server("X-Accel", nginx_port, app_paths[0], expected)
            servers["nginx"] = (nginx_port, nginx_paths)
            servers["X-Accel"] = (nginx_port, app_paths)

        # The servers stay up (an idle one costs nothing) and take turns, the order
        # alternating by round, so each ratio compares runs a few seconds apart.
        results: dict[tuple[str, str], list[Load]] = {}
        for case, byte_range in cases:
            for round_ in range(rounds):
                order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
                for name in order:
                    port, paths = servers[name]
                    results.setdefault((name, case), []).append(load(port, paths, byte_range))

    for case, _ in cases:
        app_runs = results["app", case]
        parts = [_describe_runs("app", app_runs)]
        nginx_runs = results.get(("nginx", case))
        if nginx_runs is not None:
            accel_runs = results["X-Accel", case]
            parts += [
                _describe_runs("nginx+X-Accel", accel_runs),
                _describe_runs("nginx", nginx_runs),
            ]
            parts.append(f"app/nginx = {_ratio(app_runs, nginx_runs)}")
            parts.append(f"X-Accel/nginx = {_ratio(accel_runs, nginx_runs)} (goal >= 0.90)")
        errors = {
            name: sum(run.errors for run in results[name, case])
            for name in servers
            if any(run.errors for run in results[name, case])
        }
        if errors:
            parts.append(f"FAILED REQUESTS {errors}")
        lines.append(f"segments {case}: " + ", ".join(parts))
    return lines


def _ratio(runs: Sequence[Load], floor: Sequence[Load]) -> str:
    """Median against median; each round's pair ran seconds apart, so the spread of the
    per-round ratios says how noisy the box was."""
    ratio = _median_rps(runs) / _median_rps(floor)
    paired = sorted(a.rps / n.rps for a, n in zip(runs, floor, strict=True))
    spread = f" (rounds {paired[0]:.2f}-{paired[-1]:.2f})" if len(paired) > 1 else ""
    return f"{ratio:.2f}{spread}"


def _median_rps(runs: Sequence[Load]) -> float:
    return statistics.median(run.rps for run in runs)


def _describe_runs(name: str, runs: Sequence[Load]) -> str:
    mb_per_s = statistics.median(run.mb_per_s for run in runs)
    return f"{name} {_median_rps(runs):,.0f} req/s ({mb_per_s:,.0f} MB/s)"


# --------------------------------------------------------------------------- main


def main() -> int:
    seconds = env_number("BENCH_SECONDS", 30.0)
    load_s = env_number("BENCH_LOAD_S", 3.0)
    rounds = round(env_number("BENCH_ROUNDS", 3))
    preset = os.environ.get("BENCH_PRESET", "").strip() or str(Config.TRANSCODE_PRESET)
    print(
        f"bench: {seconds:g} s {SIZE[0]}x{SIZE[1]} source, preset {preset}, CRF {CRF}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start",
        flush=True,
    )
    tmp = Path(tempfile.mkdtemp(prefix="veriskill-bench-"))
    try:
        figures, hls = bench_transcode(tmp, seconds=seconds, preset=preset)
        single_x = figures.source_s / figures.single_wall_s
        ladder_x = figures.source_s / figures.ladder_wall_s
        print(
            f"transcode single 720p: {single_x:.1f}x realtime | "
            f"ladder 360/540/720: {ladder_x:.1f}x realtime | "
            f"ladder costs {figures.ladder_wall_s / figures.single_wall_s:.2f}x "
            f"the single rendition (mean of 2 runs each, interleaved)",
            flush=True,
        )
        for line in bench_serving(hls, tmp, load_s, rounds):
            print(line, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    bench_faces.main()
    bench_replay.main([])
    bench_load.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
