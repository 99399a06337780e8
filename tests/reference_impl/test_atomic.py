"""``reference_impl.atomic``: the swap, crash recovery, and saves killed part-way."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import reference_impl
from reference_impl import atomic, integrity
from tests.reference_impl import _infra_models as infra

DEAD_PID = 2**22 + 12345  # Above Linux's default pid_max range: no process has it.


def _tree(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` by relative name, with its bytes."""
    return {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def _write_model_dir(path: Path, payload: str) -> None:
    path.mkdir(parents=True)
    (path / "saved_model.pb").write_text(payload)
    (path / "variables").mkdir()
    (path / "variables" / "data").write_text(payload * 3)


def _leftover(parent: Path, target: str, kind: str, pid: int, token: str = "0123abcd") -> Path:
    path = parent / f".{target}.{kind}-{pid}-{token}"
    path.mkdir()
    (path / "saved_model.pb").write_text(f"{kind} of {pid}")
    return path


# -- the swap --------------------------------------------------------------------------------


def test_new_target_appears_complete_and_alone(tmp_path):
    target = tmp_path / "model"
    with atomic.atomic_directory(target) as directory:
        assert directory.parent == tmp_path
        assert directory.name.startswith(".model.tmp-") and directory.is_dir()
        assert not target.exists()
        (directory / "saved_model.pb").write_text("new")
    assert (target / "saved_model.pb").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["model"]
    assert integrity.verify_manifest(target)


def test_existing_target_is_replaced(tmp_path):
    target = tmp_path / "model"
    _write_model_dir(target, "old")
    with atomic.atomic_directory(target) as directory:
        (directory / "saved_model.pb").write_text("new")
        assert (target / "saved_model.pb").read_text() == "old"  # untouched until the end
    assert (target / "saved_model.pb").read_text() == "new"
    assert not (target / "variables").exists()  # replaced whole, not merged
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_exception_leaves_target_untouched_and_no_temp(tmp_path):
    target = tmp_path / "model"
    _write_model_dir(target, "old")
    before = _tree(target)
    with pytest.raises(RuntimeError, match="boom"):
        with atomic.atomic_directory(target) as directory:
            (directory / "saved_model.pb").write_text("half")
            raise RuntimeError("boom")
    assert _tree(target) == before
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_exception_with_no_previous_model_leaves_nothing(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(KeyboardInterrupt):
        with atomic.atomic_directory(target) as directory:
            (directory / "f").write_text("x")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_manifest_can_be_turned_off(tmp_path):
    with atomic.atomic_directory(tmp_path / "m", manifest=False) as directory:
        (directory / "f").write_text("x")
    assert os.listdir(tmp_path / "m") == ["f"]


def test_parent_directories_are_created(tmp_path):
    target = tmp_path / "a" / "b" / "model"
    with atomic.atomic_directory(target) as directory:
        (directory / "f").write_text("x")
    assert (target / "f").read_text() == "x"


# -- recovery --------------------------------------------------------------------------------


def test_recover_restores_previous_model_after_crash_between_renames(tmp_path):
    target = tmp_path / "model"
    _write_model_dir(target, "previous")
    before = _tree(target)
    # State after rename(target, aside) and before rename(temp, target), process dead.
    aside = tmp_path / f".model.old-{DEAD_PID}-0123abcd"
    os.rename(target, aside)
    temp = _leftover(tmp_path, "model", "tmp", DEAD_PID)
    atomic.recover(target)
    assert _tree(target) == before
    assert not aside.exists() and not temp.exists()
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_recover_removes_dead_leftovers_only_of_its_target(tmp_path):
    target = tmp_path / "model"
    _write_model_dir(target, "current")
    dead_tmp = _leftover(tmp_path, "model", "tmp", DEAD_PID)
    dead_old = _leftover(tmp_path, "model", "old", DEAD_PID, "89abcdef")
    live_tmp = _leftover(tmp_path, "model", "tmp", os.getppid())  # our parent is alive
    other_target = _leftover(tmp_path, "model2", "tmp", DEAD_PID)
    prefix_target = _leftover(tmp_path, "mod", "tmp", DEAD_PID)
    unrelated = tmp_path / ".model.tmp-notapid-0123abcd"
    unrelated.mkdir()
    atomic.recover(target)
    assert not dead_tmp.exists() and not dead_old.exists()
    assert live_tmp.exists(), "a live process's temp directory must be left alone"
    assert other_target.exists() and prefix_target.exists(), "other targets are not ours"
    assert unrelated.exists()
    assert (target / "saved_model.pb").read_text() == "current"


def test_recover_leaves_a_live_swap_alone(tmp_path):
    target = tmp_path / "model"
    # A live process is between its two renames: the target is missing on purpose.
    aside = _leftover(tmp_path, "model", "old", os.getppid())
    atomic.recover(target)
    assert aside.exists() and not target.exists()


def test_recover_cleans_own_stale_leftovers_but_not_active_ones(tmp_path):
    target = tmp_path / "model"
    stale = _leftover(tmp_path, "model", "tmp", os.getpid())
    with atomic.atomic_directory(target) as directory:
        atomic.recover(target)  # e.g. another thread starting a save meanwhile
        assert directory.exists(), "our own active temp directory must survive recover()"
        assert not stale.exists(), "our own pid, but not in use: stale"
        (directory / "f").write_text("x")
    assert (target / "f").read_text() == "x"


def test_should_write_runs_recovery(tmp_path):
    target = tmp_path / "model"
    _write_model_dir(target, "previous")
    os.rename(target, tmp_path / f".model.old-{DEAD_PID}-0123abcd")
    with pytest.raises(FileExistsError):
        atomic.should_write(target, overwrite=False)  # the previous model is back
    assert (target / "saved_model.pb").read_text() == "previous"


# -- concurrency -----------------------------------------------------------------------------


def test_concurrent_threads_saving_to_different_paths(tmp_path):
    count, rounds = 6, 5
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def worker(index: int) -> None:
        try:
            barrier.wait()
            for round_ in range(rounds):
                with atomic.atomic_directory(tmp_path / f"model_{index}") as directory:
                    for part in range(5):
                        (directory / f"part_{part}").write_text(f"{index}:{round_}:{part}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(os.listdir(tmp_path)) == sorted(f"model_{i}" for i in range(count))
    for i in range(count):
        target = tmp_path / f"model_{i}"
        assert (target / "part_4").read_text() == f"{i}:{rounds - 1}:4"
        assert integrity.verify_manifest(target)


def test_concurrent_threads_saving_to_the_same_path_leave_one_complete_model(tmp_path):
    target = tmp_path / "model"
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for _ in range(5):
                with atomic.atomic_directory(target) as directory:
                    for part in range(3):
                        (directory / f"part_{part}").write_text(str(index))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(os.listdir(tmp_path)) == ["model"]
    contents = {(target / f"part_{part}").read_text() for part in range(3)}
    assert len(contents) == 1, "parts of two saves were mixed"
    assert integrity.verify_manifest(target)


# -- saves killed part-way -------------------------------------------------------------------

# The child overwrites the "previous" model at argv[1] (already there, saved by the test)
# with a new one whose output kernel is all ones, and dies by SIGKILL at the moment named
# by KILL_AT. Self-kills make the dangerous moments (between the renames, say) certain
# rather than a matter of timing; "external" saves in a loop until the test kills it.
_KILL_SCRIPT = """
import json, os, signal, sys
import numpy as np
from tests.reference_impl import _infra_models as infra
import reference_impl
from reference_impl import atomic, metadata

target, kill_at = sys.argv[1], os.environ["KILL_AT"]
model = infra.functional_model()
model.get_layer("out").kernel.assign(np.ones((3, 2), "float32"))

def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if kill_at == "writing":  # the new SavedModel is half written in the temp directory
    metadata.write_metadata = die
elif kill_at == "between_renames":  # the target is aside, the new model not yet in place
    rename, final = os.rename, os.path.abspath(target)
    def rename_unless_into_place(src, dst):
        if os.fspath(dst) == final and not os.path.lexists(final):
            die()
        rename(src, dst)
    os.rename = rename_unless_into_place
elif kill_at == "before_cleanup":  # the new model is in place, the aside copy not removed
    atomic._remove = die
print(json.dumps({"saving": True}), flush=True)
while True:
    reference_impl.save(model, target)
    if kill_at != "external":
        print(json.dumps({"survived": True}), flush=True)
        break
"""

# Where each self-kill falls, and whether the model found afterwards is the new one.
_KILL_MOMENTS = {"writing": False, "between_renames": False, "before_cleanup": True}


def _output_kernel(target: Path):
    """Load ``target`` with ``reference_impl.load`` and return the ``out`` layer's kernel."""
    import reference_impl

    return reference_impl.load(target, compile=False).get_layer("out").kernel.numpy()


def _inspect_after_kill(target: Path) -> dict:
    """What a killed save left: whether the target existed, whether it then opened and
    loaded (open and load recover first), which model it holds, and what else is beside it."""
    from reference_impl.validate import open_saved_model

    report = {"target_existed": target.exists(), "error": None, "is_new": None}
    try:
        assert open_saved_model(target).metadata_nodes is not None
        report["is_new"] = bool((_output_kernel(target) == 1.0).all())
    except Exception as exc:  # reported to the test
        report["error"] = f"{type(exc).__name__}: {exc}"
    report["beside"] = sorted(os.listdir(target.parent))
    return report


def _run_killed_saves(root: Path) -> dict[str, dict]:
    """Save a previous model, then run every killed save over a copy of it at once (they
    are independent), and inspect what each left.

    The self-killing children die on their own. The "external" child saves in a loop and
    is sent SIGKILL from here, an arbitrary time after it started saving.
    """
    previous = root / "previous" / "model"
    reference_impl.save(infra.functional_model(), previous)
    runs = {}
    for moment in [*_KILL_MOMENTS, "external"]:
        target = root / moment / "model"
        shutil.copytree(previous, target)
        process = subprocess.Popen(
            [*infra.python_script(_KILL_SCRIPT), str(target)],
            cwd=infra.REPO_ROOT,
            env=infra.subprocess_env(KILL_AT=moment),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        runs[moment] = (target, process)
    results = {}
    try:
        external = runs["external"][1]
        first_line = external.stdout.readline()
        if '"saving"' in first_line:
            time.sleep(2.5)
            external.send_signal(signal.SIGKILL)
        for moment, (target, process) in runs.items():
            try:
                stdout, stderr = process.communicate(timeout=240)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, stderr = process.communicate()
            if moment == "external":
                stdout = first_line + stdout
            results[moment] = {
                "returncode": process.returncode,
                "stdout": stdout,
                "stderr": stderr[-3000:],
                **_inspect_after_kill(target),
            }
    finally:
        for _target, process in runs.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


@pytest.fixture(scope="module")
def killed_saves(tmp_path_factory, worker_id) -> dict[str, dict]:
    return infra.once_per_session(
        tmp_path_factory,
        worker_id,
        "infra_killed_saves",
        lambda: _run_killed_saves(tmp_path_factory.mktemp("killed")),
    )


@pytest.mark.parametrize("moment", [*_KILL_MOMENTS, "external"])
def test_killed_save_leaves_a_whole_loadable_model(killed_saves, moment):
    result = killed_saves[moment]
    assert result["returncode"] == -signal.SIGKILL, result["stderr"]
    assert '"saving"' in result["stdout"] and "survived" not in result["stdout"]
    if moment == "between_renames":
        assert not result["target_existed"], "the kill should have fallen between the renames"
    assert result["error"] is None, result["error"]
    if moment in _KILL_MOMENTS:
        assert result["is_new"] == _KILL_MOMENTS[moment]
    assert result["beside"] == ["model"], "leftovers of the dead save remain"


# Child for the cross-process test: imports only reference_impl.atomic (not the package's
# TensorFlow-heavy __init__) and saves ``rounds`` times to each of its targets.
_SAVE_LOOP = """
import os, sys, types
package = types.ModuleType("reference_impl")
package.__path__ = [os.path.join(os.getcwd(), "reference_impl")]
sys.modules["reference_impl"] = package
from reference_impl import atomic

tag, rounds, targets = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for round_ in range(rounds):
    for target in targets:
        with atomic.atomic_directory(target) as directory:
            for part in range(4):
                with open(os.path.join(directory, f"part_{part}"), "w") as file:
                    file.write(f"{tag}:{round_}")
"""


def test_concurrent_processes_do_not_disturb_each_other(tmp_path):
    """Processes saving to their own paths and to a shared one in the same directory: each
    one's recover() sees the others' live temporaries and must leave them alone."""
    import sys

    rounds = 40
    shared = tmp_path / "shared"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _SAVE_LOOP, tag, str(rounds), str(tmp_path / tag), str(shared)],
            cwd=infra.REPO_ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b", "c")
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr[-3000:]
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "c", "shared"]
    for tag in ("a", "b", "c"):
        assert {(tmp_path / tag / f"part_{p}").read_text() for p in range(4)} == {
            f"{tag}:{rounds - 1}"
        }
        assert integrity.verify_manifest(tmp_path / tag)
    assert len({(shared / f"part_{p}").read_text() for p in range(4)}) == 1
    assert integrity.verify_manifest(shared)


# -- failed saves: a full disk, a read-only directory, a forbidden one, an I/O error ---------


def _previous_saved(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    target = tmp_path / "model"
    reference_impl.save(infra.functional_model(), target)
    return target, _tree(target)


def _new_model():
    import numpy as np

    model = infra.functional_model()
    model.get_layer("out").kernel.assign(np.ones((3, 2), "float32"))
    return model


def _assert_failed_cleanly(excinfo, target: Path, before: dict[str, bytes], code: int) -> None:
    from reference_impl.errors import ReferenceImplError, SaveFailedError

    error = excinfo.value
    assert isinstance(error, SaveFailedError) and isinstance(error, ReferenceImplError)
    assert isinstance(error, OSError) and error.errno == code, repr(error)
    assert str(target) in str(error) and error.path == str(target)
    assert _tree(target) == before, "the previous model changed"
    assert sorted(os.listdir(target.parent)) == ["model"], "temporary files were left"
    assert not (_output_kernel(target) == 1.0).all(), "the path does not hold the old model"


# Root (this machine's user) ignores permission bits, so chmod 0o500 cannot make a directory
# read-only for it: the errors are injected at the operation that would meet them.
_INJECTED = {
    "full disk at saved_model.pb (gfile)": (errno.ENOSPC, "gfile-write", "saved_model.pb"),
    "full disk at keras_metadata.pb": (errno.ENOSPC, "open-write", "keras_metadata.pb"),
    "full disk at the manifest": (errno.ENOSPC, "open-write", "checksums.sha256"),
    "read-only file system at the temporary directory": (errno.EROFS, "mkdir", ".model.tmp"),
    "permission denied moving the old model aside": (errno.EACCES, "rename", "model"),
    "I/O error moving the new model into place": (errno.EIO, "rename", ".model.tmp"),
    "I/O error syncing a file": (errno.EIO, "fsync", "variables"),
}


@pytest.mark.parametrize("case", list(_INJECTED))
def test_injected_write_error_is_clear_and_leaves_the_previous_model(tmp_path, case):
    from conformance.clauses.test_durability import FaultInjector

    code, kind, name = _INJECTED[case]
    target, before = _previous_saved(tmp_path)

    def match(op_kind, path):
        return op_kind == kind and os.path.basename(path).startswith(name)

    with FaultInjector(error=code, match=match) as injector:
        with pytest.raises(OSError) as excinfo:
            reference_impl.save(_new_model(), target)
    assert injector.injected is not None, f"no {kind} of {name} happened"
    _assert_failed_cleanly(excinfo, target, before, code)


def test_failed_sync_after_the_swap_still_removes_the_aside_copy(tmp_path):
    """The new model is in place when the parent directory's sync fails: the save reports
    it, and the previous model moved aside is removed all the same."""
    from conformance.clauses.test_durability import FaultInjector

    target, _ = _previous_saved(tmp_path)

    def parent_sync(kind, path):
        return kind == "fsync" and path == str(tmp_path)

    with FaultInjector(match=parent_sync) as injector:
        with pytest.raises(OSError):
            reference_impl.save(_new_model(), target)
    assert injector.injected is not None
    assert sorted(os.listdir(tmp_path)) == ["model"]
    assert (_output_kernel(target) == 1.0).all()


@contextlib.contextmanager
def _small_tmpfs(where: Path, size: str):
    """A tmpfs of ``size`` mounted at ``where`` (root only), unmounted afterwards."""
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _big_model():
    import keras

    inputs = keras.Input((4,), name="x")
    hidden = keras.layers.Dense(3, name="hidden")(inputs)
    wide = keras.layers.Dense(300_000, name="wide")(hidden)  # about 4.8 MB of variables
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(wide))


def test_a_real_full_disk_is_a_clear_error(tmp_path):
    """A 2 MB file system holds the small previous model but not the 4.8 MB new one: the
    checkpoint shards (TensorFlow's C++ writes) meet ENOSPC for real."""
    with _small_tmpfs(tmp_path / "disk", "2m") as disk:
        target, before = _previous_saved(disk)
        with pytest.raises(OSError) as excinfo:
            reference_impl.save(_big_model(), target)
        from reference_impl.errors import SaveFailedError

        assert isinstance(excinfo.value, SaveFailedError), repr(excinfo.value)
        assert str(target) in str(excinfo.value)
        assert _tree(target) == before
        assert sorted(os.listdir(disk)) == ["model"], "temporary files were left"


def test_a_really_read_only_directory_is_a_clear_error(tmp_path):
    """A file system remounted read-only refuses root too (unlike chmod 0o500)."""
    with _small_tmpfs(tmp_path / "disk", "4m") as disk:
        target, before = _previous_saved(disk)
        remounted = subprocess.run(
            ["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True
        )
        if remounted.returncode != 0:
            pytest.skip(f"cannot remount read-only: {remounted.stderr.strip()}")
        with pytest.raises(OSError) as excinfo:
            reference_impl.save(_new_model(), target, overwrite=True)
        _assert_failed_cleanly(excinfo, target, before, errno.EROFS)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits (see _INJECTED)")
def test_a_directory_without_write_permission_is_a_clear_error(tmp_path):
    parent = tmp_path / "locked"
    parent.mkdir()
    target, before = _previous_saved(parent)
    parent.chmod(0o500)
    try:
        with pytest.raises(OSError) as excinfo:
            reference_impl.save(_new_model(), target)
        _assert_failed_cleanly(excinfo, target, before, errno.EACCES)
    finally:
        parent.chmod(0o700)


# -- two processes saving different models to one path at once -------------------------------

# Each racer overwrites the shared path ``rounds`` times with its own model (the output
# kernel filled with its number), starting when the test says go on stdin.
_RACER = """
import sys
import numpy as np
from tests.reference_impl import _infra_models as infra
import reference_impl

target, fill, rounds = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
model = infra.functional_model()
model.get_layer("out").kernel.assign(np.full((3, 2), fill, "float32"))
print("ready", flush=True)
sys.stdin.readline()
import time
started = time.time()
for _ in range(rounds):
    reference_impl.save(model, target, overwrite=True)
print("done", started, time.time(), flush=True)
"""


def test_two_processes_saving_different_models_leave_one_whole(tmp_path):
    target = tmp_path / "model"
    racers = [
        subprocess.Popen(
            [*infra.python_script(_RACER), str(target), fill, "4"],
            cwd=infra.REPO_ROOT,
            env=infra.subprocess_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for fill in ("1", "2")
    ]
    try:
        for racer in racers:
            assert racer.stdout.readline().strip() == "ready", racer.stderr.read()[-3000:]
        for racer in racers:
            racer.stdin.write("go\n")
            racer.stdin.flush()
        outputs = [racer.communicate(timeout=240) for racer in racers]
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()
    for racer, (stdout, stderr) in zip(racers, outputs):
        # The reference's loser does not fail: it replaces the winner's model whole.
        assert racer.returncode == 0 and "done" in stdout, stderr[-3000:]
    windows = [[float(x) for x in out.split("done", 1)[1].split()] for out, _ in outputs]
    assert max(w[0] for w in windows) < min(w[1] for w in windows), "the saves did not overlap"
    kernel = _output_kernel(target)
    assert (kernel == 1.0).all() or (kernel == 2.0).all(), f"a mix of two models: {kernel}"
    assert "keras_metadata.pb" in integrity.verify_manifest(target)
    assert sorted(os.listdir(tmp_path)) == ["model"], "the racers left temporary files"


# -- the clause's simulated kill (the disk copied at the k-th operation) against a real one --

_DIE_AT = """
import sys
from conformance.clauses.test_durability import FaultInjector
from tests.reference_impl import test_atomic
import reference_impl

target, kind, name = sys.argv[1:4]
match = lambda k, p: k == kind and __import__("os").path.basename(p).startswith(name)
with FaultInjector(kill="exit", match=match):
    reference_impl.save(test_atomic._new_model(), target, overwrite=True)
print("survived", flush=True)
"""

# Where to die: inside TensorFlow's writes, between the two renames, in the cleanup after.
_DEATHS = {
    "writing": ("gfile-write", "saved_model.pb"),
    "between_renames": ("rename", ".model.tmp"),
    "cleaning_up": ("rmdir", ".model.old"),
}


def _listing(root: Path) -> list[str]:
    """Every path under ``root``, with the pid and random token of temporary names erased."""
    import re

    return sorted(
        re.sub(r"-[0-9]+-[0-9a-f]{8}", "-PID-TOKEN", p.relative_to(root).as_posix())
        for p in root.rglob("*")
    )


def test_a_real_death_leaves_what_the_simulated_kill_copies(tmp_path):
    """What the clause checks after a "kill" (the disk copied at that operation) is what a
    process dying there (os._exit) leaves, and the next load and save recover from it."""
    from conformance.clauses.test_durability import FaultInjector, _Kill

    previous, _ = _previous_saved(tmp_path / "previous")
    runs = {}
    for moment, (kind, name) in _DEATHS.items():
        (tmp_path / moment / "real").mkdir(parents=True)
        shutil.copytree(previous, tmp_path / moment / "real" / "model")
        runs[moment] = subprocess.Popen(
            [*infra.python_script(_DIE_AT), str(tmp_path / moment / "real" / "model"), kind]
            + [name],
            cwd=infra.REPO_ROOT,
            env=infra.subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for moment, (kind, name) in _DEATHS.items():
        stdout, stderr = runs[moment].communicate(timeout=240)
        assert runs[moment].returncode == 137 and "survived" not in stdout, stderr[-3000:]
        real, copied = tmp_path / moment / "real", tmp_path / moment / "copied"
        (tmp_path / moment / "live").mkdir()
        shutil.copytree(previous, tmp_path / moment / "live" / "model")

        def match(op_kind, path, kind=kind, name=name):
            return op_kind == kind and os.path.basename(path).startswith(name)

        live = tmp_path / moment / "live"
        with FaultInjector(kill=True, snapshot=copied, root=live, match=match):
            with pytest.raises(_Kill):
                reference_impl.save(_new_model(), live / "model", overwrite=True)
        assert _listing(real) == _listing(copied), moment
        assert (moment == "between_renames") != (real / "model").exists()
        kernel = _output_kernel(real / "model")  # the load recovers first
        assert (kernel == 1.0).all() == (moment == "cleaning_up"), moment
        reference_impl.save(_new_model(), real / "model", overwrite=True)
        assert sorted(os.listdir(real)) == ["model"], moment


def test_a_failing_recovery_before_a_save_is_a_save_error(tmp_path, monkeypatch):
    from reference_impl.errors import SaveFailedError

    _write_model_dir(tmp_path / "model", "previous")
    _leftover(tmp_path, "model", "tmp", DEAD_PID)

    def broken(path):
        raise OSError(errno.EIO, "Input/output error (injected)", str(path))

    monkeypatch.setattr(atomic, "_remove", broken)
    with pytest.raises(SaveFailedError) as excinfo:
        atomic.should_write(tmp_path / "model", overwrite=True)
    assert excinfo.value.errno == errno.EIO and str(tmp_path / "model") in str(excinfo.value)
