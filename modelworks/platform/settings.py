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
``artifacts``              ``MODELWORKS_ARTIFACTS``     ``<home>/artifacts`` (any fsspec URL)
``max_upload_mb``          ``MODELWORKS_MAX_UPLOAD_MB`` ``1024``
``max_extract_mb``         ``MODELWORKS_MAX_EXTRACT_MB`` ``4 x max_upload_mb`` (an uploaded zip, extracted)
``max_body_mb``            ``MODELWORKS_MAX_BODY_MB``   ``1`` (any request body but an upload's)
``max_config_kb``          ``MODELWORKS_MAX_CONFIG_KB`` ``256`` (a job's config, as JSON)
``max_config_depth``       ``MODELWORKS_MAX_CONFIG_DEPTH`` ``32`` (nesting levels of a job's config)
``body_timeout_s``         ``MODELWORKS_BODY_TIMEOUT_S`` ``30`` (a request body that stalls this long: 408)
``auth_failures``          ``MODELWORKS_AUTH_FAILURES`` ``20`` (refused tokens per client address ...)
``auth_window_s``          ``MODELWORKS_AUTH_WINDOW_S`` ``60`` (... in this many seconds; then 429)
``data_key``               ``MODELWORKS_DATA_KEY``      none (base64 keys, comma-separated)
``data_key_file``          ``MODELWORKS_DATA_KEY_FILE`` ``<home>/data.key``, made on first use
``price_cpu_hour``         ``MODELWORKS_PRICE_CPU_HOUR`` ``0`` (cost of one CPU hour, for usage)
``price_gpu_hour``         ``MODELWORKS_PRICE_GPU_HOUR`` ``0`` (cost of one GPU hour, for usage)
``executor``               ``MODELWORKS_EXECUTOR``      ``local`` (or ``ray``: where workers run jobs)
``ray_address``            ``MODELWORKS_RAY_ADDRESS``   none (HOST:PORT, ``auto`` or ``local``)
``pretrained``             ``MODELWORKS_PRETRAINED``    none (comma-separated ``model.path`` values jobs may use)
``policy_check_s``         ``MODELWORKS_POLICY_CHECK_S`` ``10`` (how often a worker looks for continual policies due)
=========================  ===========================  =====================================

Dataset keys: the first key is the current one (new data is encrypted with it); the others
only decrypt, so a rotated-out key stays listed until `rotate-key` has re-encrypted everything.

Executor: ``ray`` runs each attempt in an actor on the Ray cluster at ``ray_address`` (see
`modelworks.jobs.ray_executor`); the worker never starts a cluster unless the address is ``local``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from modelworks.errors import UserError

DEFAULT_HOME = Path("~/.modelworks")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_SERVING_PORT = 8080
DEFAULT_MAX_UPLOAD_MB = 1024
# The limits that only come from the environment (their defaults are the fields' own).
LIMIT_NAMES = ("max_extract_mb", "max_body_mb", "max_config_kb", "max_config_depth", "body_timeout_s", "auth_failures")
LIMITS = {name: f"MODELWORKS_{name.upper()}" for name in (*LIMIT_NAMES, "auth_window_s")}


class Settings(BaseModel):
    """Resolved platform settings; build them with `Settings.from_env`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path
    database_url: str = Field(min_length=1)
    host: str = Field(min_length=1)
    port: int = Field(ge=0, le=65535)
    price_cpu_hour: float = Field(0.0, ge=0.0, description="cost of one CPU hour, for usage estimates")
    price_gpu_hour: float = Field(0.0, ge=0.0, description="cost of one GPU hour, for usage estimates")
    price_1k_requests: float = Field(
        0.0, ge=0.0, description="charge per 1,000 inference requests, for usage estimates"
    )
    price_1k_rows: float = Field(0.0, ge=0.0, description="charge per 1,000 rows inferred, for usage estimates")
    serving_host: str = Field(DEFAULT_HOST, min_length=1, description="where the serving process listens")
    serving_port: int = Field(DEFAULT_SERVING_PORT, ge=0, le=65535)
    artifacts: str = Field(min_length=1, description="a folder path or fsspec URL (s3://bucket/prefix, memory://x)")
    max_upload_mb: float = Field(gt=0)
    max_extract_mb: float | None = Field(None, gt=0, description="an uploaded zip, extracted; none: 4 x max_upload_mb")
    max_body_mb: float = Field(1.0, gt=0, description="any request body but a dataset upload's")
    max_config_kb: float = Field(256.0, gt=0, description="a job's config, serialized as JSON")
    max_config_depth: int = Field(32, ge=2, le=200, description="nesting levels of a job's config")
    body_timeout_s: float = Field(30.0, gt=0, description="a request body that sends nothing for this long is refused")
    auth_failures: int = Field(20, ge=1, description="refused tokens per client address within auth_window_s, then 429")
    auth_window_s: float = Field(60.0, gt=0)
    data_key: SecretStr | None = None
    data_key_file: Path | None = None
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = Field(None, min_length=1, description="HOST:PORT of a Ray cluster, 'auto' or 'local'")
    pretrained: tuple[str, ...] = Field((), description="the model.path values jobs may use (folders, package:NAME)")
    policy_check_s: float = Field(10.0, gt=0, description="seconds between a worker's looks at the continual policies")

    @property
    def work_dir(self) -> Path:
        """Where jobs write their files on this machine: the artifact folder itself when it is
        local, else ``<home>/work`` (what a job keeps is uploaded to the store from there)."""
        root = self.artifacts.removeprefix("file://")
        return Path(root) if "://" not in root else self.home / "work"

    @property
    def max_extract_bytes(self) -> int:
        """How much an uploaded zip may extract to, all files together."""
        return int((self.max_extract_mb or 4 * self.max_upload_mb) * (1 << 20))

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        home: Path | str | None = None,
        database_url: str | None = None,
        host: str | None = None,
        port: int | None = None,
        artifacts: str | None = None,
        max_upload_mb: float | None = None,
        data_key: str | None = None,
        data_key_file: Path | str | None = None,
        executor: str | None = None,
        ray_address: str | None = None,
    ) -> Settings:
        """Resolve every setting: a given argument wins over the environment, which wins over
        the default. The default database is an SQLite file inside ``home``."""
        env = os.environ if environ is None else environ
        home_path = Path(home or env.get("MODELWORKS_HOME") or DEFAULT_HOME).expanduser().absolute()
        values = {
            "home": home_path,
            "database_url": database_url
            or env.get("MODELWORKS_DATABASE_URL")
            or f"sqlite:///{home_path / 'modelworks.db'}",
            "host": host or env.get("MODELWORKS_HOST") or DEFAULT_HOST,
            "port": port if port is not None else env.get("MODELWORKS_PORT") or DEFAULT_PORT,
            "price_cpu_hour": env.get("MODELWORKS_PRICE_CPU_HOUR") or 0.0,
            "price_gpu_hour": env.get("MODELWORKS_PRICE_GPU_HOUR") or 0.0,
            "price_1k_requests": env.get("MODELWORKS_PRICE_1K_REQUESTS") or 0.0,
            "price_1k_rows": env.get("MODELWORKS_PRICE_1K_ROWS") or 0.0,
            "serving_host": env.get("MODELWORKS_SERVING_HOST") or DEFAULT_HOST,
            "serving_port": env.get("MODELWORKS_SERVING_PORT") or DEFAULT_SERVING_PORT,
            "artifacts": artifacts or env.get("MODELWORKS_ARTIFACTS") or str(home_path / "artifacts"),
            "max_upload_mb": max_upload_mb
            if max_upload_mb is not None
            else env.get("MODELWORKS_MAX_UPLOAD_MB") or DEFAULT_MAX_UPLOAD_MB,
            "data_key": data_key or env.get("MODELWORKS_DATA_KEY") or None,
            "data_key_file": data_key_file or env.get("MODELWORKS_DATA_KEY_FILE") or None,
            "executor": executor or env.get("MODELWORKS_EXECUTOR") or "local",
            "ray_address": ray_address or env.get("MODELWORKS_RAY_ADDRESS") or None,
            "pretrained": tuple(p.strip() for p in env.get("MODELWORKS_PRETRAINED", "").split(",") if p.strip()),
            "policy_check_s": env.get("MODELWORKS_POLICY_CHECK_S") or 10.0,
        }
        values |= {name: env[var] for name, var in LIMITS.items() if env.get(var)}
        try:
            return cls(**values)
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
            # Not chained: pydantic's error quotes the input values, and MODELWORKS_DATA_KEY is a secret.
            raise UserError(f"invalid platform settings: {problems}") from None
