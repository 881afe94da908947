"""Label sequences that grow by one label in constant time (docs/DECODING.md, "Label
histories and batching").

A search extends each hypothesis by one label at a time and looks its label history up in
the history cache. Tuples would make both steps cost O(length) (a copy, a hash), so decoding
time would grow with the square of the number of labels. ``Chain`` is a persistent list: an
append shares everything before it. ``Labels`` chains are interned: the same sequence is
always the same object, so hashing and comparing one is O(1) (identity).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator


class Chain:
    """An immutable sequence of ints: ``append`` returns a longer one in O(1)."""

    __slots__ = ("__weakref__", "last", "length", "parent")

    def __init__(self, parent: Chain | None = None, last: int = -1) -> None:
        self.parent = parent
        self.last = last
        self.length = 0 if parent is None else parent.length + 1

    def append(self, value: int) -> Chain:
        """This sequence followed by ``value``."""
        return Chain(self, value)

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int]:
        values = []
        node = self
        while node.parent is not None:
            values.append(node.last)
            node = node.parent
        return reversed(values)

    def __getitem__(self, index: int | slice) -> int | Chain:
        """``[-1]``: the last value; ``[:-1]``: the sequence without it (both O(1))."""
        if self.parent is None:
            raise IndexError("empty label sequence")
        if index == -1:
            return self.last
        if index == slice(None, -1, None):
            return self.parent
        raise TypeError("a label sequence supports only [-1] and [:-1]")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self)})"


_INTERNED: weakref.WeakValueDictionary[tuple[int, int], Labels] = weakref.WeakValueDictionary()


class Labels(Chain):
    """An interned label sequence: equal sequences are one object (compared by identity).

    A child is keyed by its parent's ``id`` and the label; the child holds its parent, so a
    key's parent is alive as long as the entry is.
    """

    __slots__ = ()

    def append(self, value: int) -> Labels:
        """This label sequence followed by label ``value`` (the one object for it)."""
        key = (id(self), value)
        child = _INTERNED.get(key)
        if child is None:
            child = Labels(self, value)
            _INTERNED[key] = child
        return child


NO_LABELS = Labels()
NO_FRAMES = Chain()
