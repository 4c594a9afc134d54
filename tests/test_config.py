"""Configuration: embedded defaults for development, nothing guessed in production."""

import pytest

import config


def test_production_refuses_to_start_without_secrets(monkeypatch):
    for name in ("SECRET_KEY", "DATA_KEY", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VERISKILL_ENV", "production")
    with pytest.raises(config.ConfigError, match="SECRET_KEY"):
        config.load_config()
    monkeypatch.setenv("SECRET_KEY", "s")
    monkeypatch.setenv("DATA_KEY", "d" * config.MIN_SECRET_CHARS)
    monkeypatch.setenv("AUDIT_KEY", "a" * config.MIN_SECRET_CHARS)
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://peixun.example.gov.cn")
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db/veriskill")
    with pytest.raises(config.ConfigError, match="SECRET_KEY must be at least 32 characters"):
        config.load_config()
    monkeypatch.setenv("SECRET_KEY", "s" * config.MIN_SECRET_CHARS)
    settings = config.load_config()
    assert settings.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://u@db/veriskill"
    assert settings.DEMO_CONTENT is False


def test_development_defaults_live_under_instance(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    for name in ("SECRET_KEY", "DATA_KEY", "DATABASE_URL", "VERISKILL_ENV"):
        monkeypatch.delenv(name, raising=False)
    first = config.load_config()
    assert f"sqlite:///{tmp_path / 'veriskill.db'}" == first.SQLALCHEMY_DATABASE_URI
    assert first.SECRET_KEY == config.load_config().SECRET_KEY  # kept across restarts
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_unknown_profile_and_bad_numbers_are_named(monkeypatch):
    monkeypatch.setenv("VERISKILL_ENV", "staging")
    with pytest.raises(config.ConfigError, match="VERISKILL_ENV"):
        config.load_config()
    monkeypatch.setenv("TOKEN_TTL_S", "soon")
    with pytest.raises(config.ConfigError, match="TOKEN_TTL_S"):
        config.env_int("TOKEN_TTL_S", 1)


def test_the_face_model_must_be_there_and_an_own_model_needs_thresholds(monkeypatch, tmp_path):
    from media_pipeline import model_files

    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    settings = config.DevelopmentConfig()
    config.check_face_model(settings)  # the installed default
    monkeypatch.setattr(model_files, "VENDORED_MODEL", tmp_path / "fr_feature.onnx")
    with pytest.raises(config.ConfigError, match="make setup"):
        config.check_face_model(settings)
    own = tmp_path / "licensed.onnx"
    settings.FACE_MODEL = str(own)
    with pytest.raises(config.ConfigError, match="no such file"):
        config.check_face_model(settings)
    own.write_bytes(b"weights")
    with pytest.raises(config.ConfigError, match="FACE_THRESHOLD and FACE_DUPLICATE_THRESHOLD"):
        config.check_face_model(settings)
    settings.FACE_THRESHOLD, settings.FACE_DUPLICATE_THRESHOLD = 0.4, 0.5
    config.check_face_model(settings)
    settings.FACE_MODEL_INPUT = "bgr"
    with pytest.raises(config.ConfigError, match="FACE_MODEL_INPUT"):
        config.check_face_model(settings)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SPOT_CHECK_RATE", 5.0, "SPOT_CHECK_RATE is a share from 0 to 1"),
        ("FACE_THRESHOLD", -1.0, "FACE_THRESHOLD is a face score"),
        ("CHECK_INTERVAL_MIN_S", 1000.0, "CHECK_INTERVAL_MIN_S must not be more"),
        ("HEARTBEAT_S", 0.0, "HEARTBEAT_S must be more than 0"),
        ("JOB_BACKEND", "rabbit", "JOB_BACKEND must be thread, celery or external"),
    ],
)
def test_settings_that_would_misbehave_later_stop_the_start(
    monkeypatch, tmp_path, name, value, message
):
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    settings = config.DevelopmentConfig()
    config.check_settings(settings)  # the defaults start
    setattr(settings, name, value)
    with pytest.raises(config.ConfigError, match=message):
        config.check_settings(settings)


def test_celery_without_its_broker_stops_the_start(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    settings = config.DevelopmentConfig()
    settings.JOB_BACKEND, settings.REDIS_URL = "celery", None
    with pytest.raises(config.ConfigError, match="JOB_BACKEND=celery needs REDIS_URL"):
        config.check_settings(settings)
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    config.check_settings(settings)
