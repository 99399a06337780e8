"""SAVE-ATOMIC and SAVE-CONCURRENT: saves that are killed or fail at every file-system
operation, saves from several threads."""

import errno
import json
import os
import shutil
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


# -- a fault at every file-system operation of a save ----------------------------------------
#
# FaultInjector wraps, for the saving thread only, the Python-visible file-system calls:
# os/io/builtins (open for writing, rename, fsync, mkdir, unlink, rmdir, symlink; shutil's
# rmtree and copies go through these) and TensorFlow's Python file_io (gfile: create_dir,
# atomic_write_string_to_file, rename, delete, GFile opened for writing). TensorFlow's C++
# kernels (the SaveV2/MergeV2Checkpoints ops writing ``variables/``) write through C++ and
# are invisible to it: a fault or a kill "inside" them is covered by the fault or kill at the
# next visible operation, which finds their files already on disk.

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class _Kill(BaseException):
    """Stands for a SIGKILL: nothing after it runs (FaultInjector snapshots the disk first)."""


class FaultInjector:
    """Count the save's operations (``fault_at=None``), or make the ``fault_at``-th one
    (from 1), or the first one ``match`` accepts, raise ``OSError(error)``, or, with
    ``kill=True``, copy the parent directory as it is at that moment to ``snapshot`` (what
    a SIGKILL there would leave on disk) and abort; ``kill="exit"`` dies there for real."""

    def __init__(
        self, fault_at=None, error=errno.EIO, kill=False, snapshot=None, root=None, match=None
    ):
        self.fault_at, self.error, self.kill = fault_at, error, kill
        self.snapshot, self.root = snapshot, root
        self.match = match  # or fault at the first operation with match(kind, path) true
        self.operations = []  # (kind, path) of each visible operation, in order
        self.injected = None
        self._thread = threading.get_ident()
        self._depth = 0  # an operation inside another (gfile over os) counts once
        self._saved = []

    def _hook(self, owner, name, kind, applies=lambda *a, **k: True):
        original = getattr(owner, name)

        def hooked(*args, **kwargs):
            if threading.get_ident() != self._thread or self._depth or not applies(*args, **kwargs):
                return original(*args, **kwargs)
            path = _path_of(args)
            self.operations.append((kind, path))
            if self.injected is None and (
                len(self.operations) == self.fault_at
                or (self.match is not None and self.match(kind, path))
            ):
                self.injected = (kind, path)
                if self.kill == "exit":
                    os._exit(137)  # a real death, in a child process
                if self.kill:
                    self._copy_disk()
                    raise _Kill(f"killed at {kind} {path}")
                raise OSError(self.error, f"{os.strerror(self.error)} (injected)", path)
            self._depth += 1
            try:
                return original(*args, **kwargs)
            finally:
                self._depth -= 1

        self._saved.append((owner, name, original))
        setattr(owner, name, hooked)

    def _copy_disk(self):
        self._depth += 1
        try:
            shutil.copytree(self.root, self.snapshot, symlinks=True)
        finally:
            self._depth -= 1

    def __enter__(self):
        import builtins
        import io

        def writes(file, mode="r", *args, **kwargs):
            return isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+")

        for owner in (builtins, io):
            self._hook(owner, "open", "open-write", writes)
        self._hook(os, "open", "open-write", lambda p, flags, *a, **k: flags & _WRITE_FLAGS)
        for name, kind in (
            ("rename", "rename"),
            ("replace", "rename"),
            ("fsync", "fsync"),
            ("fdatasync", "fsync"),
            ("mkdir", "mkdir"),
            ("unlink", "unlink"),
            ("remove", "unlink"),
            ("rmdir", "rmdir"),
            ("symlink", "symlink"),
            ("link", "link"),
        ):
            if hasattr(os, name):
                self._hook(os, name, kind)
        self._hook_gfile()
        return self

    def _hook_gfile(self):
        try:
            from tensorflow.python.lib.io import file_io
        except ImportError:
            return
        for name, kind in (
            ("recursive_create_dir_v2", "gfile-mkdir"),
            ("create_dir_v2", "gfile-mkdir"),
            ("atomic_write_string_to_file", "gfile-write"),
            ("write_string_to_file", "gfile-write"),
            ("rename_v2", "gfile-rename"),
            ("delete_file_v2", "gfile-unlink"),
            ("delete_recursively_v2", "gfile-rmtree"),
            ("copy_v2", "gfile-write"),
        ):
            self._hook(file_io, name, kind)
        self._hook(
            file_io.FileIO,
            "__init__",
            "gfile-open-write",
            lambda self_, name, mode="r": any(c in mode for c in "wa+"),
        )

    def __exit__(self, *exc):
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        return False

    def counts(self):
        tally = {}
        for kind, _path in self.operations:
            tally[kind] = tally.get(kind, 0) + 1
        return tally


