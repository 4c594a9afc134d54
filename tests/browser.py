"""Headless Chromium (Debian's package) driven by Playwright, against the app on a live port."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("CHROMIUM_BINARY") or shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's own background traffic has nowhere to go on these machines; keep it quiet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 740}
LAPTOP = {"width": 1280, "height": 800}


def screenshot_dir() -> Path | None:
    raw = os.environ.get("SCREENSHOT_DIR")
    if not raw:
        return None
    path = Path(raw)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _closing(app: Flask):
    """Werkzeug's test server drops a response without closing it when the client hangs up
    (players cancel range reads); close it anyway so no file handle leaks."""

    def wsgi(environ, start_response):
        inner = app(environ, start_response)
        try:
            yield from inner
        finally:
            close = getattr(inner, "close", None)
            if close is not None:
                close()

    return wsgi


@contextmanager
def live_server(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, _closing(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def fake_camera_args(y4m: Path) -> list[str]:
    """Chromium shows this video file as the camera, and grants camera access by itself."""
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={y4m}",
    ]


@contextmanager
def chromium(extra_args: list[str] | None = None) -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + (extra_args or [])
        )
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page, base: str, login: str, password: str) -> None:
    """Sign in through the login page and wait until it has moved on."""
    page.goto(f"{base}/login")
    page.fill("#f-login", login)
    page.fill("#f-password", password)
    page.click("button[type=submit].wide")
    page.wait_for_url(lambda url: "/login" not in url)


def sideways_overflow(page) -> int:
    """How many CSS pixels the page sticks out sideways (a phone user must never scroll so)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
