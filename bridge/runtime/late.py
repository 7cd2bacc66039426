"""``Late``: a value supplied after the objects that refer to it are built; the one way a
composition root closes a construction cycle (``bridge/runtime/embedded.py`` says which)."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Late(Generic[T]):
    """A value set exactly once, then read: what a callable built before it refers to.

    Reading it before it is set, or setting it twice, is a wiring bug: both raise."""

    __slots__ = ("_set", "_value", "_what")

    def __init__(self, what: str) -> None:
        self._what = what
        self._set = False

    def set(self, value: T) -> None:
        if self._set:
            raise RuntimeError(f"{self._what} is already wired")
        self._value = value
        self._set = True

    def get(self) -> T:
        if not self._set:
            raise RuntimeError(f"{self._what} is used before it is wired")
        return self._value
