"""``--conformance-shard=I/N``: this machine runs the I-th of N deterministic shares of the items.

Items are sorted by node id and dealt round-robin, so N machines given 1/N .. N/N run every
item exactly once, with shares differing in size by at most one. Node ids are the same on
every machine that collects the same suite (the suite builds no test ids from random draws),
so the machines need not talk to each other. Under xdist each worker collects and shards
alike, so ``-n`` and sharding combine.
"""

import os
import re

import pytest

SHARD_ENV_VAR = "CONFORMANCE_SHARD"
_SHARD_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class ShardError(ValueError):
    """A ``--conformance-shard`` value that is not ``I/N`` with ``1 <= I <= N``."""


def parse_shard(text):
    """``"I/N"`` -> ``(I, N)``; ``I`` counts from 1."""
    match = _SHARD_RE.match(text or "")
    if not match:
        raise ShardError(
            f"--conformance-shard={text!r}: expected I/N, e.g. 1/4 for the first of four shards"
        )
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 1 <= index <= count:
        raise ShardError(
            f"--conformance-shard={text!r}: need 1 <= I <= N (shards count from 1), "
            f"got {index}/{count}"
        )
    return index, count


def in_shard(nodeids, index, count):
    """The node ids of shard ``index`` of ``count`` among ``nodeids`` (as a set)."""
    ordered = sorted(set(nodeids))
    return set(ordered[index - 1 :: count])


class ShardPlugin:
    """Deselects the items of the other shards, after every other selection.

    ``trylast``: the suite's own ``pytest_collection_modifyitems`` first sees every item, so
    that an xfails entry for a test that runs on another machine is not taken as stale.
    """

    def __init__(self, index, count):
        self.index, self.count = index, count

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config, items):
        keep = in_shard((item.nodeid for item in items), self.index, self.count)
        deselected = [item for item in items if item.nodeid not in keep]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if item.nodeid in keep]

    def pytest_report_header(self, config):
        return f"conformance shard: {self.index}/{self.count}"


def configure(config):
    """Register the shard plugin when ``--conformance-shard`` (or its env var) is given."""
    text = config.getoption("conformance_shard") or os.environ.get(SHARD_ENV_VAR)
    if not text:
        return
    try:
        index, count = parse_shard(text)
    except ShardError as exc:
        raise pytest.UsageError(f"conformance: {exc}") from None
    config.pluginmanager.register(ShardPlugin(index, count), "conformance-shard")
