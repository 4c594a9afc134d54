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
    monkeypatch.setenv("DATA_KEY", "d")
    monkeypatch.setenv("DATABASE_URL", "postgres://u@db/veriskill")
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
