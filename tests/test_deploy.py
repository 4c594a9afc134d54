"""The production artefacts in deploy/ against config.py: the env example lists every setting,
the systemd units take theirs from it and are hardened, the nginx template renders safely.

The nginx site is run for real in tests/test_nginx.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from flask import request

from app.courses.api import FORM_OVERHEAD_BYTES, MAX_CAPTION_BYTES
from app.courses.service import MAX_COVER_BYTES
from app.extensions import db
from config import BASE_DIR, Config
from tests.conftest import make_app

sys.path.insert(0, str(BASE_DIR / "deploy" / "nginx"))
import render  # deploy/nginx/render.py

DEPLOY = BASE_DIR / "deploy"
ENV_EXAMPLE = DEPLOY / "veriskill.env.example"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
# Settings read outside config.py by the code the units run (media_pipeline/ffmpeg_bin.py).
READ_ELSEWHERE = {"FFMPEG_BINARY", "FFPROBE_BINARY"}
SETTING_READ = re.compile(
    r"\b(?:env_str|env_int|env_float|env_bool|required|os\.environ\.get)\(\s*\"([A-Z][A-Z0-9_]*)\""
)
UNIT_VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "Restart": "on-failure",
    "User": "veriskill",
    "EnvironmentFile": "/etc/veriskill/veriskill.env",
    "ReadWritePaths": "/var/lib/veriskill",
}


def example() -> dict[str, str]:
    return render.read_env_file(ENV_EXAMPLE)


def settings_in_config() -> set[str]:
    return set(SETTING_READ.findall((BASE_DIR / "config.py").read_text()))


def unit_lines(path: Path) -> list[tuple[str, str]]:
    """(key, value) of a unit file, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    pairs = []
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            pairs.append((key.strip(), value.strip()))
    return pairs


def test_the_env_example_lists_every_setting_config_reads():
    listed = set(example())
    missing = sorted((settings_in_config() | READ_ELSEWHERE) - listed)
    assert not missing, f"add to deploy/veriskill.env.example: {missing}"
    # And nothing the app does not know, but the units' and nginx's own settings.
    known = settings_in_config() | READ_ELSEWHERE | set(render.DEFAULTS) | set(render.REQUIRED)
    known |= {"NGINX_SERVER_NAME", "WEB_WORKERS", "WEB_THREADS", "WORKER_CONCURRENCY"}
    assert sorted(listed - known) == []


def test_every_line_of_the_env_example_is_explained():
    lines = ENV_EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if line and not line.startswith("#"):
            above = next(
                (lines[i] for i in range(number - 1, -1, -1) if not re.match(r"^[A-Z]", lines[i])),
                "",
            )
            assert above.startswith("# "), f"no comment above {line!r}"


def test_the_env_example_starts_a_production_config_once_filled_in(tmp_path):
    """Every value is one config.check_settings accepts: only the <...> blanks need filling."""
    values = example()
    filled = {
        name: re.sub(r"<[^>]*>", f"filled-{name.lower()}-" + "x" * 40, value)
        for name, value in values.items()
    }
    filled["VERISKILL_INSTANCE"] = str(tmp_path)
    filled["AUDIT_ANCHOR_PATH"] = str(tmp_path / "anchors.jsonl")
    env = {"PATH": os.environ.get("PATH", ""), **filled}
    code = "import config; c = config.load_config(); print(c.ENV_NAME, c.MEDIA_ACCEL_REDIRECT)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["production", "/_protected_media/"]


@pytest.mark.parametrize("unit", UNITS, ids=[u.stem for u in UNITS])
def test_units_take_their_settings_from_the_env_file_and_are_hardened(unit):
    pairs = unit_lines(unit)
    keys = dict(pairs)
    for key, value in HARDENING.items():
        assert keys.get(key) == value, f"{unit.name}: {key}"
    assert keys.get("CapabilityBoundingSet") == ""
    set_by_unit = {v.partition("=")[0] for k, v in pairs if k == "Environment"}
    used = set(UNIT_VARIABLE.findall(unit.read_text()))
    assert not used - set(example()) - set_by_unit, unit.name
    assert not set(example()) & set_by_unit, "the env file would override the unit's value"


def test_the_units_run_the_three_processes():
    commands = {u.stem: dict(unit_lines(u))["ExecStart"] for u in UNITS}
    assert set(commands) == {"veriskill-web", "veriskill-worker", "veriskill-scheduler"}
    assert "gunicorn" in commands["veriskill-web"] and "wsgi:app" in commands["veriskill-web"]
    assert "celery -A app.jobs.celery_worker worker" in commands["veriskill-worker"]
    assert commands["veriskill-scheduler"].endswith("flask --app wsgi schedule run")


def test_the_commands_the_units_and_deploy_steps_use_exist(fresh_app):
    groups = fresh_app.cli.list_commands(None)
    assert "schedule" in groups and "static" in groups
    assert "run" in fresh_app.cli.get_command(None, "schedule").list_commands(None)
    assert "compress" in fresh_app.cli.get_command(None, "static").list_commands(None)


