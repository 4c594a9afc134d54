"""The production front: Debian's nginx with the real site (deploy/nginx), gunicorn behind it.

nginx runs as a foreground process under a temporary prefix on free local ports, with the site
template rendered by deploy/nginx/render.py for local paths and a self-signed certificate made
here; gunicorn serves the app on local storage with MEDIA_ACCEL_REDIRECT on. A trainee plays a
published lesson through it over HTTPS exactly as the player does: the session's signed
playlist, every variant, every segment (whole and by Range) and the captions. The bytes must be
those in storage, and must have been sent by nginx: gunicorn's access log shows it sent no body
for any `/media/o/` request.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import io
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.courses import service as courses
from app.courses.models import Lesson
from app.extensions import db
from app.media import service as media
from app.static_files import HASH_CHARS, compress_folder
from config import BASE_DIR
from tests.conftest import TestConfig, bearer, service_missing

sys.path.insert(0, str(BASE_DIR / "deploy" / "nginx"))
import render  # deploy/nginx/render.py

ACCEL_PREFIX = "/_protected_media/"
# Only this address may read /metrics: 127.0.0.1 (every other request here) is "outside".
OPERATOR_ADDRESS = "127.0.0.2"
START_TIMEOUT_S = 60.0
CAPTIONS = (
    "1\n00:00:00,500 --> 00:00:04,000\n安全第一\n\n2\n00:00:05,000 --> 00:00:09,000\n戴好安全帽\n"
)
# The gunicorn access log: method, path, status, bytes of body sent.
ACCESS_FORMAT = "ACCESS %(m)s %(U)s %(s)s %(B)s"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def nginx_binary() -> str:
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if binary is None:
        service_missing("nginx is not installed (apt-get install nginx)")
    return binary


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 valid for a day, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def wait_until_up(port: int, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    pytest.fail(f"{what} did not start on port {port}:\n{tail}")


def stop(process: subprocess.Popen[bytes], sig: int) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only what it started
            process.wait()


@contextlib.contextmanager
def gunicorn(app, tmp: Path, port: int) -> Iterator[Path]:
    """The app as production runs it, behind one proxy, on this test's database and storage."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VERISKILL_", "REDIS"))}
    env.update(
        VERISKILL_ENV="development",
        VERISKILL_INSTANCE=str(tmp / "instance"),
        DATABASE_URL=str(app.config["SQLALCHEMY_DATABASE_URI"]),
        STORAGE_BACKEND="local",
        STORAGE_ROOT=str(app.config["STORAGE_ROOT"]),
        SECRET_KEY=TestConfig.SECRET_KEY,
        DATA_KEY=TestConfig.DATA_KEY,
        AUDIT_KEY=TestConfig.AUDIT_KEY,
        AUDIT_ANCHOR_PATH=str(tmp / "anchors.jsonl"),
        JOB_BACKEND="external",
        DEMO_CONTENT="off",
        SMS_BACKEND="",
        LIVENESS="off",
        PROXY_COUNT="1",
        MEDIA_ACCEL_REDIRECT=ACCEL_PREFIX,
        METRICS_ALLOW=f"{OPERATOR_ADDRESS}/32",
    )
    log = tmp / "gunicorn.log"
    argv = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--config",
        str(BASE_DIR / "gunicorn.conf.py"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--threads",
        "4",
        "--forwarded-allow-ips",
        "127.0.0.1",
        "--access-logfile",
        str(log),
        "--access-logformat",
        ACCESS_FORMAT,
        "--error-logfile",
        str(tmp / "gunicorn-errors.log"),
        "wsgi:app",
    ]
    process = subprocess.Popen(argv, cwd=BASE_DIR, env=env, start_new_session=True)
    try:
        wait_until_up(port, process, tmp / "gunicorn-errors.log", "gunicorn")
        yield log
    finally:
        stop(process, signal.SIGTERM)


MAIN_CONF = """\
{user}worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {site};
}}
"""


@contextlib.contextmanager
def nginx(binary: str, tmp: Path, settings: dict[str, str]) -> Iterator[str]:
    """Debian's nginx running the site rendered from deploy/nginx, as Debian's nginx.conf
    would include it; yields the rendered text."""
    site = tmp / "veriskill.conf"
    site.write_text(render.render(settings))
    conf = tmp / "nginx.conf"
    # Objects are mode 0600: the workers must be their owner (in production, see README).
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf.write_text(MAIN_CONF.format(user=user, tmp=tmp, site=site))
    log = tmp / "nginx-error.log"
    argv = [binary, "-p", str(tmp), "-c", str(conf), "-e", str(log)]
    process = subprocess.Popen(argv, env={"PATH": os.defpath}, start_new_session=True)
    try:
        port = int(settings["NGINX_HTTPS_LISTEN"].rpartition(":")[2])
        wait_until_up(port, process, log, "nginx")
        yield site.read_text()
    finally:
        stop(process, signal.SIGQUIT)


