"""A pool's allocations in order of expected end (then id), kept as they come and go.

A national pool runs thousands of jobs at once and one starts or ends every few milliseconds of a replay: in one
sorted list each insertion and removal shifts half the list. Here the order is a list of sorted chunks of at most
CHUNK entries (as `sortedcontainers` keeps its lists), so a change shifts one chunk and finding it is a bisect over
the chunks' last ends. Readers walk the chunks in order (EASY's "how many must end before this fits" stops early).
A run that ends when expected is the first to end: it leaves by moving a mark (`head`) past it, readers start after
the mark, and the first chunk drops its ended entries in one cut only when it splits or is searched for another
(deleting at a list's front shifted the whole chunk at every finish).
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")
CHUNK = 512  # entries a chunk holds before it splits in two


class EndOrder(Generic[T]):
    """Items keyed by (end, id), ascending; ids are unique."""

    __slots__ = ("_chunk", "_ends", "_head", "_ids", "_items", "_last", "_size")

    def __init__(self, ranked: list[tuple[float, str, T]], chunk: int = CHUNK) -> None:
        """`ranked`: the items to start with, already in (end, id) order."""
        self._chunk = chunk
        self._ends: list[list[float]] = []
        self._ids: list[list[str]] = []
        self._items: list[list[T]] = []
        self._last: list[float] = []  # each chunk's last end
        self._head = 0  # entries at the first chunk's front that are gone (removed, not yet cut)
        for lo in range(0, len(ranked), chunk):
            part = ranked[lo:lo + chunk]
            self._ends.append([e for e, _, _ in part])
            self._ids.append([k for _, k, _ in part])
            self._items.append([x for _, _, x in part])
            self._last.append(part[-1][0])
        self._size = len(ranked)

    def __len__(self) -> int:
        return self._size

    def _cut(self) -> None:
        """Drop the first chunk's gone entries (before splitting it, or searching it for one to remove)."""
        h = self._head
        if h:
            self._head = 0
            del self._ends[0][:h], self._ids[0][:h], self._items[0][:h]

    @property
    def head(self) -> int:
        """How many entries at the front of the first of `chunks()` are gone: readers start after them."""
        return self._head

    def chunks(self) -> list[list[T]]:
        """The items in order, chunk by chunk, the first chunk's first `head` gone (the caller reads them and must
        not change them). Not cut here: a pool's order is read every cycle, and each cut shifted the chunk."""
        return self._items

    def item_at(self, k: int) -> T:
        """The k-th item in order (0-based)."""
        k += self._head
        for chunk in self._items:
            if k < len(chunk):
                return chunk[k]
            k -= len(chunk)
        raise IndexError(k)

    def first(self, k: int) -> list[T]:
        """The first k items in order."""
        out: list[T] = []
        for chunk in self._live_chunks():
            if len(out) + len(chunk) >= k:
                out.extend(chunk[:k - len(out)])
                break
            out.extend(chunk)
        return out

    def _live_chunks(self) -> list[list[T]]:
        """The chunks with the gone entries left out (a copy of the first chunk's rest when there are any)."""
        if not self._head:
            return self._items
        return [self._items[0][self._head:], *self._items[1:]]

    def add(self, end: float, key: str, item: T) -> None:
        if not self._items:
            self._ends.append([end])
            self._ids.append([key])
            self._items.append([item])
            self._last.append(end)
            self._size = 1
            return
        c = min(_first_at_least(self._last, end), len(self._last) - 1)
        ends, ids = self._ends[c], self._ids[c]
        i = _first_at_least(ends, end, self._head if c == 0 else 0)  # among the first chunk's entries not gone
        while True:  # ties on the end in id order, across a chunk's edge too
            while i < len(ends) and ends[i] == end and ids[i] < key:
                i += 1
            if i < len(ends) or c + 1 == len(self._ends) or self._ends[c + 1][0] != end or self._ids[c + 1][0] > key:
                break
            c, i = c + 1, 0
            ends, ids = self._ends[c], self._ids[c]
        ends.insert(i, end)
        ids.insert(i, key)
        self._items[c].insert(i, item)
        self._last[c] = ends[-1]
        self._size += 1
        if len(ends) > 2 * self._chunk:
            self._split(c)

    def _split(self, c: int) -> None:
        if c == 0:
            self._cut()
        half = len(self._ends[c]) // 2
        self._ends.insert(c + 1, self._ends[c][half:])
        self._ids.insert(c + 1, self._ids[c][half:])
        self._items.insert(c + 1, self._items[c][half:])
        del self._ends[c][half:], self._ids[c][half:], self._items[c][half:]
        self._last.insert(c + 1, self._ends[c + 1][-1])
        self._last[c] = self._ends[c][-1]

    def remove(self, end: float, key: str) -> None:
        """Remove the item with this end and id (it must be held). A run ending when expected is the first to end:
        that one is found without a search and leaves in O(1)."""
        self._size -= 1
        h = self._head
        ids = self._ids[0]
        if ids[h] == key:
            if h + 1 < len(ids):
                self._head = h + 1
                return
            self._head = 0
            del self._ends[0], self._ids[0], self._items[0], self._last[0]
            return
        self._cut()
        c, i, ends, ids = self._find(end, key)
        del ends[i], ids[i], self._items[c][i]
        if ends:
            self._last[c] = ends[-1]
        else:
            del self._ends[c], self._ids[c], self._items[c], self._last[c]

    def _find(self, end: float, key: str) -> tuple[int, int, list[float], list[str]]:
        """(chunk, position, the chunk's ends and ids) of the held item with this end and id."""
        c = _first_at_least(self._last, end)
        ends, ids = self._ends[c], self._ids[c]
        i = _first_at_least(ends, end)
        while True:
            if i == len(ids):
                c, i = c + 1, 0
                ends, ids = self._ends[c], self._ids[c]
            if ids[i] == key:
                return c, i, ends, ids
            i += 1


def _first_at_least(ends: list[float], end: float, lo: int = 0) -> int:
    """`bisect_left` over floats from `lo`, written out: compiled, it compares C doubles (the library's compares
    objects)."""
    hi = len(ends)
    while lo < hi:
        mid = (lo + hi) // 2
        if ends[mid] < end:
            lo = mid + 1
        else:
            hi = mid
    return lo
