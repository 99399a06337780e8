"""A small least-recently-used cache: the suite keeps saved cases, conversions and controls."""

from collections import OrderedDict


class LRUCache:
    """At most ``size`` entries, least recently used dropped first (``on_drop`` sees it)."""

    def __init__(self, size, on_drop=None):
        self.size = size
        self.on_drop = on_drop
        self._entries = OrderedDict()

    def get(self, key, make):
        """The entry of ``key``, made by ``make()`` on a miss."""
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = make()
        self._entries[key] = value
        while len(self._entries) > self.size:
            _, dropped = self._entries.popitem(last=False)
            if self.on_drop is not None:
                self.on_drop(dropped)
        return value

    def __len__(self):
        return len(self._entries)
