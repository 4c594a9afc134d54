"""Render deploy/nginx/veriskill.conf.template into an nginx site, from the environment file.

    .venv/bin/python deploy/nginx/render.py --env /etc/veriskill/veriskill.env -o site.conf

Settings come from the environment, then the env file, then `--set NAME=VALUE`. The body
limits are not settings of their own: they follow the app's (UPLOAD_CHUNK_MAX_BYTES and the
largest check answer), so nginx and the app never disagree on what a request may carry.
Every value is checked before it is written: nothing in it can end an nginx directive.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repo's packages are not installed

from config import Config  # noqa: E402
from media_pipeline.limits import MAX_BURST_FRAMES, MAX_IMAGE_BYTES  # noqa: E402

TEMPLATE = HERE / "veriskill.conf.template"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
# A value may not hold what ends or opens an nginx directive or block, nor quotes or spaces.
SAFE_VALUE = re.compile(r"^[^\s;{}'\"#$\\]+$")
DEFAULTS = {
    "NGINX_HTTPS_LISTEN": "443",
    "NGINX_HTTP_LISTEN": "80",
    "WEB_BIND": "127.0.0.1:8000",
    "APP_ROOT": str(ROOT),
    "STORAGE_ROOT": "/var/lib/veriskill/storage",
    "MEDIA_ACCEL_REDIRECT": "/_protected_media/",
    "METRICS_ALLOW": str(Config.METRICS_ALLOW or ""),
    # The app's own limits (config.py), unless the env file sets them.
    "UPLOAD_CHUNK_MAX_BYTES": str(Config.UPLOAD_CHUNK_MAX_BYTES),
    "MAX_REQUEST_BYTES": str(Config.MAX_CONTENT_LENGTH),
}
REQUIRED = ("PUBLIC_BASE_URL", "TLS_CERTIFICATE", "TLS_CERTIFICATE_KEY")


class RenderError(ValueError):
    """A setting is missing or would break the configuration; the message names it."""


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile reads them (comments, blank lines, quotes)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name.strip()):
            raise RenderError(f"{path}:{number}: not NAME=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def body_limits(settings: Mapping[str, str]) -> dict[str, str]:
    """nginx's two body limits in bytes: a video chunk, and the largest other body a route
    takes (a check answer: MAX_BURST_FRAMES photos and an envelope, app/study/api.py)."""
    chunk = int(settings["UPLOAD_CHUNK_MAX_BYTES"])
    burst = MAX_IMAGE_BYTES * (MAX_BURST_FRAMES + 1)
    return {
        "NGINX_UPLOAD_BODY_MAX": str(chunk),
        "NGINX_BODY_MAX": str(max(burst, int(settings["MAX_REQUEST_BYTES"]))),
    }


def allow_rules(addresses: str) -> str:
    """`allow` lines for METRICS_ALLOW: addresses or networks, separated by spaces or commas."""
    rules = []
    for item in re.split(r"[\s,]+", addresses.strip()):
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise RenderError(f"METRICS_ALLOW: {item!r} is not an address or network") from None
        rules.append(f"        allow {network};")
    return "\n".join(rules) if rules else "        # METRICS_ALLOW is empty: nobody"


def settings_for(values: Mapping[str, str]) -> dict[str, str]:
    """Every placeholder's value, checked."""
    settings = {**DEFAULTS, **{k: v for k, v in values.items() if v != ""}}
    missing = [name for name in REQUIRED if not settings.get(name)]
    if missing:
        raise RenderError(f"{', '.join(missing)} must be set to render the nginx site")
    base = urlsplit(settings["PUBLIC_BASE_URL"])
    if base.scheme not in ("http", "https") or not base.hostname:
        raise RenderError(f"PUBLIC_BASE_URL must be https:// and a host, not {base.geturl()!r}")
    settings["PUBLIC_BASE_URL"] = f"{base.scheme}://{base.netloc}"
    settings.setdefault("NGINX_SERVER_NAME", base.hostname)
    prefix = settings["MEDIA_ACCEL_REDIRECT"]
    if not (prefix.startswith("/") and prefix.endswith("/") and len(prefix) > 2):
        raise RenderError(f"MEDIA_ACCEL_REDIRECT must look like /_protected_media/, not {prefix!r}")
    for name in ("APP_ROOT", "STORAGE_ROOT", "TLS_CERTIFICATE", "TLS_CERTIFICATE_KEY"):
        if not settings[name].startswith("/"):
            raise RenderError(f"{name} must be an absolute path, not {settings[name]!r}")
    settings["STORAGE_ROOT"] = settings["STORAGE_ROOT"].rstrip("/")
    settings.update(body_limits(settings))
    settings["METRICS_ALLOW_RULES"] = allow_rules(settings["METRICS_ALLOW"])
    return settings


def render(values: Mapping[str, str], template: str | None = None) -> str:
    """The site configuration for these settings; RenderError names what is wrong."""
    text = TEMPLATE.read_text() if template is None else template
    settings = settings_for(values)

    def fill(match: re.Match[str]) -> str:
        return settings[match.group(1)]

    used = set(PLACEHOLDER.findall(text))
    unknown = sorted(name for name in used if name not in settings)
    if unknown:
        raise RenderError(f"the template uses settings nobody gives: {', '.join(unknown)}")
    for name in sorted(used - {"METRICS_ALLOW_RULES"}):  # made of checked addresses
        if not SAFE_VALUE.match(settings[name]):
            raise RenderError(f"{name} may not hold spaces, quotes, ';', '{{', '}}' or '$'")
    return PLACEHOLDER.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", type=Path, help="environment file (KEY=VALUE lines)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("-o", "--output", type=Path, help="write here (default: stdout)")
    args = parser.parse_args(argv)
    values = dict(os.environ)
    if args.env is not None:
        values.update(read_env_file(args.env))
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: NAME=VALUE")
        values[name] = value
    try:
        text = render(values)
    except RenderError as error:
        print(f"render.py: {error}", file=sys.stderr)
        return 2
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
