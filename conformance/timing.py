"""Where a clause test's time goes: the implementation's save and load, the suite's build of
the model and its reading of the files; the rest of the test is drawing and the checks.

The plugin opens a stopwatch per test (``start`` / ``stop``); the sites that do the work say
which phase it is (``phase``). Only the outermost phase counts, so a save that reads its own
files back, or a load that builds a model, is the implementation's time, counted once.
"""

import contextlib
import functools
import time

PHASES = ("save", "load", "build", "read")
# The implementation's methods and the phase each is timed as (save_spec: a worker's save).
TIMED_METHODS = {"save": "save", "save_spec": "save", "load": "load"}

_current = None  # {phase: seconds} of the running test, or None outside one
_depth = 0


def start():
    global _current, _depth
    _current, _depth = dict.fromkeys(PHASES, 0.0), 0


def stop():
    """The running test's ``{phase: seconds}``; the stopwatch is off afterwards."""
    global _current
    seconds, _current = _current, None
    return seconds or dict.fromkeys(PHASES, 0.0)


@contextlib.contextmanager
def phase(name):
    global _depth
    if _current is None or _depth:
        yield
        return
    _depth += 1
    started = time.perf_counter()
    try:
        yield
    finally:
        _depth -= 1
        if _current is not None:
            _current[name] += time.perf_counter() - started


def instrument(implementation):
    """Time the implementation's ``save`` and ``load`` as phases (wrappers set on the instance;
    an instance that takes no attributes is left as it is, untimed)."""
    for method, name in TIMED_METHODS.items():
        bound = getattr(implementation, method, None)
        if bound is None or getattr(bound, "__conformance_timed__", False):
            continue

        def timed(*args, _bound=bound, _name=name, **kwargs):
            with phase(_name):
                return _bound(*args, **kwargs)

        functools.update_wrapper(timed, bound)
        timed.__conformance_timed__ = True
        try:
            setattr(implementation, method, timed)
        except (AttributeError, TypeError):
            return implementation
    return implementation
