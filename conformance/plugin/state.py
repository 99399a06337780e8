"""The suite's command-line options, whether a session runs the suite, and its state."""

import os
import time
from pathlib import Path

from conformance import timing
from conformance.api import resolve_implementation
from conformance.contract import parse_clause_list
from conformance.expectations import read_xfails
from conformance.plugin.database import DB_ENV_VAR
from conformance.plugin.report import ClauseReport
from conformance.plugin.shard import SHARD_ENV_VAR

IMPL_ENV_VAR = "CONFORMANCE_IMPL"
DEFAULT_IMPL = "reference"

PACKAGE_DIR = Path(__file__).resolve().parent.parent
CLAUSES_DIR = PACKAGE_DIR / "clauses"
OPTIONS = (
    "conformance_impl",
    "conformance_clauses",
    "conformance_xfails",
    "conformance_report",
    "conformance_shard",
    "conformance_db",
    "conformance_zoo",
    "conformance_worker_timeout",
)
# The worker timeout reaches the implementation (and the suite's subprocesses) through this.
WORKER_TIMEOUT_ENV_VAR = "CONFORMANCE_WORKER_TIMEOUT"


def add_options(parser):
    group = parser.getgroup("conformance", "Keras SavedModel conformance suite")
    group.addoption(
        "--conformance-impl",
        default=None,
        help="implementation under test: a built-in name (reference) or package.module:Attr "
        f"(a class or an instance); falls back to ${IMPL_ENV_VAR}, then '{DEFAULT_IMPL}'",
    )
    group.addoption(
        "--conformance-clauses",
        default=None,
        help="run only these clause ids (comma-separated)",
    )
    group.addoption(
        "--conformance-xfails",
        default=None,
        help="file of expected failures: a clause id or test id per line, '# reason' after it",
    )
    group.addoption(
        "--conformance-report",
        default=None,
        help="write a per-clause JSON report to this path (a .md path writes Markdown)",
    )
    group.addoption(
        "--conformance-shard",
        default=None,
        help="run only shard I of N (I/N, counting from 1) of the collected tests, split "
        f"deterministically across machines; falls back to ${SHARD_ENV_VAR}",
    )
    group.addoption(
        "--conformance-db",
        default=None,
        help="Hypothesis example database shared across runs and machines: a directory path "
        f"or a redis:// URL; falls back to ${DB_ENV_VAR} (not with ci/triage profiles)",
    )
    group.addoption(
        "--conformance-zoo",
        default=None,
        choices=("first", "all", "none"),
        help="real architectures (keras.applications, conformance/corpus/zoo.json) as explicit "
        "examples of CALL-INFERENCE, VARS-EXACT, LAYERS-TREE and LOAD-REVIVE: the first "
        "(cheapest) model, all of them, or none; default all under nightly, else first",
    )
    group.addoption(
        "--conformance-worker-timeout",
        default=None,
        type=_seconds,
        help="seconds an out-of-process implementation's worker (--conformance-impl="
        "python:PYTHON:TARGET) may take to answer one request before it is killed and the "
        f"example fails; falls back to ${WORKER_TIMEOUT_ENV_VAR}, then 300",
    )


def _seconds(text):
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the timeout must be positive")
    return value


def runs_suite(config):
    """Whether this session runs the suite: a ``--conformance-*`` option is given, or an
    argument names the package (``--pyargs conformance...``) or a path in or above its
    checkout. Other sessions of the environment are left exactly as they are."""
    if any(config.getoption(name, default=None) for name in OPTIONS):
        return True
    pyargs = config.getoption("pyargs", default=False)
    here = Path(config.invocation_params.dir)
    installed = "site-packages" in PACKAGE_DIR.parts
    for arg in config.args:
        target = str(arg).split("::", 1)[0]
        if pyargs and (target == "conformance" or target.startswith("conformance.")):
            return True
        path = (here / target).resolve()
        if path == PACKAGE_DIR or PACKAGE_DIR in path.parents:
            return True
        if not installed and path in PACKAGE_DIR.parents:
            return True
    return False


class ConformanceState:
    """What the plugin knows about a session that runs the suite; one per pytest config."""

    def __init__(self, config):
        self.config = config
        self.started = time.time()
        self.impl_spec = (
            config.getoption("conformance_impl") or os.environ.get(IMPL_ENV_VAR) or DEFAULT_IMPL
        )
        self.impl_explicit = bool(
            config.getoption("conformance_impl") or os.environ.get(IMPL_ENV_VAR)
        )
        self._implementation = None
        timeout = config.getoption("conformance_worker_timeout", default=None)
        if timeout is not None:
            os.environ[WORKER_TIMEOUT_ENV_VAR] = repr(timeout)
        clauses_text = config.getoption("conformance_clauses")
        self.selected_clauses = parse_clause_list(clauses_text) if clauses_text else None
        xfails_path = config.getoption("conformance_xfails")
        self.xfails = read_xfails(xfails_path) if xfails_path else None
        self.report_path = config.getoption("conformance_report")
        self.report = ClauseReport()
        self.recorded_fingerprints = {}  # corpus spec name -> digest, this process's tests
        self.worker_fingerprints = {}  # worker id -> {corpus spec name: fingerprint}
        self.has_suite_items = False
        self.usage_error: str | None = None  # an xdist worker's, reported by the controller

    @property
    def implementation(self):
        if self._implementation is None:
            from conformance.environment import quiet_imports

            # An adapter module beside the user's tests (pytest's rootdir) imports as written,
            # and quietly when it imports TensorFlow itself.
            with quiet_imports():
                implementation = resolve_implementation(
                    self.impl_spec, search_path=[self.config.rootpath]
                )
            self._implementation = timing.instrument(implementation)
        return self._implementation
