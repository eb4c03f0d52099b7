"""Platform settings: where the service keeps its data, which database it uses, where it listens.

Resolved once, in `Settings.from_env`, from (highest first) command-line flags, MODELWORKS_*
environment variables and the defaults below:

=========================  ===========================  =====================================
setting                    environment variable         default
=========================  ===========================  =====================================
``home``                   ``MODELWORKS_HOME``          ``~/.modelworks``
``database_url``           ``MODELWORKS_DATABASE_URL``  ``sqlite:///<home>/modelworks.db``
``host``                   ``MODELWORKS_HOST``          ``127.0.0.1`` (loopback only)
``port``                   ``MODELWORKS_PORT``          ``8000``
=========================  ===========================  =====================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelworks.errors import UserError

DEFAULT_HOME = Path("~/.modelworks")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


class Settings(BaseModel):
    """Resolved platform settings; build them with `Settings.from_env`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path
    database_url: str = Field(min_length=1)
    host: str = Field(min_length=1)
    port: int = Field(ge=0, le=65535)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        home: Path | str | None = None,
        database_url: str | None = None,
        host: str | None = None,
        port: int | None = None,
    ) -> "Settings":
        """Resolve every setting: a given argument wins over the environment, which wins over
        the default. The default database is an SQLite file inside ``home``."""
        env = os.environ if environ is None else environ
        home_path = Path(home or env.get("MODELWORKS_HOME") or DEFAULT_HOME).expanduser().absolute()
        values = {
            "home": home_path,
            "database_url": database_url or env.get("MODELWORKS_DATABASE_URL") or f"sqlite:///{home_path / 'modelworks.db'}",
            "host": host or env.get("MODELWORKS_HOST") or DEFAULT_HOST,
            "port": port if port is not None else env.get("MODELWORKS_PORT") or DEFAULT_PORT,
        }
        try:
            return cls(**values)
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
            raise UserError(f"invalid platform settings: {problems}") from None
