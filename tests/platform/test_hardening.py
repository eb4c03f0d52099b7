"""Issue 9, kept fixed, in the platform's domain (no server): test names start with the finding
they guard. The HTTP half of the matrix is tests/server/test_hardening.py."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from modelworks.cli import app as cli
from modelworks.errors import UserError
from modelworks.platform import tokens, users
from modelworks.platform.bootstrap import prepare, recovery_token
from modelworks.platform.datasets import DataStore
from modelworks.platform.db import make_engine, session_factory
from modelworks.platform.db.models import ApiToken, User
from modelworks.platform.errors import Conflict, TooLarge, TooManyRequests, Unprocessable
from modelworks.platform.limits import check_config
from modelworks.platform.settings import Settings
from modelworks.server.ratelimit import AuthFailures

TOKEN = re.compile(r"mw_[0-9a-f]{16}_[A-Za-z0-9_-]+")


@pytest.fixture
def settings(tmp_path):
    s = Settings.from_env({}, home=tmp_path / "home")
    return s


@pytest.fixture
def admin_token(settings):
    return prepare(settings)


def session_of(settings):
    engine = make_engine(settings.database_url)
    return engine, session_factory(engine)()


# --- f7: the last admin's last token, and the way back -------------------------------------------


def test_f7_revoking_the_last_admin_token_is_refused(settings, admin_token):
    engine, session = session_of(settings)
    with session:
        admin = tokens.authenticate(session, admin_token)
        only = session.scalar(select(ApiToken).where(ApiToken.user_id == admin.id))
        with pytest.raises(Conflict, match="last valid token of the last admin"):
            tokens.revoke_token(session, admin, only.id)
        # A second admin with a valid token: the first may now revoke theirs.
        users.create_user(session, admin, "second-admin", is_admin=True)
        tokens.revoke_token(session, admin, only.id)
        assert session.get(ApiToken, only.id).revoked_at is not None
        plain, _, _ = users.create_user(session, admin, "plain")
        plain_token = session.scalar(select(ApiToken).where(ApiToken.user_id == plain.id))
        tokens.revoke_token(session, plain, plain_token.id)  # the rule is about admins only
    engine.dispose()


def test_f7_recovery_token_works_for_an_admin_only(settings, admin_token):
    engine, session = session_of(settings)
    with session:
        admin = tokens.authenticate(session, admin_token)
        users.create_user(session, admin, "plain")
        session.execute(ApiToken.__table__.update().values(revoked_at=ApiToken.created_at))  # locked out
        session.commit()
    fresh = recovery_token(settings, "admin")
    with session_factory(engine)() as session:
        assert tokens.authenticate(session, fresh).name == "admin"
    with pytest.raises(UserError, match="'plain' is not an admin.*admins: admin"):
        recovery_token(settings, "plain")
    with pytest.raises(UserError, match="not an admin"):
        recovery_token(settings, "nobody")
    engine.dispose()


def test_f7_modelworks_admin_token_prints_a_fresh_token_once(settings, admin_token, monkeypatch):
    monkeypatch.delenv("MODELWORKS_DATABASE_URL", raising=False)
    result = CliRunner().invoke(cli, ["admin", "token", "admin", "--data-dir", str(settings.home)])
    assert result.exit_code == 0, result.output
    printed = TOKEN.findall(result.stdout)
    assert len(printed) == 1 and printed[0] != admin_token and "shown only this once" in result.stdout
    engine, session = session_of(settings)
    with session:
        assert tokens.authenticate(session, printed[0]).is_admin
    engine.dispose()
    refused = CliRunner().invoke(cli, ["admin", "token", "nobody", "--data-dir", str(settings.home)])
    assert refused.exit_code == 2 and "not an admin" in refused.output and "Traceback" not in refused.output


# --- f2: a config's size and depth are bounded before it is read --------------------------------


def test_f2_config_limits_name_their_settings(settings):
    check_config({"a": {"b": [1, 2, {"c": "d"}]}}, settings)
    deep: dict = {}
    node = deep
    for _ in range(settings.max_config_depth):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(Unprocessable, match="deeper than 32 levels.*MODELWORKS_MAX_CONFIG_DEPTH"):
        check_config(deep, settings)
    with pytest.raises(TooLarge, match="limit is 256 KB.*MODELWORKS_MAX_CONFIG_KB"):
        check_config({"x": "y" * (300 << 10)}, settings)


# --- f8: extraction cap, refused tokens, the first admin token ----------------------------------


def test_f8_the_zip_extraction_cap_is_a_setting(tmp_path):
    small = Settings.from_env({"MODELWORKS_MAX_UPLOAD_MB": "2"}, home=tmp_path)
    assert DataStore.from_settings(small).archive_limits.max_bytes == 8 << 20  # 4 x the upload limit by default
    capped = Settings.from_env({"MODELWORKS_MAX_UPLOAD_MB": "2", "MODELWORKS_MAX_EXTRACT_MB": "3"}, home=tmp_path)
    assert DataStore.from_settings(capped).archive_limits.max_bytes == 3 << 20


def test_f8_refused_tokens_per_address_slide_out_of_the_window():
    failures = AuthFailures(max_failures=3, window_s=10, max_clients=2)
    for t in (0, 1, 2):
        failures.refused("a", now=t)
    with pytest.raises(TooManyRequests) as e:
        failures.refused("a", now=3)
    assert e.value.retry_after == 8  # the failure at t=1 leaves the window at t=11
    failures.refused("b", now=3)  # another address is not held back
    failures.refused("a", now=12.5)  # the window slid past the early failures
    failures.refused("c", now=13)
    assert len(failures._failures) == 2  # bounded: the stalest address was dropped


def test_f8_the_first_admin_token_never_reaches_a_log(settings, caplog):
    caplog.set_level(logging.DEBUG)
    token = prepare(settings)
    assert token is not None
    assert all(token not in record.getMessage() for record in caplog.records)
    for f in settings.home.rglob("*"):
        assert f.is_dir() or token.encode() not in f.read_bytes(), f
    engine, session = session_of(settings)
    with session:
        admin = session.scalar(select(User).where(User.name == "admin"))
        assert admin.is_admin and tokens.authenticate(session, token).id == admin.id
    engine.dispose()
