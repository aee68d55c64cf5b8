"""Search statements built once per query shape and reused with other values (a bounded LRU cache).

Building a search's SQL with SQLAlchemy Core cost more than PostgreSQL took to run it (a directory search:
about half of its time in the server). A search's shape is everything its SQL's structure depends on: the
searched types, each criterion's parameter, modifier and the plan tag of each value (`sql.criteria_plan`),
the sort, the page size, whether a paging position is given and its width, the environment, base URL,
dialect and allowed types. The statement is built once per shape with its values as named bind parameters
(`v0`, `v1`, …) and later searches of that shape only bind theirs. Searches under a `Restriction` (a
member's compartment, whose SQL embeds its own values) and criteria without a plan are built each time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class StatementCache:
    """At most `size` statements, least recently used dropped first; safe to share between threads."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: Hashable, statement: Any) -> None:
        with self._lock:
            self._items[key] = statement
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
