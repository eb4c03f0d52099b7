"""One registry mechanism for every extension point.

A registry maps a `type` string to a (config class, implementation) pair declared side by side
in the same file::

    MODELS = Registry("model")

    class MLPConfig(Section):
        type: Literal["mlp"] = "mlp"
        ...

    @MODELS.register("mlp", MLPConfig)
    class MLP(nn.Module): ...

Registering a name twice, or a config class whose `type` default disagrees with the name, fails
at import. Looking up an unknown name raises a `UserError` listing the known names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, TypeVar

from modelworks.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    config_cls: type | None
    impl: T


class Registry(Generic[T]):
    """A named table of `type` string -> (config class, implementation)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, config_cls: type | None = None) -> Callable[[T], T]:
        """Decorator that adds `impl` under `name`; fails loudly on duplicates and mismatches."""

        def add(impl: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice; pick another name")
            if config_cls is not None:
                field = getattr(config_cls, "model_fields", {}).get("type")
                if field is None or field.default != name:
                    raise ValueError(
                        f"{self.kind} {name!r}: {config_cls.__name__} must declare "
                        f"`type: Literal[{name!r}] = {name!r}`"
                    )
            self._entries[name] = Entry(name, config_cls, impl)
            return impl

        return add

    def get(self, name: str, where: str | None = None) -> Entry[T]:
        """The entry for `name`, or a UserError naming the known choices."""
        try:
            return self._entries[name]
        except KeyError:
            place = f" at {where}" if where else ""
            raise UserError(
                f"unknown {self.kind} {name!r}{place}; choose one of: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def config_classes(self) -> tuple[type, ...]:
        return tuple(e.config_cls for e in self._entries.values() if e.config_cls is not None)

    def __contains__(self, name: Any) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self._entries.values())
