"""Drawn examples, the saves they need, and what a failing example reports.

A *case* is one drawn spec built with the implementation's framework and saved once by the
implementation; every clause that only reads the files shares it (one save per drawn example,
not one per clause). The read-only clause tests draw from the same strategy with the same
seed, so in a worker they walk the same specs and hit this cache.
"""

import atexit
import contextlib
import json
import logging
import os
import re
import shlex
import shutil
import tempfile
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field

from hypothesis import strategies as st

from conformance.report import EXAMPLES_PROPERTY, FAILURE_PROPERTY

CACHE_SIZE = 32


@st.composite
def examples(draw, **knobs):
    """Strategy of ``(spec, data)``: a drawn model spec and inputs for it."""
    import strategies

    spec = draw(strategies.model_specs(**knobs))
    return spec, draw(strategies.input_data(spec))


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
    model: object
    path: str
    loaded: object  # tf.saved_model.load of path
    save_messages: list = field(default_factory=list)  # warnings and logs of the save

    @property
    def framework(self):
        from conformance.originals import framework_of

        return framework_of(self.model)

    def warned_about(self, layer_name):
        """Whether a message of the save names the layer (a skipped layer must be named)."""
        pattern = re.compile(rf"(?<![\w.]){re.escape(layer_name)}(?![\w])")
        return any(pattern.search(message) for message in self.save_messages)


class CaseCache:
    """Saved cases of one worker, least recently used dropped first."""

    def __init__(self, root, size=CACHE_SIZE):
        self.root = root
        self.size = size
        self._cases = OrderedDict()
        self._counter = 0

    def get(self, implementation, spec):
        key = (implementation.name, spec.to_json())
        case = self._cases.get(key)
        if case is None:
            case = self._make(implementation, spec)
            self._cases[key] = case
            while len(self._cases) > self.size:
                self._cases.popitem(last=False)
        self._cases.move_to_end(key)
        return case

    def new_path(self, label="model"):
        self._counter += 1
        return os.path.join(self.root, f"{label}-{self._counter}")

    def _make(self, implementation, spec):
        import strategies
        from conformance import inspect

        model = strategies.build_model(spec, framework=implementation.framework)
        path = self.new_path("case")
        with captured_messages() as messages:
            implementation.save(model, path)
        return Case(
            spec=spec, model=model, path=path, loaded=inspect.load(path), save_messages=messages
        )


_CACHE = []


def case_cache(tmp_root=None):
    """This process's case cache (created on first use, in a temporary directory)."""
    if not _CACHE:
        root = tmp_root or tempfile.mkdtemp(prefix="conformance-cases-")
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _CACHE.append(CaseCache(root))
    return _CACHE[0]


def reproduce_command(request, clause_id):
    """A one-line command that reruns this test on this implementation, with this profile."""
    from conformance import profiles
    from conformance.plugin import get_state

    state = get_state(request.config)
    parts = [
        "pytest",
        "--pyargs",
        "conformance",
        f"--conformance-impl={state.impl_spec}",
        f"--conformance-clauses={clause_id}",
        "-p",
        "no:xdist",
        f"--hypothesis-profile={profiles.current_profile_name()}",
        "-k",
        request.node.name.split("[", 1)[0],
    ]
    seed = request.config.getoption("hypothesis_seed", default=None)
    if seed is not None:
        parts.append(f"--hypothesis-seed={seed}")
    return shlex.join(parts)


class ClauseRun:
    """Counts a property's examples and turns a failing example into a full report."""

    def __init__(self, request, clause_id):
        self.request = request
        self.clause_id = clause_id
        self.examples = 0

    @contextlib.contextmanager
    def example(self, spec, **details):
        """Wrap one example's checks: on failure, name the clause, the spec and the command."""
        self.examples += 1
        try:
            yield
        except AssertionError as exc:
            raise AssertionError(self._describe(exc, spec, details)) from None
        except Exception as exc:
            raise AssertionError(
                self._describe(f"{type(exc).__name__}: {exc}", spec, details)
            ) from exc

    def _describe(self, error, spec, details):
        spec_json = spec.to_json() if hasattr(spec, "to_json") else json.dumps(spec)
        command = reproduce_command(self.request, self.clause_id)
        failure = {"spec": spec_json, "command": command, "message": str(error)[:2000]}
        failure.update({k: str(v) for k, v in details.items()})
        props = self.request.node.user_properties
        # Hypothesis replays the shrunk example last: keep only the latest failure.
        props[:] = [p for p in props if p[0] != FAILURE_PROPERTY]
        props.append((FAILURE_PROPERTY, failure))
        extra = "".join(f"\n  {k}: {v}" for k, v in details.items())
        return f"[{self.clause_id}] {error}\n  spec: {spec_json}{extra}\n  reproduce: {command}"

    def record(self):
        """Attach the example count to the test's report (called before it is made)."""
        self.request.node.user_properties.append((EXAMPLES_PROPERTY, self.examples))
