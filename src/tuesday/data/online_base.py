"""What every online store backend shares: the records and the ``Store`` protocols
(:mod:`tuesday.data.online` opens the workspace's backend)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Record:
    """Feature vectors of one entity, by target time (ISO string, or '' for no horizon)."""

    entity: str
    origin: str
    names: tuple[str, ...]
    vectors: dict[str, list[float | None]]

    def vector(self, target: str) -> list[float | None] | None:
        return self.vectors.get(target)



@dataclass(frozen=True)
class Space:
    """A keyspace of event state (one per event source) and how it was built.

    Attributes:
        name: The source name.
        schema: Hash of the feature definitions the records were built for.
        built_version: Table version the last rebuild read (-1: none); events of
            versions up to it are already in the records.
        built_as_of: The as-of of that rebuild (or of the first event).
    """

    name: str
    schema: str
    built_version: int
    built_as_of: str


Updater = Callable[[Space | None, dict[str, bytes]], tuple[Space | None, dict[str, bytes]]]


class Store(Protocol):
    """Where event state lives: one blob per (space, key)."""

    def space(self, name: str) -> Space | None:
        """The space's metadata, or None when it was never built."""

    def get(self, space: str, key: str) -> bytes | None:
        """One record (one point query)."""

    def get_many(self, space: str, keys: Sequence[str]) -> list[bytes | None]:
        """Many records, in the order of ``keys``."""

    def update(self, space: str, keys: Sequence[str], fn: Updater) -> None:
        """Atomically: read the space and the records of ``keys``, call ``fn``, write the
        blobs (and the space, if not None) it returns."""

    def replace(self, space: Space, items: Iterable[tuple[str, bytes]],
                still_valid: Callable[[], bool]) -> bool:
        """Atomically replace every record of the space, if ``still_valid()`` holds
        inside the transaction; False (nothing written) otherwise."""

    def close(self) -> None:
        """Release the connection."""


class OnlineStore(Store, Protocol):
    """A whole online store: the event state (``Store``) and the feature vectors."""

    def lookup(self, model: str, entity: str) -> Record | None:
        """One entity's record of materialized vectors, None when there is none."""

    def entities(self, model: str) -> list[str]:
        """Every entity with materialized vectors of ``model``, sorted."""

    def put_features(self, rows: Sequence[tuple[str, str, str, str]]) -> None:
        """Write (model, entity, origin, payload JSON) records, all at once."""

    def version(self) -> object:
        """A value that changes whenever another process writes to the store (what a
        record cache compares to know it must forget)."""


