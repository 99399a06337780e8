"""``--conformance-db=PATH_OR_URL``: a Hypothesis example database shared by a fleet.

Hypothesis saves each failing example it finds (shrunk) in its example database and replays
those first in every later run that uses the same database. Shared by the machines of a
nightly fleet, a failure one machine found is tried first by all of them, night after night,
until it is fixed. A directory path gives a ``DirectoryBasedExampleDatabase`` (one machine, or
a directory every machine mounts); a ``redis://``, ``rediss://`` or ``unix://`` URL gives
Hypothesis' ``RedisExampleDatabase`` (needs the ``nightly`` extra).

Each implementation under test gets its own part of the database (a subdirectory, a Redis
key prefix): the suite's tests have the same Hypothesis keys whatever the implementation, and
Hypothesis deletes a saved example once it passes, so a run on an implementation without the
bug would otherwise erase another implementation's failure.

The database goes into the Hypothesis profile the suite runs with, before the suite's test
modules are imported: ``@given`` takes its settings when it decorates. Derandomized profiles
(``ci``, ``triage``) use no database by design, so that CI replays exactly the same examples
every run (Hypothesis: ``derandomize=True`` implies ``database=None``); naming a database
with one of them is a usage error, while ``$CONFORMANCE_DB`` is then ignored (the header says
so), so that a fleet machine's environment does not break its CI runs. ``--hypothesis-seed``
also turns the database off, as Hypothesis does for any forced seed.
"""

import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from hypothesis import settings
from hypothesis.errors import InvalidArgument

from conformance.plugin import drawing

DB_ENV_VAR = "CONFORMANCE_DB"
URL_SCHEMES = ("redis", "rediss", "unix")
# Keys of this suite's examples in a Redis that other projects may share.
REDIS_KEY_PREFIX = b"keras-savedmodel-conformance:"


class DatabaseError(ValueError):
    """A database target that cannot be opened or does not fit the chosen profile."""


def redact(target):
    """``target`` with any password in a URL replaced, for messages and report headers."""
    parts = urlsplit(target)
    if parts.password is None:
        return target
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def namespace_of(impl_spec):
    """A directory- and key-safe name for the implementation under test."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", impl_spec)


# The databases this process opened, by target and part. pytest can configure the suite more
# than once in a process: HypoFuzz (``hypothesis fuzz``) collects the tests in its parent,
# then again in each worker it forks, whose test functions (imported in the parent) keep the
# database they were decorated with. It fuzzes only tests whose database equals the profile's,
# and Hypothesis compares two Redis databases by their client's identity: a second client for
# the same URL would leave the worker nothing to fuzz.
_OPENED = {}


def open_database(target, namespace):
    """An ``ExampleDatabase`` for a directory path or a Redis URL, in ``namespace``; the same
    object for the same arguments within a process."""
    key = (target, namespace)
    if key not in _OPENED:
        _OPENED[key] = _open_database(target, namespace)
    return _OPENED[key]


def _open_database(target, namespace):
    scheme, sep, _ = target.partition("://")
    if sep:
        if scheme.lower() not in URL_SCHEMES:
            raise DatabaseError(
                f"--conformance-db={redact(target)!r}: a URL must be one of "
                f"{', '.join(s + '://' for s in URL_SCHEMES)}; anything else is a directory path"
            )
        return _redis_database(target, namespace)
    from hypothesis.database import DirectoryBasedExampleDatabase

    path = Path(target).expanduser()
    if path.exists() and not path.is_dir():
        raise DatabaseError(f"--conformance-db={target!r} exists and is not a directory")
    return DirectoryBasedExampleDatabase(path / namespace)


def _redis_database(url, namespace):
    try:
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError as exc:
        raise DatabaseError(
            f"--conformance-db={redact(url)!r} needs the redis client ({exc}): "
            "pip install 'keras-savedmodel-conformance[nightly]'"
        ) from None
    client = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
    # Fail now, with the URL in the message, rather than in the middle of the first test.
    try:
        client.ping()
    except redis.RedisError as exc:
        raise DatabaseError(
            f"--conformance-db={redact(url)!r}: cannot reach Redis: {exc}"
        ) from None
    prefix = REDIS_KEY_PREFIX + namespace.encode() + b":"

    class ListeningRedisExampleDatabase(RedisExampleDatabase):
        """Hypothesis' Redis database whose change listeners are called.

        Hypothesis (6.170.15) subscribes its listeners to a pub/sub channel but never reads
        the channel, so they are never called; HypoFuzz's dashboard listens for the reports
        its workers save, and stays at what it loaded on start without this thread.
        """

        def _start_listening(self):
            super()._start_listening()
            self._listener_thread = self._pubsub.run_in_thread(sleep_time=0.2, daemon=True)

        def _stop_listening(self):
            self._listener_thread.stop()
            self._listener_thread.join(timeout=5)  # it closes the pub/sub connection itself
            self._pubsub = None

    # Hypothesis publishes every change on one channel, "hypothesis-changes", by default: a
    # channel per part keeps another implementation's (or project's) changes out.
    channel = (prefix + b"changes").decode()
    return ListeningRedisExampleDatabase(client, key_prefix=prefix, listener_channel=channel)


def attach(database, profile_name):
    """Re-register ``profile_name`` (and the active profile, if derived) with ``database``.

    Hypothesis' own ``pytest_configure`` may run before or after this one: re-registering the
    named profile covers the later ``load_profile`` by name, re-registering the active one
    covers a profile it already loaded or derived (``-with-verbose-verbosity``).
    """
    names = {profile_name}
    current = settings.get_current_profile_name()
    if current.startswith(profile_name):
        # Only a profile derived from the chosen one: under CI=true Hypothesis has already
        # loaded its own derandomized "ci", which the chosen profile is about to replace.
        names.add(current)
    for name in sorted(names):
        try:
            base = settings.get_profile(name)
        except InvalidArgument:
            continue  # an unknown --hypothesis-profile: Hypothesis reports it itself
        if base.derandomize:
            raise DatabaseError(
                f"the Hypothesis profile {name!r} is derandomized and uses no example database "
                "(CI replays the same examples every run); use the nightly or dev profile "
                "with --conformance-db"
            )
        settings.register_profile(name, parent=base, database=database)


class DatabaseHeader:
    def __init__(self, line):
        self.line = line

    def pytest_report_header(self, config):
        return self.line


def configure(config, impl_spec):
    """Open and attach the database named by ``--conformance-db`` or ``$CONFORMANCE_DB``,
    in the part of the implementation ``impl_spec`` names."""
    option = config.getoption("conformance_db")
    target = option or os.environ.get(DB_ENV_VAR)
    if not target:
        return
    profile_name = drawing.suite_profile_name(config)
    try:
        if not option and _is_derandomized(profile_name):
            line = f"ignored under the derandomized profile {profile_name!r}"
        else:
            namespace = namespace_of(impl_spec)
            attach(open_database(target, namespace), profile_name)
            line = f"{redact(target)}, part {namespace!r} (profile {profile_name!r})"
    except DatabaseError as exc:
        raise pytest.UsageError(f"conformance: {exc}") from None
    config.pluginmanager.register(
        DatabaseHeader(f"conformance example database: {line}"), "conformance-database"
    )


def _is_derandomized(profile_name):
    try:
        return settings.get_profile(profile_name).derandomize
    except InvalidArgument:
        return False
