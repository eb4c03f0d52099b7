"""One registry mechanism for every extension point.

A registry maps a `type` string to an entry: a config class, an implementation, and the facts
a caller needs before it imports the implementation (`meta`). Two ways to add an entry:

* ``declare`` — from a light module (no torch), naming the implementation by its import path.
  The implementation is imported the first time ``entry.impl`` is read. This is how config
  classes stay free of torch, as in transformers' ``configuration_*`` / ``modeling_*`` split::

      # models/mlp_config.py  (imports pydantic only)
      class MLPConfig(Section):
          type: Literal["mlp"] = "mlp"
          ...

      MODELS.declare("mlp", MLPConfig, impl="modelworks.models.mlp:MLP")

* ``register`` — a decorator, where the implementation is light or already imported::

      @LOSSES.register("mse", direction="min")
      def mse(...): ...

Registering a name twice, or a config class whose `type` default disagrees with the name, fails
at import. Looking up an unknown name raises a `UserError` listing the known names. A contract
test per registry reads ``entry.impl`` for every entry, so a wrong import path fails in CI.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from modelworks.errors import UserError

T = TypeVar("T")


@dataclass
class Entry(Generic[T]):
    """One registered name: its config class, its implementation (possibly not imported yet)
    and declared facts about it (``meta``: e.g. a metric's direction, a job kind's GPU rule)."""

    name: str
    config_cls: type | None
    impl_path: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    _impl: Any = None

    @property
    def impl(self) -> T:
        """The implementation; a declared one is imported on first use."""
        if self._impl is None and self.impl_path is not None:
            module, _, attr = self.impl_path.partition(":")
            target: Any = importlib.import_module(module)
            for part in attr.split(".") if attr else []:
                target = getattr(target, part)
            self._impl = target
        return self._impl


class Registry(Generic[T]):
    """A named table of `type` string -> (config class, implementation, meta)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def declare(self, name: str, config_cls: type | None = None, *, impl: str, **meta: Any) -> Entry[T]:
        """Add `name` with its implementation at ``"package.module:attr"``, imported on first use."""
        if ":" not in impl:
            raise ValueError(f"{self.kind} {name!r}: impl must read 'package.module:attr'; got {impl!r}")
        return self._add(Entry(name, config_cls, impl_path=impl, meta=meta))

    def register(self, name: str, config_cls: type | None = None, **meta: Any) -> Callable[[T], T]:
        """Decorator that adds `impl` under `name`; fails loudly on duplicates and mismatches."""

        def add(impl: T) -> T:
            self._add(Entry(name, config_cls, meta=meta, _impl=impl))
            return impl

        return add

    def _add(self, entry: Entry[T]) -> Entry[T]:
        name, config_cls = entry.name, entry.config_cls
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice; pick another name")
        if config_cls is not None:
            type_field = getattr(config_cls, "model_fields", {}).get("type")
            if type_field is None or type_field.default != name:
                raise ValueError(
                    f"{self.kind} {name!r}: {config_cls.__name__} must declare `type: Literal[{name!r}] = {name!r}`"
                )
        self._entries[name] = entry
        return entry

    def get(self, name: str, where: str | None = None) -> Entry[T]:
        """The entry for `name`, or a UserError naming the known choices."""
        try:
            return self._entries[name]
        except KeyError:
            place = f" at {where}" if where else ""
            raise UserError(f"unknown {self.kind} {name!r}{place}; choose one of: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def config_classes(self) -> tuple[type, ...]:
        return tuple(e.config_cls for e in self._entries.values() if e.config_cls is not None)

    def __contains__(self, name: Any) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)
