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
