"""The stream-source registry: where new labelled rows arrive from, one entry per kind of source.

A source is a config class (what a consumer's YAML says under ``source:``) and a consumer class,
declared here by import path so that reading a config imports neither redis nor pandas::

    STREAM_SOURCES.declare("redis", RedisSource, impl="modelworks.streams.redis_source:RedisConsumer")

A consumer is built as ``Consumer(config, sink)`` (the sink: `modelworks.streams.consume.DatasetSink`)
and runs with ``consumer.run(stop, once)``; it stores each window through the sink, which records
its offsets with the version, and acknowledges the window to its source only after that. A Kafka
consumer is one more entry here and one more module.

The file a `modelworks streams consume` command reads::

    project: shop
    dataset: clicks            # each window becomes its next version
    user: ada                  # recorded as the author: an editor of the project
    source: {type: redis, url: "redis://127.0.0.1:6379/0", stream: clicks, window_rows: 500, window_seconds: 60}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Field, ValidationError

from modelworks.config.base import Section
from modelworks.errors import UserError
from modelworks.platform.names import NAME_PATTERN
from modelworks.registry import Registry

STREAM_SOURCES: Registry[Any] = Registry("stream source")

Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class RedisSource(Section):
    """A Redis stream read by a consumer group. An entry holds one row: a JSON object in ``field``,
    or (without that field) the row's columns as the entry's fields, read by the dataset's types."""

    type: Literal["redis"] = "redis"
    url: str = "redis://127.0.0.1:6379/0"
    stream: str = Field(min_length=1, max_length=200)
    group: str = Field("modelworks", min_length=1, max_length=100)
    consumer: str = Field("modelworks-1", min_length=1, max_length=100, description="one consumer per group")
    field: str = "row"
    window_rows: int = Field(100, ge=1, le=1_000_000, description="a window is stored once it holds this many rows")
    window_seconds: float = Field(30.0, gt=0, description="... or this long after its first row arrived")
    block_ms: int = Field(1000, ge=10, le=60_000, description="the longest wait for new entries in one read")


class FolderSource(Section):
    """A folder that files of rows are added to (CSV, JSON Lines, Parquet): each file, once it has
    not changed for ``settle_seconds``, is one window, stored once (its name is its offset)."""

    type: Literal["folder"] = "folder"
    path: str
    patterns: list[str] = Field(default_factory=lambda: ["*.csv", "*.jsonl", "*.parquet"])
    poll_seconds: float = Field(2.0, gt=0)
    settle_seconds: float = Field(1.0, ge=0)


STREAM_SOURCES.declare("redis", RedisSource, impl="modelworks.streams.redis_source:RedisConsumer")
STREAM_SOURCES.declare("folder", FolderSource, impl="modelworks.streams.folder_source:FolderConsumer")

SourceConfig = Annotated[Union[STREAM_SOURCES.config_classes()], Field(discriminator="type")]  # noqa: UP007


class StreamConfig(Section):
    """What one consumer reads, and into which dataset of which project, as whom."""

    project: Name
    dataset: Name
    user: str = Field(min_length=1, max_length=64, description="the author of the versions; an editor of the project")
    source: SourceConfig


def load_stream_config(path: Path) -> StreamConfig:
    """Read and check a consumer's YAML file; a bad key or value is a `UserError` naming it."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"cannot read {path}: {e}") from None
    try:
        return StreamConfig.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise UserError(f"{path}: {problems}") from None