@dataclass
class Front:
    """An HTTPS client of the nginx under test, trusting only its self-signed certificate."""

    port: int
    context: ssl.SSLContext
    access_log: Path  # gunicorn's
    static: Path  # the release's static/ that nginx serves
    http_port: int

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def get(
        self, url: str, headers: dict[str, str] | None = None, *, source: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", url, headers=headers, source=source)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        source: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(urljoin(self.origin + "/", url))
        assert f"{parts.scheme}://{parts.netloc}" == self.origin, url
        connection = http.client.HTTPSConnection(
            "127.0.0.1",
            self.port,
            context=self.context,
            timeout=30,
            source_address=(source, 0) if source else None,
        )
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


@pytest.fixture(scope="module")
def front(app, nginx_binary, tmp_path_factory) -> Iterator[Front]:
    """nginx in front of gunicorn, on the session's database and storage, for this module."""
    tmp = tmp_path_factory.mktemp("front")
    release = tmp / "release"
    shutil.copytree(BASE_DIR / "static", release / "static")
    assert compress_folder(release / "static") > 0  # what `flask static compress` does
    cert, key = self_signed(tmp)
    https_port, http_port, app_port = free_port(), free_port(), free_port()
    settings = {
        "PUBLIC_BASE_URL": f"https://127.0.0.1:{https_port}",
        "TLS_CERTIFICATE": str(cert),
        "TLS_CERTIFICATE_KEY": str(key),
        "NGINX_HTTPS_LISTEN": f"127.0.0.1:{https_port}",
        "NGINX_HTTP_LISTEN": f"127.0.0.1:{http_port}",
        "WEB_BIND": f"127.0.0.1:{app_port}",
        "APP_ROOT": str(release),
        "STORAGE_ROOT": str(app.config["STORAGE_ROOT"]),
        "MEDIA_ACCEL_REDIRECT": ACCEL_PREFIX,
        "METRICS_ALLOW": OPERATOR_ADDRESS,
    }
    context = ssl.create_default_context(cafile=str(cert))
    with gunicorn(app, tmp, app_port) as access_log, nginx(nginx_binary, tmp, settings):
        yield Front(https_port, context, access_log, release / "static", http_port)


def stored(app, key: str) -> bytes:
    return (Path(app.config["STORAGE_ROOT"]) / key).read_bytes()


def uris(playlist: bytes) -> list[str]:
    return [line for line in playlist.decode().splitlines() if line and not line.startswith("#")]


def media_key(url: str) -> str:
    path = urlsplit(url).path
    assert path.startswith("/media/o/"), url
    return path.removeprefix("/media/o/")


def test_a_lesson_plays_through_nginx_with_bytes_sent_by_nginx(study, front):
    client = front
    app = study.client.application
    with app.test_request_context():
        courses.add_captions(db.session.get(Lesson, study.lesson_id), "zh-CN", CAPTIONS.encode())
        db.session.commit()
    log_start = client.access_log.stat().st_size
    auth = bearer(study.token)
    status, _, body = client.request(
        "POST", f"/api/v1/courses/{study.course_id}/enrollments", headers=auth
    )
    assert status in (201, 409), body
    status, _, body = client.request(
        "POST", f"/api/v1/lessons/{study.lesson_id}/sessions", headers=auth
    )
    assert status == 201, body
    playlist_url = json.loads(body)["playlist_url"]
    # The app built it from X-Forwarded-Proto/-Host (PROXY_COUNT=1): the public https origin.
    assert playlist_url.startswith(client.origin + "/media/lessons/"), playlist_url

    status, headers, master = client.get(playlist_url)
    assert status == 200 and headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
    variants = [urljoin(playlist_url, uri) for uri in uris(master)]
    subtitles = re.findall(r'TYPE=SUBTITLES,[^\n]*URI="([^"]+)"', master.decode())
    assert variants and len(subtitles) == 1

    segments: list[str] = []
    for variant in variants:
        status, _, text = client.get(variant)
        assert status == 200
        segments += uris(text)
    assert segments
    for url in segments:
        key = media_key(url)
        expected = stored(app, key)
        status, headers, body = client.get(url)
        assert status == 200 and body == expected, key
        assert headers["Content-Type"] == "video/mp2t"
        assert headers["Cache-Control"] == "private, max-age=300"
        assert headers["X-Media-Served-By"] == "nginx"
        assert "X-Accel-Redirect" not in headers
        status, headers, part = client.get(url, {"Range": "bytes=100-1099"})
        assert status == 206 and part == expected[100:1100]
        assert headers["Content-Range"] == f"bytes 100-1099/{len(expected)}"

    status, _, subtitle_playlist = client.get(urljoin(playlist_url, subtitles[0]))
    assert status == 200
    (vtt_url,) = uris(subtitle_playlist)
    status, headers, vtt = client.get(vtt_url)
    assert status == 200 and vtt == stored(app, media_key(vtt_url))
    assert "安全第一" in vtt.decode() and headers["Content-Type"].startswith("text/vtt")

    # gunicorn checked every link, and nginx sent every byte: no body left the app for them.
    time.sleep(0.5)  # the access log line is written after the response
    media_lines = [
        line.split()
        for line in client.access_log.read_bytes()[log_start:].decode().splitlines()
        if line.startswith("ACCESS GET /media/o/")
    ]
    assert len(media_lines) == 2 * len(segments) + 1
    assert all(fields[3] == "200" and fields[4] in ("0", "-") for fields in media_lines)


def test_signed_links_are_still_checked_and_storage_is_not_reachable_directly(fresh_app, front):
    client = front
    key = "hls/front-test/360p/seg_00001.ts"
    data = b"G" * 4096
    fresh_app.extensions["veriskill.storage"].put_stream(
        key, io.BytesIO(data), content_type="video/mp2t", length=len(data)
    )
    with fresh_app.test_request_context():
        good = media.object_url(key, 60)
        expired = media.object_url(key, -1)
        missing = media.object_url("hls/front-test/360p/seg_00002.ts", 60)
    assert client.get(good)[2] == data  # the control: a good link opens
    assert client.get(missing)[0] == 404
    assert client.get(f"/media/o/{key}")[0] == 403
    assert client.get(expired)[0] == 403
    assert client.get(good.replace("sig=", "sig=0"))[0] == 403
    status, _, body = client.get(f"{ACCEL_PREFIX}{key}")  # nginx's internal location
    assert status == 404 and body != data


def test_operator_endpoints_answer_only_the_allow_list(front):
    client = front
    for path in ("/metrics", "/healthz/ready"):
        status, _, _ = client.get(path)
        assert status == 403, path  # refused by nginx, before the app
    status, _, body = client.get("/metrics", source=OPERATOR_ADDRESS)
    assert status == 200 and b"# TYPE" in body
    assert client.get("/healthz")[0] == 200  # liveness stays public


def test_static_files_come_gzipped_from_nginx_with_a_year_of_cache(front):
    client, static = front, front.static
    name = "vendor/hls.js/hls.min.js"
    source = (static / name).read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:HASH_CHARS]
    css = hashlib.sha256((static / "site.css").read_bytes()).hexdigest()[:HASH_CHARS]
    status, _, page = client.get("/login")
    assert status == 200 and f'href="/static/site.css?v={css}"'.encode() in page

    status, headers, body = client.get(f"/static/{name}?v={digest}", {"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert body == (static / f"{name}.gz").read_bytes()  # gzip_static: the file made at deploy
    assert gzip.decompress(body) == source and len(body) < len(source) / 2
    status, headers, _ = client.get(f"/static/{name}", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Cache-Control"] == "no-cache"
    status, headers, body = client.get(f"/static/{name}?v={digest}")
    assert "Content-Encoding" not in headers and body == source


def test_limits_and_the_redirect_to_https(front):
    client, http_port = front, front.http_port
    chunk = TestConfig.UPLOAD_CHUNK_MAX_BYTES
    limits = render.body_limits(
        {"UPLOAD_CHUNK_MAX_BYTES": str(chunk), "MAX_REQUEST_BYTES": str(1 << 20)}
    )
    # nginx refuses on Content-Length alone, before any body is sent.
    for path, limit in (
        ("/api/v1/lessons/1/video", chunk),
        ("/api/v1/checks/1", int(limits["NGINX_BODY_MAX"])),
    ):
        connection = http.client.HTTPSConnection(
            "127.0.0.1", client.port, context=client.context, timeout=30
        )
        try:
            connection.putrequest("PUT" if path.endswith("video") else "POST", path)
            connection.putheader("Content-Length", str(limit + 1))
            connection.endheaders()
            assert connection.getresponse().status == 413, path
        finally:
            connection.close()
    plain = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
    try:
        plain.request("GET", "/courses?q=x")
        response = plain.getresponse()
        assert response.status == 301
        assert response.getheader("Location") == f"{client.origin}/courses?q=x"
    finally:
        plain.close()
