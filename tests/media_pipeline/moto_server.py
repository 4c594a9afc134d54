"""Starts moto's S3-compatible server in a subprocess on 127.0.0.1, for storage tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ACCESS_KEY = "moto-access"
SECRET_KEY = "moto-secret"
REGION = "us-east-1"


class MotoUnavailable(RuntimeError):
    """moto's server could not be started here."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MotoServer:
    """A running `python -m moto.server`; stop() ends it (and only it)."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]
    log_path: Path
    _stopped: bool = field(default=False)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def log_tail(self, limit: int = 2000) -> str:
        self.log.flush()
        return self.log_path.read_bytes()[-limit:].decode("utf-8", "replace")

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        finally:
            self.log.close()
            self.log_path.unlink(missing_ok=True)


def _ready(url: str) -> bool:
    try:
        # Plain http to our own loopback server.
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310
            return bool(response.status < 500)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code < 500
    except OSError:
        return False


def start_moto(timeout_s: float = 30.0, attempts: int = 3) -> MotoServer:
    """Start moto on a free loopback port and wait until it answers; raise MotoUnavailable."""
    env = dict(os.environ)
    # Credentials for the server's own boto use; never real ones.
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
    )
    last_error = "not started"
    for _ in range(attempts):
        port = _free_port()
        fd, log_name = tempfile.mkstemp(prefix="moto-", suffix=".log")
        log = os.fdopen(fd, "w+b")
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        server = MotoServer("127.0.0.1", port, process, log, Path(log_name))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break  # exited: maybe the port was taken in the meantime; try another
            if _ready(f"http://127.0.0.1:{port}/moto-api/"):
                return server
            time.sleep(0.1)
        log_lines = server.log_tail().strip().splitlines()
        last_error = f"exit code {process.poll()}: {log_lines[-1] if log_lines else 'no output'}"
        server.stop()
    raise MotoUnavailable(f"moto server did not start: {last_error}")
