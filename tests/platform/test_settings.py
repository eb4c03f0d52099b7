"""Platform settings: flags over environment over defaults; bad values are user errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelworks.errors import UserError
from modelworks.platform.settings import Settings


def test_defaults_are_loopback_and_sqlite_in_home():
    s = Settings.from_env({})
    assert (s.host, s.port) == ("127.0.0.1", 8000)
    assert s.home == Path("~/.modelworks").expanduser()
    assert s.database_url == f"sqlite:///{s.home / 'modelworks.db'}"


def test_environment_then_flags(tmp_path):
    env = {"MODELWORKS_HOME": str(tmp_path / "env-home"), "MODELWORKS_PORT": "9001", "MODELWORKS_HOST": "0.0.0.0"}
    s = Settings.from_env(env)
    assert (s.home, s.port, s.host) == (tmp_path / "env-home", 9001, "0.0.0.0")
    assert s.database_url.endswith("env-home/modelworks.db")
    s = Settings.from_env(env, home=tmp_path / "flag-home", port=9002, host="127.0.0.1")
    assert (s.home, s.port, s.host) == (tmp_path / "flag-home", 9002, "127.0.0.1")
    env["MODELWORKS_DATABASE_URL"] = "postgresql://u@db/mw"
    assert Settings.from_env(env, home=tmp_path).database_url == "postgresql://u@db/mw"


@pytest.mark.parametrize("env", [{"MODELWORKS_PORT": "eighty"}, {"MODELWORKS_PORT": "70000"}])
def test_bad_settings_are_user_errors(env):
    with pytest.raises(UserError, match="invalid platform settings: port"):
        Settings.from_env(env)