def test_systemd_accepts_the_units(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # The units name /opt/veriskill; point them at this checkout so the commands exist.
    for unit in UNITS:
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/veriskill", str(BASE_DIR)))
    result = subprocess.run(
        [analyze, "verify", *sorted(str(p) for p in tmp_path.glob("*.service"))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- the nginx site


def site_settings(**extra: str) -> dict[str, str]:
    return {
        "PUBLIC_BASE_URL": "https://peixun.example.gov.cn",
        "TLS_CERTIFICATE": "/etc/ssl/veriskill/fullchain.pem",
        "TLS_CERTIFICATE_KEY": "/etc/ssl/veriskill/privkey.pem",
        **extra,
    }


def test_the_env_example_renders_the_nginx_site():
    site = render.render(example())
    assert not re.search(r"\$\{[A-Z]", site)
    assert "server_name peixun.example.gov.cn;" in site
    assert "return 301 https://peixun.example.gov.cn$request_uri;" in site
    assert "location /_protected_media/ {\n        internal;" in site
    assert "alias /var/lib/veriskill/storage/;" in site
    assert "allow 127.0.0.1/32;" in site and "allow ::1/128;" in site


def test_body_limits_follow_the_apps_own():
    limits = render.body_limits(render.settings_for(site_settings()))
    assert int(limits["NGINX_UPLOAD_BODY_MAX"]) == Config.UPLOAD_CHUNK_MAX_BYTES
    every_other_body = (
        MAX_COVER_BYTES,
        MAX_CAPTION_BYTES + FORM_OVERHEAD_BYTES,
        Config.MAX_CONTENT_LENGTH,
    )
    assert int(limits["NGINX_BODY_MAX"]) >= max(every_other_body)
    bigger = render.settings_for(site_settings(UPLOAD_CHUNK_MAX_BYTES=str(128 * 1024**2)))
    assert bigger["NGINX_UPLOAD_BODY_MAX"] == str(128 * 1024**2)
    site = render.render(site_settings(UPLOAD_CHUNK_MAX_BYTES=str(128 * 1024**2)))
    assert f"client_max_body_size {128 * 1024**2};" in site


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TLS_CERTIFICATE", "/etc/ssl/a.pem; include /etc/passwd"),
        ("STORAGE_ROOT", "/srv/a b"),
        ("APP_ROOT", "relative/path"),
        ("MEDIA_ACCEL_REDIRECT", "_protected"),
        ("METRICS_ALLOW", "10.0.0.0/8; allow all"),
        ("PUBLIC_BASE_URL", "peixun.example.gov.cn"),
        ("NGINX_SERVER_NAME", "a}b"),
    ],
)
def test_a_value_that_would_break_the_site_is_refused(name, value):
    with pytest.raises(render.RenderError, match=name):
        render.render(site_settings(**{name: value}))


def test_missing_certificate_settings_are_named():
    with pytest.raises(render.RenderError, match="TLS_CERTIFICATE_KEY"):
        render.render({"PUBLIC_BASE_URL": "https://a.example", "TLS_CERTIFICATE": "/x.pem"})


def test_the_renderer_reads_an_env_file_and_writes_the_site(tmp_path):
    env = tmp_path / "veriskill.env"
    env.write_text(
        "# comment\nPUBLIC_BASE_URL=https://a.example\nTLS_CERTIFICATE='/c.pem'\n"
        'TLS_CERTIFICATE_KEY="/k.pem"\nEVIDENCE_PURGE_AT=daily 03:00\n'
    )
    out = tmp_path / "site.conf"
    assert render.main(["--env", str(env), "--set", "WEB_BIND=127.0.0.1:9000", "-o", str(out)]) == 0
    site = out.read_text()
    assert "ssl_certificate     /c.pem;" in site and "ssl_certificate_key /k.pem;" in site
    assert "server 127.0.0.1:9000;" in site


# --------------------------------------------------------------------------- behind the proxy


def test_forwarded_headers_count_only_behind_the_configured_proxy(fresh_app, database_url):
    """nginx replaces X-Forwarded-For/-Proto/-Host; the app believes them only with
    PROXY_COUNT=1, and then only the last hop (what nginx saw), never what the client sent."""
    forged = {
        "X-Forwarded-For": "203.0.113.9, 198.51.100.7",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "peixun.example.gov.cn",
    }

    def seen(app) -> dict[str, str]:
        @app.get("/_test/seen")
        def probe():
            return {"addr": request.remote_addr, "url": request.host_url}

        return (
            app.test_client()
            .get("/_test/seen", headers=forged, environ_base={"REMOTE_ADDR": "127.0.0.1"})
            .get_json()
        )

    direct = make_app(database_url)
    proxied = make_app(database_url, PROXY_COUNT=1)
    try:
        assert seen(direct) == {"addr": "127.0.0.1", "url": "http://localhost/"}
        assert seen(proxied) == {"addr": "198.51.100.7", "url": "https://peixun.example.gov.cn/"}
    finally:
        for app in (direct, proxied):
            with app.app_context():
                db.engine.dispose()
