"""The pytest plugin of the conformance suite (registered under ``pytest11``).

Every option and hook lives in this package, not in a conftest, so that
``pytest --pyargs conformance --conformance-impl=...`` works from any directory. It is loaded
in every pytest session of an environment where the package is installed, so it acts only
in sessions that run the suite (``state.runs_suite``): elsewhere it registers its options and
marker and nothing else — no Hypothesis profile, no TensorFlow import, no warning filter.

The pieces: ``state`` (options, session state), ``drawing`` (profiles, example streams),
``example`` (one clause example, its cases and its failure report), ``report``, ``shard``,
``database``, ``stability`` (SIG-STABLE across workers). Hooks that need the session's state
live on ``ConformanceSession``, which receives it; nothing outside this package imports it
except the clause modules, for the drawing decorators.
"""

import json
import sys

import pytest

from conformance import timing
from conformance.api import ImplementationError
from conformance.contract import CLAUSE_IDS, NEEDS_KERAS_API
from conformance.expectations import XfailsError, same_test
from conformance.plugin import database, drawing, fuzz, shard, state
from conformance.plugin.report import (
    FAILURE_PROPERTY,
    FINGERPRINT_PROPERTY,
    TIMING_PROPERTY,
    compact_failure,
    write_report,
)

# Deprecation warnings of the libraries under the suite (TensorFlow, Keras, converters) on
# import and in every trace: hundreds of lines in a user's run, none of them the
# implementation's. The adapter's own module keeps its warnings (see pytest_configure).
_SUITE_WARNING_FILTERS = (
    "ignore::DeprecationWarning",
    "ignore::PendingDeprecationWarning",
)


def pytest_addoption(parser):
    state.add_options(parser)


@pytest.hookimpl(tryfirst=True)  # before Hypothesis' own, which loads --hypothesis-profile
def pytest_configure(config):
    config.addinivalue_line(
        "markers", "clause(id): the Keras SavedModel contract clause this test checks"
    )
    if not state.runs_suite(config):
        return
    drawing.register()
    drawing.pin_local_constants()
    fuzz.configure()
    for line in _SUITE_WARNING_FILTERS:
        config.addinivalue_line("filterwarnings", line)
    adapter = (config.getoption("conformance_impl") or "").partition(":")[0].partition(".")[0]
    if adapter and adapter.isidentifier():
        for category in ("DeprecationWarning", "PendingDeprecationWarning"):
            config.addinivalue_line("filterwarnings", f"default::{category}:{adapter}.*")
    try:
        session_state = state.ConformanceState(config)
    except (ValueError, XfailsError) as exc:
        raise pytest.UsageError(f"conformance: {exc}") from None
    # A name given explicitly is resolved now, so a typo is a usage error before collection;
    # the default is resolved when the first suite test needs it.
    if session_state.impl_explicit:
        try:
            session_state.implementation  # noqa: B018
        except ImplementationError as exc:
            raise pytest.UsageError(f"conformance: {exc}") from None
    drawing.zoo_for(config.getoption("conformance_zoo"))
    config.stash[_STATE_KEY] = session_state
    config.pluginmanager.register(ConformanceSession(session_state), "conformance-session")
    shard.configure(config)
    database.configure(config, session_state.impl_spec)
    # After the database is attached to the profiles; --hypothesis-profile, which
    # Hypothesis' own pytest_configure loads after this one, still wins.
    drawing.load_default_profile()


_STATE_KEY = pytest.StashKey[state.ConformanceState]()
_RUN_KEY = pytest.StashKey[object]()
_TIMING_KEY = pytest.StashKey[dict]()


def _state(config):
    if _STATE_KEY not in config.stash:
        raise pytest.UsageError(
            "the conformance suite's fixtures are used in a session that does not run the "
            "suite: run it as pytest --pyargs conformance (or give a --conformance-* option)"
        )
    return config.stash[_STATE_KEY]


@pytest.fixture(scope="session")
def implementation(pytestconfig):
    """The implementation under test (an ``Implementation``)."""
    return _state(pytestconfig).implementation


@pytest.fixture(scope="session")
def impl_spec(pytestconfig):
    """The string that names the implementation under test (for reproduction commands)."""
    return _state(pytestconfig).impl_spec


