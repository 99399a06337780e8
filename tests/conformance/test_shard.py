"""``--conformance-shard=I/N``: shards partition the collected tests, the same way every time.

The runs are in-process (``inline_run``) on a small generated test file: sharding does not
depend on what the tests are, and the suite itself takes seconds just to collect.
"""

import pytest

from conformance.plugin.shard import ShardError, in_shard, parse_shard

pytest_plugins = ["pytester"]

TESTS = """
import pytest

@pytest.mark.parametrize("i", range(23))
def test_param(i):
    pass

def test_alone():
    pass

class TestGroup:
    def test_one(self):
        pass

    def test_two(self):
        pass
"""


def run_ids(pytester, *args):
    """Node ids of the tests that ran, and of those deselected."""
    reprec = pytester.inline_run("-p", "no:cacheprovider", "-p", "no:randomly", *args)
    passed, skipped, failed = reprec.listoutcomes()
    assert not failed and not skipped
    deselected = [
        item.nodeid for call in reprec.getcalls("pytest_deselected") for item in call.items
    ]
    return [report.nodeid for report in passed], deselected


@pytest.fixture
def test_file(pytester):
    pytester.makepyfile(test_many=TESTS)
    return pytester


@pytest.mark.parametrize("count", [1, 3, 4])
def test_shards_partition_the_items(test_file, count):
    everything, _ = run_ids(test_file)
    assert len(everything) == 26
    shards = []
    for index in range(1, count + 1):
        ran, deselected = run_ids(test_file, f"--conformance-shard={index}/{count}")
        assert sorted(ran + deselected) == sorted(everything)
        shards.append(set(ran))
    union = set().union(*shards)
    assert union == set(everything)
    assert sum(len(s) for s in shards) == len(everything)  # pairwise disjoint
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1


def test_shard_is_deterministic_and_order_independent(test_file):
    first, _ = run_ids(test_file, "--conformance-shard=2/3")
    again, _ = run_ids(test_file, "--conformance-shard=2/3")
    assert first == again
    # Item order does not choose the shard: reversed ids give the same shares.
    ids = [f"test_many.py::test_param[{i}]" for i in range(23)]
    assert in_shard(ids, 2, 3) == in_shard(list(reversed(ids)), 2, 3)


def test_env_var_is_the_fallback(test_file, monkeypatch):
    by_option, _ = run_ids(test_file, "--conformance-shard=3/4")
    monkeypatch.setenv("CONFORMANCE_SHARD", "3/4")
    # The environment variable applies in sessions that run the suite (an option says so).
    by_env, _ = run_ids(test_file, "--conformance-impl=reference")
    assert by_env == by_option
    outside, _ = run_ids(test_file)
    assert len(outside) > len(by_env), "a session that does not run the suite was sharded"


@pytest.mark.parametrize("text", ["", "3", "0/3", "4/3", "1/0", "a/b", "1/2/3", "-1/2"])
def test_malformed_values_are_rejected(text):
    with pytest.raises(ShardError, match="conformance-shard"):
        parse_shard(text)


def test_malformed_option_is_a_usage_error(pytester):
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--conformance-shard=5/4")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--conformance-shard='5/4': need 1 <= I <= N*"])
    assert "Traceback" not in result.stderr.str()


def test_parse_accepts_spaces():
    assert parse_shard(" 2 / 5 ") == (2, 5)
