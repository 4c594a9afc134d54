"""A real, small file system for tests of a full or read-only disk: a tmpfs, mounted as root.

Nothing is simulated: writes past the size fail in the kernel with ENOSPC, writes to a
read-only mount with EROFS. The mount is undone when the test ends. Only root may mount; a
developer running the suite as another user sees those tests skipped with the reason, while
root (CI, this project's machines) must be able to mount or the test fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


@contextmanager
def small_disk(path: Path, size: str = "1m", *, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of `size` mounted at path (created if missing), unmounted afterwards."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root and mount(8); CI runs as root")
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size},mode=0700" + (",ro" if read_only else "")
    mounted = _run("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path))
    if mounted.returncode != 0:
        pytest.fail(f"root could not mount a tmpfs at {path}: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        unmounted = _run("umount", str(path))
        if unmounted.returncode != 0:
            _run("umount", "-l", str(path))


def fill(path: Path) -> None:
    """Write zeros into path until the file system holding it has no room left."""
    block = b"\0" * 64 * 1024
    with (path / ".filler").open("wb") as out:
        try:
            while True:
                out.write(block)
                out.flush()
        except OSError:
            pass