@pytest.fixture
def clause(request):
    """The ``ClauseRun`` of this test: wrap each example in ``with clause.example(spec):``."""
    from conformance.plugin.example import ClauseRun

    st = _state(request.config)
    marker = request.node.get_closest_marker("clause")
    if marker is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses `clause` without a clause marker")
    run = ClauseRun(
        request,
        marker.args[0],
        implementation=st.implementation,
        impl_spec=st.impl_spec,
        profile=drawing.suite_profile_name(request.config),
        seed=request.config.getoption("hypothesis_seed", default=None),
    )
    request.node.stash[_RUN_KEY] = run
    return run


def _clause_of(item):
    marker = item.get_closest_marker("clause")
    return marker.args[0] if marker else None


class ConformanceSession:
    """The hooks of a session that runs the suite; it receives the session's state."""

    def __init__(self, session_state):
        self.state = session_state
        self.config = session_state.config
        self._quiet = False

    # -- collection ---------------------------------------------------------------------

    def pytest_collectstart(self, collector):
        # TensorFlow prints its start-up lines once, when first imported: import it quietly
        # before the first clause module, wherever the suite is run from.
        path = getattr(collector, "path", None)
        if self._quiet or path is None:
            return
        if path == state.CLAUSES_DIR or state.CLAUSES_DIR in path.parents:
            from conformance.environment import quiet_tensorflow

            quiet_tensorflow()
            self._quiet = True

    def pytest_collection_modifyitems(self, session, config, items):
        st = self.state
        selected, deselected = [], []
        for item in items:
            clause_id = _clause_of(item)
            if clause_id is None:
                selected.append(item)
                continue
            if clause_id not in CLAUSE_IDS:
                raise pytest.UsageError(f"{item.nodeid}: unknown clause id {clause_id!r}")
            if st.selected_clauses is not None and clause_id not in st.selected_clauses:
                deselected.append(item)
                continue
            st.has_suite_items = True
            item.user_properties.append(("conformance_clause", clause_id))
            selected.append(item)
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = selected
        if not st.has_suite_items:
            return
        try:
            impl = st.implementation
        except ImplementationError as exc:
            raise pytest.UsageError(f"conformance: {exc}") from None
        drawing.draw_for(getattr(impl, "supports", None))
        not_claimed = getattr(impl, "not_claimed", None) or {}
        for item in items:
            clause_id = _clause_of(item)
            if clause_id is None:
                continue
            if impl.claims is not None and clause_id not in impl.claims:
                reason = not_claimed.get(clause_id)
                text = f"not claimed: {clause_id}" + (f": {reason}" if reason else "")
                item.add_marker(pytest.mark.skip(reason=text))
            elif st.xfails is not None:
                reason = st.xfails.match(clause_id, item.nodeid)
                if reason is not None:
                    item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
        if st.xfails is not None:
            # An entry for a clause or test that --conformance-clauses left out is not stale.
            stale = [
                key
                for key in st.xfails.unmatched()
                if not any(key == _clause_of(i) or same_test(key, i.nodeid) for i in deselected)
            ]
            if stale:
                message = "conformance: xfails entries match no collected test: " + ", ".join(
                    stale
                )
                if hasattr(config, "workerinput"):
                    # A UsageError on an xdist worker ends in INTERNALERROR on the controller:
                    # run nothing here and let the controller end the session with it.
                    st.usage_error = message
                    config.workeroutput["conformance_usage_error"] = message
                    config.hook.pytest_deselected(items=list(items))
                    items[:] = []
                    return
                raise pytest.UsageError(message)

    # -- running ------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session):
        # xdist controller: a worker's usage error (a stale xfails entry) ends the session as
        # in-process: pytest prints "ERROR: conformance: ..." and exits 4. Raised here, after
        # xdist's loop saw every worker down, pytest's main handles it as a usage error; from
        # an xdist hook (pytest.exit in pytest_testnodedown) it was an interruption.
        result = yield
        if self.state.usage_error and not hasattr(self.config, "workerinput"):
            raise pytest.UsageError(self.state.usage_error)
        return result

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item):
        # Where the test's time goes, by phase: kept with its report (report.TIMING_PROPERTY).
        if _RUN_KEY not in item.stash:
            return (yield)
        timing.start()
        try:
            self._refuse_plain_savedmodel(item)
            return (yield)
        finally:
            item.stash[_TIMING_KEY] = timing.stop()

    def _refuse_plain_savedmodel(self, item):
        # A clause that reads keras_api cannot check anything on files without it: say so
        # once, on the first corpus spec, instead of shrinking every property's failure.
        clause_id = _clause_of(item)
        if clause_id not in NEEDS_KERAS_API:
            return
        from conformance import corpus
        from conformance.plugin.example import keras_format_probe

        run = item.stash[_RUN_KEY]
        specs = corpus.supported_specs(run.implementation)
        if not specs:
            return
        name, spec = specs[0]
        reason = keras_format_probe(run.implementation, spec)
        if reason:
            with run.example(spec, corpus_spec=name):
                raise AssertionError(
                    f"{reason}; {clause_id} reads the files through keras_api, so its "
                    "properties were not run"
                )

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        run = item.stash.get(_RUN_KEY, None)
        if call.when == "call" and run is not None:
            run.record()
            seconds = item.stash.get(_TIMING_KEY, None)
            if seconds is not None:
                item.user_properties.append(
                    (TIMING_PROPERTY, dict(seconds, total=call.duration))
                )
        outcome = yield
        report = outcome.get_result()
        if (
            run is not None
            and report.when == "call"
            and report.failed
            and call.excinfo is not None
            and not any(name == FAILURE_PROPERTY for name, _ in report.user_properties)
        ):
            # Failed outside any example block: still a message and a command in the report.
            report.user_properties.append(run.describe_error(call.excinfo))

    @pytest.hookimpl(trylast=True)  # after JUnit XML took the full output
    def pytest_runtest_logreport(self, report):
        # In-process without xdist; on the controller with it (workers forward reports).
        props = report.user_properties
        clause_id = dict(props).get("conformance_clause")
        if clause_id is None:
            return
        self.state.report.add(clause_id, report)
        if report.when == "call":
            for name, value in props:
                if name == FINGERPRINT_PROPERTY:
                    spec_name, digest = value
                    self.state.recorded_fingerprints[spec_name] = digest
        if report.failed and self.config.get_verbosity() < 1:
            compact = compact_failure(report)
            if compact is not None:
                report.longrepr = compact

    # -- the end ------------------------------------------------------------------------

    def pytest_sessionfinish(self, session, exitstatus):
        config, st = self.config, self.state
        if hasattr(config, "workerinput"):
            # xdist worker: hand this worker's corpus fingerprints to the controller.
            if st.has_suite_items and not st.usage_error:
                from conformance.plugin import stability

                fingerprints = stability.worker_fingerprints(
                    st.implementation, st.selected_clauses, st.recorded_fingerprints
                )
                config.workeroutput["conformance_fingerprints"] = json.dumps(fingerprints)
            return
        if st.worker_fingerprints:
            from conformance.plugin import stability

            problems = stability.compare_workers(st.worker_fingerprints)
            st.report.add_cross_worker(
                problems,
                workers=sorted(st.worker_fingerprints),
                compared=stability.compared_specs(st.worker_fingerprints),
            )
            if problems:
                for line in problems:
                    sys.stderr.write(f"SIG-STABLE across xdist workers: {line}\n")
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if st.report_path and st.report.has_results():
            write_report(st.report_path, st, config)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        # xdist controller: collect what each worker fingerprinted, and a worker's usage
        # error (raised once every worker is down: see pytest_runtestloop).
        usage_error = getattr(node, "workeroutput", {}).get("conformance_usage_error")
        if usage_error:
            self.state.usage_error = usage_error
            return
        payload = getattr(node, "workeroutput", {}).get("conformance_fingerprints")
        if payload:
            self.state.worker_fingerprints[node.workerinput["workerid"]] = json.loads(payload)

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        st = self.state
        if not st.report.has_results():
            return
        terminalreporter.section("Keras SavedModel conformance")
        terminalreporter.write_line(f"implementation: {st.impl_spec}")
        for line in st.report.summary_lines():
            terminalreporter.write_line(line)
        for nodeid in st.report.unexpected_passes():
            terminalreporter.write_line(f"XPASS (expected failure passed): {nodeid}")
        if st.report_path:
            terminalreporter.write_line(f"report written to {st.report_path}")