def _path_of(args):
    """The path an operation acts on: its first path argument, or an fd's file."""
    for arg in args[:2]:
        if isinstance(arg, (str, bytes, os.PathLike)):
            return os.fsdecode(arg)
    if args and isinstance(args[0], int):
        try:
            return os.readlink(f"/proc/self/fd/{args[0]}")
        except OSError:
            pass
    return "?"


def _relative_files(path):
    return {
        os.path.relpath(os.path.join(directory, name), path)
        for directory, _dirs, names in os.walk(path)
        for name in names
    }


def _beside(root):
    return sorted(os.listdir(root))


def _check_old_or_new(path, old_digest, new_values, new_files, what):
    """The path holds the previous model byte for byte, or a loadable copy of the new one;
    returns which ("old" or "new")."""
    assert os.path.exists(path), f"{what}: the path is gone (neither old nor new model)"
    if files.tree_digest(path) == old_digest:
        return "old"
    try:
        values = _variables_of(path)
    except Exception as exc:
        raise AssertionError(
            f"{what}: the path holds neither the previous model (its files changed) nor a "
            f"new one that loads: {type(exc).__name__}: {exc}"
        ) from exc
    assert _relative_files(path) == new_files, (
        f"{what}: the path holds a model whose files are not the complete new model's: "
        f"{sorted(_relative_files(path) ^ new_files)} differ"
    )
    assert [v.shape for v in values] == [v.shape for v in new_values], (
        f"{what}: the path holds neither the previous model nor the new one"
    )
    for got, want in zip(values, new_values):
        np.testing.assert_array_equal(got, want, err_msg=what)
    return "new"


@pytest.mark.clause("SAVE-ATOMIC")
def test_fault_at_every_operation_leaves_old_or_new(implementation, clause):
    """Overwrite a model with a fault at the k-th visible file-system operation, for every k:
    an OSError(EIO) there, or a kill there (the disk as it is at that moment, copied aside,
    stands for what a SIGKILL leaves). Afterwards the path holds the previous model intact
    or the complete new one; a save that raised leaves no temporary files; after a kill,
    the next load finds a whole model and the next save cleans up."""
    K = fixtures.keras_module(implementation.framework)
    old_model = fixtures.small_functional(K, name="old", units=3)
    new_model = fixtures.small_functional(K, name="new", units=5)
    previous = clause.new_path("faults-previous")
    implementation.save(old_model, previous)
    old_digest = files.tree_digest(previous)

    def fresh(tag):
        root = clause.new_path(tag)
        os.makedirs(root)
        shutil.copytree(previous, os.path.join(root, "model"), symlinks=True)
        return root, os.path.join(root, "model")

    with clause.example({"model": "the new small functional model over the old, counted"}):
        root, path = fresh("faults-count")
        with FaultInjector() as counter:
            implementation.save(new_model, path, overwrite=True)
        new_values = _variables_of(path)
        new_files = _relative_files(path)
        operations = counter.operations
        assert operations, "no file-system operation of the save was visible"
    injected = {"raise": 0, "kill": 0}
    outcomes = {}
    for k in range(1, len(operations) + 1):
        kind, where = operations[k - 1]
        where = where.replace(root, "<dir>")
        what = f"EIO at operation {k} of {len(operations)} ({kind} {where})"
        with clause.example({"fault": what}):
            root_k, path_k = fresh("faults-raise")
            raised = None
            with FaultInjector(fault_at=k) as injector:
                try:
                    implementation.save(new_model, path_k, overwrite=True)
                except Exception as exc:  # the fault, or the implementation's error for it
                    raised = exc
            if injector.injected is None:
                continue  # this save had fewer operations than the counted one
            injected["raise"] += 1
            state = _check_old_or_new(path_k, old_digest, new_values, new_files, what)
            outcomes[what] = state
            if raised is None:
                assert state == "new", f"{what}: the save returned but the model is the old one"
            if raised is not None or _beside(root_k) != ["model"]:
                if raised is None:
                    # A fault in the cleanup after the swap: the next save must tidy up.
                    implementation.save(new_model, path_k, overwrite=True)
                assert _beside(root_k) == ["model"], (
                    f"{what}: the failed save left temporary files: {_beside(root_k)}"
                )
        what = f"kill at operation {k} of {len(operations)} ({kind} {where})"
        with clause.example({"fault": what}):
            root_k, path_k = fresh("faults-kill")
            disk = clause.new_path("faults-killed")
            with FaultInjector(fault_at=k, kill=True, snapshot=disk, root=root_k) as injector:
                try:
                    implementation.save(new_model, path_k, overwrite=True)
                except _Kill:
                    pass
            if injector.injected is None:
                continue
            injected["kill"] += 1
            path_k = os.path.join(disk, "model")
            if not os.path.exists(path_k):
                # Killed between two renames: the next load must recover the previous model.
                try:
                    implementation.load(path_k)
                except NotImplementedError:
                    pass
            _check_old_or_new(path_k, old_digest, new_values, new_files, what)
            if _beside(disk) != ["model"]:
                implementation.save(new_model, path_k, overwrite=True)
            assert _beside(disk) == ["model"], (
                f"{what}: the next save left the dead save's files: {_beside(disk)}"
            )
    figures = {
        "operations_per_save": len(operations),
        "by_kind": counter.counts(),
        "faults_injected": injected,
    }
    clause.request.node.user_properties.append(("conformance_save_faults", figures))
    print(f"SAVE-ATOMIC faults: {json.dumps(figures)}")


