"""Work a test's setup repeats but does not test, done for real once per test process.

A fixture that needs a published course or an enrolled face is not testing ffmpeg or the face
model: the `study` fixture alone transcoded the same clip and encoded the same photo well over
a hundred times a run. Inside `reused_media()` the first call with given inputs runs the real
ffmpeg or face model; later calls with the same inputs (by content digest) get a copy of that
real output. Outside it nothing is replaced, so the tests whose subject is the transcode, the
poster or the face model always run them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from media_pipeline import faces, video


def file_digest(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def key_of(*parts: object) -> str:
    """A file-name-safe key for inputs given as digests and settings."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


class MadeOnce:
    """Real outputs of ffmpeg and the face model, keyed by their inputs, for this process."""

    def __init__(self) -> None:
        self._root: Path | None = None
        self._lock = threading.Lock()
        self._hls: dict[str, video.HlsResult] = {}
        self._files: dict[str, Path] = {}
        self._analyses: dict[str, faces.FaceAnalysis] = {}
        self.real_transcode_hls = video.transcode_hls
        self.real_make_poster = video.make_poster
        self.real_make_test_pattern = video.make_test_pattern
        self.real_analyze = faces.analyze

    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="veriskill-made-once-"))
        return self._root

    def remove(self) -> None:
        """Delete the kept outputs (end of the session)."""
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None
        self._hls.clear()
        self._files.clear()

    def transcode_hls(
        self,
        src: str | os.PathLike[str],
        out_dir: str | os.PathLike[str],
        *,
        on_progress: Callable[[float], None] | None = None,
        **settings: Any,
    ) -> video.HlsResult:
        """`video.transcode_hls`, the ladder of one source and settings made once."""
        key = key_of("hls", file_digest(src), sorted(settings.items()))
        with self._lock:
            made = self._hls.get(key)
            if made is None:
                made = self.real_transcode_hls(src, self.root / key, **settings)
                self._hls[key] = made
        target = Path(out_dir).resolve()
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(made.out_dir, target)
        if on_progress is not None:
            on_progress(100.0)
        return dataclasses.replace(
            made, out_dir=target, master_playlist=target / made.master_playlist.name
        )

    def make_poster(
        self, src: str | os.PathLike[str], dest_jpg: str | os.PathLike[str], *args: Any, **kw: Any
    ) -> Path:
        """`video.make_poster`, one frame per source and settings made once."""
        key = key_of("poster", file_digest(src), args, sorted(kw.items()))
        return self._copy_of(key, dest_jpg, lambda at: self.real_make_poster(src, at, *args, **kw))

    def make_test_pattern(self, dest: str | os.PathLike[str], **settings: Any) -> Path:
        """`video.make_test_pattern`, one clip per settings made once."""
        key = key_of("pattern", sorted(settings.items()))
        return self._copy_of(key, dest, lambda at: self.real_make_test_pattern(at, **settings))

    def _copy_of(
        self, key: str, dest: str | os.PathLike[str], make: Callable[[Path], Path]
    ) -> Path:
        with self._lock:
            kept = self._files.get(key)
            if kept is None:
                kept = make(self.root / f"{key}{Path(dest).suffix}")
                self._files[key] = kept
        target = Path(dest).resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kept, target)
        return target

    def analyze(self, rgb: Any, *, purpose: str, model: Any, upsample: int = 0) -> Any:
        """`faces.analyze`, each photo's face found, measured and encoded once per model."""
        pixels = rgb.tobytes() if hasattr(rgb, "tobytes") else bytes(rgb)
        digest = hashlib.sha256(pixels).hexdigest()
        name = None if model is None else model.name
        key = key_of("face", digest, getattr(rgb, "shape", None), purpose, name, upsample)
        with self._lock:
            made = self._analyses.get(key)
        if made is None:
            made = self.real_analyze(rgb, purpose=purpose, model=model, upsample=upsample)
            with self._lock:
                self._analyses[key] = made
        return made


MADE_ONCE = MadeOnce()


@contextlib.contextmanager
def reused_media() -> Iterator[MadeOnce]:
    """Within: transcodes, posters, test patterns and face analyses come from `MADE_ONCE`."""
    replaced = [
        (video, "transcode_hls", MADE_ONCE.transcode_hls),
        (video, "make_poster", MADE_ONCE.make_poster),
        (video, "make_test_pattern", MADE_ONCE.make_test_pattern),
        (faces, "analyze", MADE_ONCE.analyze),
    ]
    originals = [(module, name, getattr(module, name)) for module, name, _ in replaced]
    for module, name, stand_in in replaced:
        setattr(module, name, stand_in)
    try:
        yield MADE_ONCE
    finally:
        for module, name, original in originals:
            setattr(module, name, original)
