"""Static files with content-hash URLs: cached for a year by browsers, gzipped where that helps.

Templates link every file through `static_url('js/player.js')`, which adds the first hex
digits of the file's SHA-256 (`/static/js/player.js?v=3f2a9c1b`). A new release changes the
hash of whatever changed, so a browser may keep a versioned URL forever (`immutable`) and
still never runs yesterday's script against today's page. A URL without the current hash (no
`v`, or a page from before a release) is served with `no-cache`: the browser asks again.

Compression, decided per server:
- Flask (`make run`, tests): the gzipped bytes of a text file are made once per process, the
  first time a client that accepts gzip asks, and kept in memory (keyed by the file's size and
  mtime, so an edited file is compressed again). The whole folder is under 1 MB, hls.js
  (624 KB) is 8 of every 10 bytes of it and compresses to about a third; nothing is written
  anywhere, so `make run` needs no build step and can never serve a stale `.gz`.
- nginx (production): `gzip_static on` sends `<file>.gz` made at deploy time by
  `flask static compress` (level 9, once, not per request), beside each text file under
  static/. nginx cannot check the hash; the immutable year is given to any `v`, which is
  harmless: only pages of the release that has the file name its hash.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import click
from flask import Flask, Response, current_app, request, send_from_directory, url_for
from flask.cli import AppGroup
from werkzeug.security import safe_join

# Hex digits of the SHA-256 in a versioned URL: enough that two releases of a file never
# share one by chance.
HASH_CHARS = 8
VERSION_ARG = "v"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Worth compressing: text. Images other than SVG and fonts are compressed already.
COMPRESSIBLE_SUFFIXES = frozenset({".js", ".css", ".svg", ".json", ".map", ".txt", ".html"})
GZIP_LEVEL = 9
# Below this, gzip's header and the Vary bookkeeping cost more than they save.
GZIP_MIN_BYTES = 512


@dataclass(frozen=True)
class _Entry:
    stamp: tuple[int, int]  # (size, mtime_ns): the file as it was when hashed
    digest: str
    gzipped: bytes | None = None


class StaticFiles:
    """Content hashes and gzipped copies of the files under one folder, computed once each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def path(self, filename: str) -> Path | None:
        joined = safe_join(str(self.root), filename)
        if joined is None:
            return None
        path = Path(joined)
        return path if path.is_file() else None

    def _entry(self, filename: str, path: Path) -> _Entry:
        stat = path.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        entry = self._entries.get(filename)
        if entry is None or entry.stamp != stamp:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()[:HASH_CHARS]
            entry = _Entry(stamp, digest)
            with self._lock:
                self._entries[filename] = entry
        return entry

    def digest(self, filename: str) -> str | None:
        path = self.path(filename)
        return None if path is None else self._entry(filename, path).digest

    def gzipped(self, filename: str) -> tuple[bytes, str] | None:
        """The file gzipped and its hash, or None when it is not worth compressing."""
        path = self.path(filename)
        if path is None or not compressible(path):
            return None
        entry = self._entry(filename, path)
        data = entry.gzipped
        if data is None:
            data = gzip.compress(path.read_bytes(), GZIP_LEVEL, mtime=0)
            with self._lock:
                self._entries[filename] = _Entry(entry.stamp, entry.digest, data)
        return data, entry.digest


def compressible(path: Path) -> bool:
    return path.suffix.lower() in COMPRESSIBLE_SUFFIXES and path.stat().st_size >= GZIP_MIN_BYTES


def _files(app: Flask) -> StaticFiles:
    return app.extensions["veriskill.static"]


def static_url(filename: str) -> str:
    """The URL of a static file carrying its content hash; the one way templates link them."""
    digest = _files(current_app).digest(filename)
    if digest is None:
        return url_for("static", filename=filename)
    return url_for("static", filename=filename, v=digest)  # VERSION_ARG


def serve_static(filename: str) -> Response:
    """Flask's static view, with the cache lifetime the URL's hash earns and gzip on request."""
    files = _files(current_app)
    version = request.args.get(VERSION_ARG)
    packed = files.gzipped(filename)
    if packed is None or not request.accept_encodings["gzip"]:
        response = send_from_directory(files.root, filename, max_age=None)
        digest = files.digest(filename)
    else:
        body, digest = packed
        mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        response = Response(body, mimetype=mimetype)
        response.headers["Content-Encoding"] = "gzip"
        response.set_etag(f"{digest}-gz")
        response.make_conditional(request)
    if packed is not None:
        response.vary.add("Accept-Encoding")
    current = version is not None and version == digest
    response.headers["Cache-Control"] = IMMUTABLE if current else REVALIDATE
    return response


static_cli = AppGroup("static", help="Static files: gzipped copies for nginx.")


@static_cli.command("compress")
def compress_command() -> None:
    """Write <file>.gz beside every text file under static/, for nginx's gzip_static (run at
    deploy, after the code; a file whose .gz is current is left alone)."""
    root = _files(current_app).root
    click.echo(f"{compress_folder(root)} file(s) compressed under {root}")


def compress_folder(root: Path) -> int:
    """Gzip every compressible file under root to <file>.gz with the source's mtime (so a
    current copy is recognised and skipped); the number written."""
    written = 0
    for path in sorted(root.rglob("*")):
        if not path.is_file() or not compressible(path):
            continue
        stat = path.stat()
        target = path.with_name(path.name + ".gz")
        if target.exists() and target.stat().st_mtime_ns == stat.st_mtime_ns:
            continue
        target.write_bytes(gzip.compress(path.read_bytes(), GZIP_LEVEL, mtime=0))
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        written += 1
    return written


def init_app(app: Flask) -> None:
    """Hash-versioned URLs for templates, and Flask's static route answering them."""
    app.extensions["veriskill.static"] = StaticFiles(Path(str(app.static_folder)))
    app.add_template_global(static_url, "static_url")
    app.view_functions["static"] = serve_static
    app.cli.add_command(static_cli)
