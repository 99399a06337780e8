"""Running one clause example: the saved cases examples share, and what a failure reports.

A *case* is one drawn spec built with the implementation's framework and saved once by the
implementation; every clause that only reads the files shares it (one save per drawn example,
not one per clause). The read-only clause tests draw from the same strategy with the same
seed (``plugin.drawing``), so in a worker they walk the same specs and hit this cache.

Clause modules reach all of this through the ``clause`` fixture (a ``ClauseRun``): they import
nothing from the plugin but the drawing decorators.
"""

import atexit
import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field

from hypothesis.errors import HypothesisException

from conformance import timing
from conformance.cache import LRUCache
from conformance.command import reproduce_script_command, shell, suite_command
from conformance.plugin.report import (
    CONSUMER_PROPERTY,
    EXAMPLES_PROPERTY,
    FAILURE_PROPERTY,
    FINGERPRINT_PROPERTY,
    HOSTILE_PROPERTY,
    LEGACY_PROPERTY,
)
from conformance.reproducers.beside import reproducer_path
from conformance.reproducers.source import FIXTURE_CLAUSES, refusal

CACHE_SIZE = 32

# TensorFlow's runtime errors open with these lines, and the cause comes after them
_TF_PREAMBLE = re.compile(
    r"^(Graph execution error:|Detected at node .*|<stack traces unavailable>|\s*)$"
)


def error_text(exc):
    """``Type: message`` with the cause first: TensorFlow's runtime errors begin with "Graph
    execution error:" and a stack, and a one-line summary of those would say nothing."""
    lines = str(exc).splitlines()
    if lines and lines[0].strip() == "Graph execution error:":
        lines = [line for line in lines if not _TF_PREAMBLE.match(line)]
    return f"{type(exc).__name__}: " + "\n".join(lines)

@contextlib.contextmanager
def captured_messages():
    """Collect warnings and log records (any logger) issued inside the block."""
    messages = []

    class Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield messages
        finally:
            root.removeHandler(handler)
            messages.extend(str(w.message) for w in caught)


@dataclass
class Case:
    spec: object
    framework: str  # what the model was built with: the implementation's framework
    model: object
    path: str
    loaded: object  # tf.saved_model.load of path
    save_messages: list = field(default_factory=list)  # warnings and logs of the save

    def warned_about(self, layer_name):
        """Whether a message of the save names the layer (a skipped layer must be named)."""
        pattern = re.compile(rf"(?<![\w.]){re.escape(layer_name)}(?![\w])")
        return any(pattern.search(message) for message in self.save_messages)


class CaseCache:
    """Saved cases of one worker, least recently used dropped first."""

    def __init__(self, root, size=CACHE_SIZE):
        self.root = root
        self._cases = LRUCache(size)
        self._counter = 0

    def get(self, implementation, spec):
        key = (implementation.name, spec.to_json())
        return self._cases.get(key, lambda: self._make(implementation, spec))

    def new_path(self, label="model"):
        self._counter += 1
        return os.path.join(self.root, f"{label}-{self._counter}")

    def _make(self, implementation, spec):
        import strategies
        from conformance.savedmodel import tree

        path = self.new_path("case")
        # An implementation that cannot take a live model (one in another process) is
        # handed the spec and returns a stand-in original.
        save_spec = getattr(implementation, "save_spec", None)
        with captured_messages() as messages:
            if save_spec is not None:
                model = save_spec(spec, path)
            else:
                with timing.phase("build"):
                    model = strategies.build_model(spec, framework=implementation.framework)
                implementation.save(model, path)
        return Case(
            spec=spec,
            framework=implementation.framework,
            model=model,
            path=path,
            loaded=tree.load(path),
            save_messages=messages,
        )


_CACHE = []


_PROBES = {}


def keras_format_probe(implementation, spec):
    """Why the implementation's files are not the Keras format (the saved root carries no
    ``keras_api``), from its save of ``spec``; None when they are, or when the save itself
    fails (the clauses report that). One save per implementation and process, shared with
    the clauses through the case cache."""
    if implementation.name not in _PROBES:
        from conformance.savedmodel import tree

        try:
            case = case_cache().get(implementation, spec)
        except Exception:
            reason = None
        else:
            has_api = getattr(case.loaded, "keras_api", None) is not None
            reason = (
                None if has_api else f"the saved root has no keras_api: {tree.NOT_KERAS_FORMAT}"
            )
        _PROBES[implementation.name] = reason
    return _PROBES[implementation.name]


def case_cache(tmp_root=None):
    """This process's case cache (created on first use, in a temporary directory)."""
    if not _CACHE:
        root = tmp_root or tempfile.mkdtemp(prefix="conformance-cases-")
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _CACHE.append(CaseCache(root))
    return _CACHE[0]