# Two processes overwrite one path at once, each with its own model, a few times; then each
# saves its model alone to a path of its own, to compare with.
_RACER = r"""
import sys
from conformance.environment import quiet_tensorflow
quiet_tensorflow()
from conformance.api import resolve_implementation
from conformance.expected import fixtures
impl = resolve_implementation(sys.argv[1])
shared, own, units, rounds = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
K = fixtures.keras_module(impl.framework)
model = fixtures.small_functional(K, name=f"racer{units}", units=units)
print("ready", flush=True)
sys.stdin.readline()
failures = 0
for _ in range(rounds):
    try:
        impl.save(model, shared, overwrite=True)
    except Exception as exc:
        failures += 1
        print(f"lost: {type(exc).__name__}: {exc}", flush=True)
impl.save(model, own)
print(f"done {failures}", flush=True)
"""

RACE_ROUNDS = 3
RACE_TIMEOUT = 240


@pytest.mark.clause("SAVE-ATOMIC")
def test_two_processes_saving_to_one_path_leave_one_whole(implementation, impl_spec, clause):
    shared = clause.new_path("race-shared")
    own = [clause.new_path(f"race-own-{units}") for units in (3, 4)]
    with clause.example({"models": "two small functional models (3, 4 units), 2 processes"}):
        racers = [
            subprocess.Popen(
                [sys.executable, "-c", _RACER, impl_spec, shared, path, str(units)]
                + [str(RACE_ROUNDS)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for path, units in zip(own, (3, 4))
        ]
        try:
            for racer in racers:
                line = racer.stdout.readline()
                assert line.strip() == "ready", f"a racer did not start: {racer.stderr.read()}"
            for racer in racers:  # both start saving together
                racer.stdin.write("go\n")
                racer.stdin.flush()
            outputs = [racer.communicate(timeout=RACE_TIMEOUT) for racer in racers]
        finally:
            for racer in racers:
                if racer.poll() is None:
                    racer.kill()
                    racer.wait()
        for racer, (stdout, stderr) in zip(racers, outputs):
            assert racer.returncode == 0 and "done" in stdout, (
                f"a racing save crashed (rc {racer.returncode}): {stderr[-2000:]}"
            )
            for line in stdout.splitlines():  # a loser's error must say where it failed
                assert not line.startswith("lost:") or shared in line, (
                    f"a racing save failed without naming the path: {line}"
                )
        values = _variables_of(shared)
        shapes = [v.shape for v in values]
        candidates = [_variables_of(path) for path in own]
        matching = [i for i, c in enumerate(candidates) if [v.shape for v in c] == shapes]
        assert matching, "the shared path holds neither racer's model"
        for got, want in zip(values, candidates[matching[0]]):
            np.testing.assert_array_equal(got, want, err_msg="the two racers' files mixed")
        winner = own[matching[0]]
        assert _relative_files(shared) == _relative_files(winner), (
            "the shared path's files are not one racer's whole model"
        )
        implementation.load(shared)
        name = os.path.basename(shared)  # the directory also holds other tests' paths
        leftovers = [
            n for n in os.listdir(os.path.dirname(shared)) if n.startswith(".") and name in n
        ]
        assert not leftovers, f"the racers left temporary files: {leftovers}"


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
