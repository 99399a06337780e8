"""SAVE-ATOMIC and SAVE-CONCURRENT: saves that are killed, saves from several threads."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conformance.expected import fixtures
from conformance.savedmodel import files, fingerprint, tree

# Moments to kill the saving process at, as fractions of one measured save.
KILL_FRACTIONS = (0.0, 0.25, 0.5, 0.8)

_CHILD = r"""
import sys
from conformance.environment import quiet_tensorflow
quiet_tensorflow()
from conformance.api import resolve_implementation
from conformance.expected import fixtures
impl = resolve_implementation(sys.argv[1])
K = fixtures.keras_module(impl.framework)
model = fixtures.small_functional(K, name="new", units=5)
print("saving", flush=True)
impl.save(model, sys.argv[2], overwrite=True)
print("saved", flush=True)
"""


def _variables_of(path):
    return [v.numpy() for v in tree.keras_root(tree.load(path)).objects("variables")]


def _kill_during_save(impl_spec, path, delay):
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, impl_spec, path],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == "saving", f"the saving child did not start (said {line!r})"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.clause("SAVE-ATOMIC")
def test_killed_save_leaves_old_or_new(implementation, impl_spec, clause):
    K = fixtures.keras_module(implementation.framework)
    old_model = fixtures.small_functional(K, name="old", units=3)
    new_model = fixtures.small_functional(K, name="new", units=5)
    probe = clause.new_path("atomic-probe")
    with clause.example({"model": "the new small functional model, saved once to time a save"}):
        started = time.perf_counter()
        implementation.save(new_model, probe)
        save_seconds = time.perf_counter() - started
        new_values = _variables_of(probe)
    for fraction in KILL_FRACTIONS:
        delay = round(fraction * save_seconds, 3)
        with clause.example({"kill_after_seconds": delay, "save_seconds": save_seconds}):
            path = clause.new_path("atomic")
            implementation.save(old_model, path)
            old_digest = files.tree_digest(path)
            old_values = _variables_of(path)
            _kill_during_save(impl_spec, path, delay)
            if not os.path.exists(path):
                # A crash between two renames: the next load must recover the previous model.
                try:
                    implementation.load(path)
                except NotImplementedError:
                    pass
            assert os.path.exists(path), (
                f"killed {delay}s into a save, the path is gone (neither old nor new model)"
            )
            if files.tree_digest(path) == old_digest:
                continue
            try:
                values = _variables_of(path)
            except Exception as exc:
                raise AssertionError(
                    f"killed {delay}s into a save, the path holds a model that does not "
                    f"load: {type(exc).__name__}: {exc}"
                ) from exc
            shapes = [v.shape for v in values]
            assert shapes in ([v.shape for v in old_values], [v.shape for v in new_values]), (
                f"killed {delay}s into a save, the path holds neither model"
            )
            reference = old_values if shapes == [v.shape for v in old_values] else new_values
            for got, want in zip(values, reference):
                np.testing.assert_array_equal(got, want)


THREADED_SAVE_TIMEOUT = 120  # seconds for three small saves (about 1 s each alone)


@pytest.mark.clause("SAVE-CONCURRENT")
def test_threaded_saves_equal_sequential(implementation, clause):
    K = fixtures.keras_module(implementation.framework)
    models = [fixtures.small_functional(K, name=f"m{i}", units=2 + i) for i in range(3)]
    with clause.example({"models": "3 small functional models, 3 threads"}):
        sequential = []
        for model in models:
            path = clause.new_path("sequential")
            implementation.save(model, path)
            sequential.append(path)
        threaded = [clause.new_path("threaded") for _ in models]
        errors = []

        def save(model, path):
            try:
                implementation.save(model, path)
            except Exception as exc:  # reported below, with the model's name
                errors.append(f"{model.name}: {type(exc).__name__}: {exc}")

        # Daemon threads and one deadline: a save that deadlocks fails the clause, it does
        # not hang the run.
        threads = [
            threading.Thread(target=save, args=pair, daemon=True, name=pair[0].name)
            for pair in zip(models, threaded)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + THREADED_SAVE_TIMEOUT
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        stuck = [thread.name for thread in threads if thread.is_alive()]
        assert not stuck, (
            f"saves from threads did not finish in {THREADED_SAVE_TIMEOUT} s (a deadlock?): "
            f"{', '.join(stuck)} still saving"
        )
        assert not errors, f"saves from threads failed: {errors}"
        for model, one, many in zip(models, sequential, threaded):
            _, want = fingerprint.fingerprint(one)
            _, got = fingerprint.fingerprint(many)
            assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True), (
                f"{model.name}: the threaded save's structure differs from the sequential one"
            )
            for a, b in zip(_variables_of(many), _variables_of(one)):
                np.testing.assert_array_equal(a, b)