class ClauseRun:
    """One clause test: its cases, its example count, and a full report of a failing example.

    The plugin makes one per test (the ``clause`` fixture) and gives it what it needs: the
    implementation and the string naming it, the active profile, the forced seed if any.
    """

    def __init__(self, request, clause_id, *, implementation, impl_spec, profile, seed=None):
        self.request = request
        self.clause_id = clause_id
        self.implementation = implementation
        self.impl_spec = impl_spec
        self.profile = profile
        self.seed = seed
        self.examples = 0

    # -- what a clause test uses --------------------------------------------------------

    def case(self, spec):
        """``spec`` built and saved by the implementation (shared by the clauses, cached)."""
        return case_cache().get(self.implementation, spec)

    def build(self, spec):
        """``spec`` built with the implementation's framework, a fresh model of the test's own
        (timed as the suite's build, not the implementation's)."""
        import strategies

        with timing.phase("build"):
            return strategies.build_model(spec, framework=self.implementation.framework)

    def new_path(self, label="model"):
        """A fresh path, nothing there yet, for a save of the test's own."""
        return case_cache().new_path(label)

    def save(self, model, label="model", **options):
        """Save ``model`` with the implementation into a fresh path: ``(path, messages)``,
        the warnings and log records of the save."""
        path = self.new_path(label)
        with captured_messages() as messages:
            self.implementation.save(model, path, **options)
        return path, messages

    @contextlib.contextmanager
    def example(self, spec, **details):
        """Wrap one example's checks: on failure, name the clause, the spec and the command."""
        self.examples += 1
        try:
            yield
        except HypothesisException:
            raise  # Hypothesis' own control flow (assume, a frozen data object): not a failure
        except AssertionError as exc:
            raise AssertionError(self._describe(exc, spec, details)) from None
        except Exception as exc:
            if getattr(exc, "suite_limit", False):
                # A fixed model of the suite's process that an implementation in another
                # process cannot be sent: nothing was checked, and nothing failed.
                import pytest

                pytest.skip(f"not checked out of process: {exc}")
            where = self._raised_by(exc)
            raise AssertionError(
                self._describe(f"{where}{error_text(exc)}", spec, details)
            ) from exc

    def _raised_by(self, exc):
        """``"the implementation's save raised "`` when the error came out of its save or
        load, so that a user tells their own error from one of the suite's checks."""
        if getattr(exc, "suite_limit", False):
            return ""  # raised on the suite's side of an out-of-process implementation
        tb = exc.__traceback__
        while tb is not None:
            frame = tb.tb_frame
            if frame.f_code.co_name in ("save", "load") and frame.f_locals.get(
                "self"
            ) is self.implementation:
                return f"the implementation's {frame.f_code.co_name} raised "
            tb = tb.tb_next
        return ""

    def record_consumer(self, tally):
        """Attach a consumer test's tally (``consumers.Tally``) to its report."""
        self._properties().append((CONSUMER_PROPERTY, tally.as_property()))

    def record_legacy(self, outcome):
        """Attach a LOAD-LEGACY file's outcome (``{"writer", "case", "how"}``; the dict may
        still change during the test: the report reads it once the test is over)."""
        self._properties().append((LEGACY_PROPERTY, outcome))

    def record_hostile(self, tally):
        """Attach a LOAD-HOSTILE test's counts per outcome (the dict may still grow)."""
        self._properties().append((HOSTILE_PROPERTY, tally))

    @property
    def fingerprints_compared_by_the_controller(self):
        """Whether SIG-STABLE's check across processes is the xdist controller's comparison
        of its workers' fingerprints (two workers or more), not a test of this process."""
        from conformance.plugin.stability import across_processes_on_the_controller

        config = getattr(self.request, "config", None)  # none on a bare request object
        return config is not None and across_processes_on_the_controller(config)

    def record_fingerprint(self, name, digest):
        """Attach a corpus spec's fingerprint: the workers' values are compared at the end."""
        self._properties().append((FINGERPRINT_PROPERTY, (name, digest)))

    # -- the report ---------------------------------------------------------------------

    def reproduce_command(self):
        """A one-line command that reruns this test on this implementation, with this profile."""
        return shell(
            suite_command(
                self.impl_spec,
                clauses=self.clause_id,
                profile=self.profile,
                seed=self.seed,
                select=self.request.node.name.split("[", 1)[0],
            )
        )

    def _properties(self):
        return self.request.node.user_properties

    def describe_error(self, excinfo):
        """The failure entry of an error raised outside any ``example`` block (a fixed model's
        setup, say): the clause, the exception in one line, the command."""
        message = error_text(excinfo.value)
        self._describe(message, {"model": "the test's own fixed models"}, {})
        return self._properties()[-1]

    def _describe(self, error, spec, details):
        spec_json = spec.to_json() if hasattr(spec, "to_json") else json.dumps(spec)
        command = self.reproduce_command()
        config = getattr(self.request, "config", None)  # none on a bare request object
        script = reproduce_script_command(
            self.clause_id,
            self.request.node.name.split("[", 1)[0],
            config.getoption("conformance_report", default=None) if config else None,
        )
        failure = {
            "spec": spec_json, "command": command, "script": script, "message": str(error)[:2000]
        }
        failure.update({k: str(v) for k, v in details.items()})
        props = self._properties()
        # Hypothesis replays the shrunk example last: keep only the latest failure.
        props[:] = [p for p in props if p[0] != FAILURE_PROPERTY]
        props.append((FAILURE_PROPERTY, failure))
        extra = "".join(f"\n  {k}: {v}" for k, v in details.items())
        report = config.getoption("conformance_report", default=None) if config else None
        beside = ""
        rebuilt = hasattr(spec, "to_json") or self.clause_id in FIXTURE_CLAUSES
        if report and rebuilt and refusal(None, self.clause_id) is None:
            path = reproducer_path(report, self.clause_id, self.request.node.nodeid)
            failure["script_file"] = f"{path} (written beside the report when the run ends)"
            beside = f"\n  script file: {failure['script_file']}"
        return (
            f"[{self.clause_id}] {error}\n  spec: {spec_json}{extra}\n  reproduce: {command}"
            f"\n  script: {script}{beside}"
        )

    def record(self):
        """Attach the example count to the test's report (called before it is made)."""
        self._properties().append((EXAMPLES_PROPERTY, self.examples))
