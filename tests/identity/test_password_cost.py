"""Password hashes: the strong Argon2id cost wherever people sign in; only the suite lowers it."""

from __future__ import annotations

import pytest
from argon2 import extract_parameters
from argon2.profiles import RFC_9106_LOW_MEMORY

import config
from app.extensions import db
from app.identity.models import User
from tests.conftest import TRAINEE_ID, TRAINEE_PASSWORD, api_token, make_trainee

STRONG = (
    RFC_9106_LOW_MEMORY.time_cost,
    RFC_9106_LOW_MEMORY.memory_cost,
    RFC_9106_LOW_MEMORY.parallelism,
)


def stored_cost(app, user_id: int) -> tuple[int, int, int]:
    with app.app_context():
        params = extract_parameters(db.session.get(User, user_id).password_hash)
        return params.time_cost, params.memory_cost, params.parallelism


@pytest.mark.parametrize("profile", ["development", "production"])
def test_every_real_profile_hashes_at_the_strong_cost(profile, monkeypatch, tmp_path):
    monkeypatch.setattr(config, "INSTANCE_DIR", tmp_path)
    monkeypatch.setenv("VERISKILL_ENV", profile)
    for name in ("SECRET_KEY", "DATA_KEY", "AUDIT_KEY"):
        monkeypatch.setenv(name, name.lower() * 4)
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://peixun.example.gov.cn")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert config.load_config().PASSWORD_HASH_COST == STRONG


def test_a_trainee_registered_at_the_strong_cost_has_a_strong_hash(fresh_app, monkeypatch):
    monkeypatch.setitem(fresh_app.config, "PASSWORD_HASH_COST", STRONG)
    assert stored_cost(fresh_app, make_trainee(fresh_app)) == STRONG


def test_a_hash_of_another_cost_is_replaced_at_the_next_sign_in(fresh_app, client, monkeypatch):
    """What lets an operator raise the cost: old hashes follow as people sign in."""
    trainee = make_trainee(fresh_app)
    assert stored_cost(fresh_app, trainee) == fresh_app.config["PASSWORD_HASH_COST"]
    monkeypatch.setitem(fresh_app.config, "PASSWORD_HASH_COST", (2, 2048, 1))
    api_token(client, TRAINEE_ID, TRAINEE_PASSWORD)
    assert stored_cost(fresh_app, trainee) == (2, 2048, 1)
    api_token(client, TRAINEE_ID, TRAINEE_PASSWORD)  # the new hash checks out
