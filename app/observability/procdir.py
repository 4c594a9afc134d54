"""The folder where each process of a multi-process server writes its Prometheus samples.

prometheus-client decides at import whether it counts in memory or in files under
PROMETHEUS_MULTIPROC_DIR, so this module must not import it: the gunicorn master and the
Celery main process wipe the folder here before any process of theirs counts anything.
"""

from __future__ import annotations

import os
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiproc_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def wipe_at_start() -> Path | None:
    """Empty the folder (creating it if need be) when a server starts: files left by the
    previous run would add its counts to this one's, and the pids they name may be reused.
    Call it once, in the parent, before any worker starts; a no-op without the setting."""
    folder = multiproc_dir()
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.glob("*.db"):
        entry.unlink(missing_ok=True)
    return folder
