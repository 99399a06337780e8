"""Expected failures as data: one clause id or test id per line, ``# reason`` after it.

    CALL-TRAINING                      # our Dropout ignores training=True
    test_losses.py::test_activity_and_call_losses      # tracked upstream

An entry that matches no collected test is an error (a stale entry hides nothing quietly);
an expected failure that passes is reported at the end of the run.
"""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from conformance.contract import CLAUSE_IDS


class XfailsError(ValueError):
    """A malformed xfails file."""


@dataclass
class Xfails:
    path: str
    entries: dict  # clause id or test id -> reason
    matched: set = field(default_factory=set)

    def match(self, clause_id, nodeid):
        """The reason ``nodeid`` (checking ``clause_id``) is expected to fail, or None."""
        for key, reason in self.entries.items():
            if key == clause_id or same_test(key, nodeid):
                self.matched.add(key)
                return f"{reason} (from {self.path})"
        return None

    def unmatched(self):
        return sorted(set(self.entries) - self.matched)


def same_test(key, nodeid):
    # Test ids differ by rootdir (a checkout, site-packages), so a suffix at a path boundary
    # matches; an entry without "[...]" covers every parametrization of the test. The clause
    # modules moved from conformance/ into conformance/clauses/: entries written before still
    # name them by their old path.
    keys = {key, _OLD_CLAUSE_PATH.sub(r"\1conformance/clauses/", key)}
    for candidate in (nodeid, nodeid.split("[", 1)[0]):
        for k in keys:
            if candidate == k or candidate.endswith("/" + k):
                return True
    return False


_OLD_CLAUSE_PATH = re.compile(r"^(.*/)?conformance/(?=test_[^/]*\.py::)")

EXPECTATIONS_DIR = Path(__file__).parent


def expectations_path(value):
    """``value`` itself when it is a file; else a built-in adapter's expectations file.

    ``--conformance-xfails=tf_keras`` reads ``conformance/expectations/tf_keras.txt``, the
    versioned expected failures of that built-in implementation.
    """
    if os.path.exists(value) or os.sep in str(value) or "/" in str(value):
        return value
    candidate = EXPECTATIONS_DIR / f"{value}.txt"
    return str(candidate) if candidate.exists() else value


def read_xfails(path):
    path = expectations_path(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise XfailsError(f"cannot read xfails file {path}: {exc}") from None
    entries = {}
    for number, line in enumerate(lines, start=1):
        text, _, reason = line.partition("#")
        key = text.strip()
        if not key:
            continue
        reason = reason.strip()
        if not reason:
            raise XfailsError(f"{path}:{number}: entry {key!r} needs a reason after '#'")
        if "::" not in key and key not in CLAUSE_IDS:
            raise XfailsError(
                f"{path}:{number}: {key!r} is neither a clause id nor a test id (path::name)"
            )
        if key in entries:
            raise XfailsError(f"{path}:{number}: duplicate entry {key!r}")
        entries[key] = reason
    return Xfails(path=str(path), entries=entries)
