"""The pytest plugin of the conformance suite (registered under ``pytest11``).

Every option and hook lives here, not in a conftest, so that
``pytest --pyargs conformance --conformance-impl=...`` works from any directory. Nothing here
imports TensorFlow: it is imported only when a conformance test runs, so installing this
package never slows down or changes someone else's pytest session.
"""

import json
import os
import sys

import pytest

from conformance import database, profiles, shard
from conformance.api import ImplementationError, resolve_implementation
from conformance.clauses import CLAUSE_IDS, parse_clause_list
from conformance.report import ClauseReport, write_report
from conformance.xfails import XfailsError, read_xfails, same_test

pytest.register_assert_rewrite("conformance.checks")

IMPL_ENV_VAR = "CONFORMANCE_IMPL"
DEFAULT_IMPL = "reference"

profiles.register()


def pytest_addoption(parser):
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
        f"deterministically across machines; falls back to ${shard.SHARD_ENV_VAR}",
    )
    group.addoption(
        "--conformance-db",
        default=None,
        help="Hypothesis example database shared across runs and machines: a directory path "
        f"or a redis:// URL; falls back to ${database.DB_ENV_VAR} (not with ci/triage profiles)",
    )


class ConformanceState:
    """What the plugin knows about this session; one per pytest config."""

    def __init__(self, config):
        self.config = config
        self.impl_spec = (
            config.getoption("conformance_impl") or os.environ.get(IMPL_ENV_VAR) or DEFAULT_IMPL
        )
        self._implementation = None
        clauses_text = config.getoption("conformance_clauses")
        self.selected_clauses = parse_clause_list(clauses_text) if clauses_text else None
        xfails_path = config.getoption("conformance_xfails")
        self.xfails = read_xfails(xfails_path) if xfails_path else None
        self.report = ClauseReport()
        self.worker_fingerprints = {}  # worker id -> {corpus spec name: fingerprint}
        self.has_suite_items = False

    @property
    def implementation(self):
        if self._implementation is None:
            self._implementation = resolve_implementation(self.impl_spec)
        return self._implementation


_STATE_KEY = pytest.StashKey[ConformanceState]()


def get_state(config):
    return config.stash[_STATE_KEY]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "clause(id): the Keras SavedModel contract clause this test checks"
    )
    try:
        state = ConformanceState(config)
    except (ValueError, XfailsError) as exc:
        raise pytest.UsageError(f"conformance: {exc}") from None
    # A name given explicitly is resolved now, so a typo is a usage error before collection;
    # the default is resolved when the first suite test needs it.
    if config.getoption("conformance_impl") or os.environ.get(IMPL_ENV_VAR):
        try:
            state.implementation  # noqa: B018
        except ImplementationError as exc:
            raise pytest.UsageError(f"conformance: {exc}") from None
    config.stash[_STATE_KEY] = state
    config.pluginmanager.register(ConformanceSession(state), "conformance-session")
    shard.configure(config)
    database.configure(config)


def _clause_of(item):
    marker = item.get_closest_marker("clause")
    return marker.args[0] if marker else None


@pytest.fixture(scope="session")
def implementation(pytestconfig):
    """The implementation under test (an ``Implementation``)."""
    return get_state(pytestconfig).implementation


@pytest.fixture(scope="session")
def impl_spec(pytestconfig):
    """The string that names the implementation under test (for reproduction commands)."""
    return get_state(pytestconfig).impl_spec


_RUN_KEY = pytest.StashKey[object]()


@pytest.fixture
def clause(request):
    """The ``ClauseRun`` of this test: wrap each example in ``with clause.example(spec):``."""
    from conformance.cases import ClauseRun

    marker = request.node.get_closest_marker("clause")
    if marker is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses `clause` without a clause marker")
    run = ClauseRun(request, marker.args[0])
    request.node.stash[_RUN_KEY] = run
    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    if call.when == "call" and _RUN_KEY in item.stash:
        item.stash[_RUN_KEY].record()
    yield


class ConformanceSession:
    """The hooks that need the session's state; registered by ``pytest_configure``."""

    def __init__(self, state):
        self.state = state
        self.config = state.config

    def pytest_collection_modifyitems(self, session, config, items):
        state = self.state
        selected, deselected = [], []
        for item in items:
            clause_id = _clause_of(item)
            if clause_id is None:
                selected.append(item)
                continue
            if clause_id not in CLAUSE_IDS:
                raise pytest.UsageError(f"{item.nodeid}: unknown clause id {clause_id!r}")
            if state.selected_clauses is not None and clause_id not in state.selected_clauses:
                deselected.append(item)
                continue
            state.has_suite_items = True
            item.user_properties.append(("conformance_clause", clause_id))
            selected.append(item)
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = selected
        if not state.has_suite_items:
            return
        try:
            impl = state.implementation
        except ImplementationError as exc:
            raise pytest.UsageError(f"conformance: {exc}") from None
        for item in items:
            clause_id = _clause_of(item)
            if clause_id is None:
                continue
            if impl.claims is not None and clause_id not in impl.claims:
                item.add_marker(pytest.mark.skip(reason=f"not claimed: {clause_id}"))
            elif state.xfails is not None:
                reason = state.xfails.match(clause_id, item.nodeid)
                if reason is not None:
                    item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
        if state.xfails is not None:
            # An entry for a clause or test that --conformance-clauses left out is not stale.
            stale = [
                key
                for key in state.xfails.unmatched()
                if not any(key == _clause_of(i) or same_test(key, i.nodeid) for i in deselected)
            ]
            if stale:
                raise pytest.UsageError(
                    "conformance: xfails entries match no collected test: " + ", ".join(stale)
                )

    def pytest_runtest_logreport(self, report):
        # In-process without xdist; on the controller with it (workers forward reports).
        clause_id = dict(report.user_properties).get("conformance_clause")
        if clause_id is not None:
            self.state.report.add(clause_id, report)

    def pytest_sessionfinish(self, session, exitstatus):
        config, state = self.config, self.state
        if hasattr(config, "workerinput"):
            # xdist worker: hand this worker's corpus fingerprints to the controller.
            if state.has_suite_items:
                from conformance import stability

                config.workeroutput["conformance_fingerprints"] = json.dumps(
                    stability.worker_fingerprints(config)
                )
            return
        if state.worker_fingerprints:
            from conformance import stability

            problems = stability.compare_workers(state.worker_fingerprints)
            state.report.add_cross_worker(problems, workers=sorted(state.worker_fingerprints))
            if problems:
                for line in problems:
                    sys.stderr.write(f"SIG-STABLE across xdist workers: {line}\n")
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        report_path = config.getoption("conformance_report")
        if report_path and state.report.has_results():
            write_report(report_path, state, config)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        # xdist controller: collect what each worker fingerprinted.
        payload = getattr(node, "workeroutput", {}).get("conformance_fingerprints")
        if payload:
            self.state.worker_fingerprints[node.workerinput["workerid"]] = json.loads(payload)

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        state = self.state
        if not state.report.has_results():
            return
        terminalreporter.section("Keras SavedModel conformance")
        terminalreporter.write_line(f"implementation: {state.impl_spec}")
        for line in state.report.summary_lines():
            terminalreporter.write_line(line)
        for nodeid in state.report.unexpected_passes():
            terminalreporter.write_line(f"XPASS (expected failure passed): {nodeid}")
