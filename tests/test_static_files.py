"""Static files: content-hash URLs cached for a year, others revalidated, gzip when accepted."""

from __future__ import annotations

import gzip
import hashlib
import re

from app.static_files import HASH_CHARS, IMMUTABLE, REVALIDATE, static_url
from config import BASE_DIR

HLS = "vendor/hls.js/hls.min.js"


def digest(filename: str) -> str:
    return hashlib.sha256((BASE_DIR / "static" / filename).read_bytes()).hexdigest()[:HASH_CHARS]


def test_static_url_carries_the_content_hash(fresh_app):
    with fresh_app.test_request_context():
        assert static_url("js/player.js") == f"/static/js/player.js?v={digest('js/player.js')}"
        assert static_url("no-such-file.js") == "/static/no-such-file.js"


def test_pages_link_static_files_only_by_hashed_urls(client):
    page = client.get("/login").get_data(as_text=True)
    links = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert links, "the sign-in page links its stylesheet and scripts"
    for link in links:
        path, _, version = link.partition("?v=")
        assert version == digest(path.removeprefix("/static/")), link


def test_a_hashed_url_is_immutable_and_gzipped_for_a_client_that_accepts_it(client):
    source = (BASE_DIR / "static" / HLS).read_bytes()
    url = f"/static/{HLS}?v={digest(HLS)}"
    response = client.get(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == IMMUTABLE
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    assert "javascript" in response.mimetype
    body = response.get_data()
    assert len(body) < len(source) / 2
    assert gzip.decompress(body) == source
    again = client.get(
        url, headers={"Accept-Encoding": "gzip", "If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304


def test_a_client_without_gzip_gets_the_plain_file(client):
    source = (BASE_DIR / "static" / HLS).read_bytes()
    with client.get(f"/static/{HLS}?v={digest(HLS)}") as response:
        assert "Content-Encoding" not in response.headers
        assert response.get_data() == source
        assert response.headers["Cache-Control"] == IMMUTABLE


def test_an_unversioned_or_stale_url_must_be_revalidated(client):
    for url in ("/static/site.css", "/static/site.css?v=00000000"):
        with client.get(url, headers={"Accept-Encoding": "gzip"}) as response:
            assert response.status_code == 200
            assert response.headers["Cache-Control"] == REVALIDATE, url


def test_no_file_outside_the_static_folder(client):
    assert client.get("/static/../config.py").status_code == 404
    assert client.get("/static/%2e%2e/config.py").status_code == 404


def test_compress_command_writes_gz_copies_for_nginx(fresh_app, tmp_path):
    folder = tmp_path / "static"
    (folder / "js").mkdir(parents=True)
    script = folder / "js" / "big.js"
    script.write_text("var x = 1;\n" * 500)
    (folder / "tiny.css").write_text("a{}")
    (folder / "icon.png").write_bytes(b"\x89PNG" + b"0" * 4000)
    files = fresh_app.extensions["veriskill.static"]
    root = files.root
    files.root = folder
    try:
        result = fresh_app.test_cli_runner().invoke(args=["static", "compress"])
        assert result.exit_code == 0, result.output
        assert gzip.decompress((folder / "js" / "big.js.gz").read_bytes()) == script.read_bytes()
        assert not (folder / "tiny.css.gz").exists()  # too small to gain
        assert not (folder / "icon.png.gz").exists()  # not text
        assert "1 file(s)" in result.output
        again = fresh_app.test_cli_runner().invoke(args=["static", "compress"])
        assert "0 file(s)" in again.output
    finally:
        files.root = root
