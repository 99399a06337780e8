"""An implementation in another interpreter (conformance/remote.py, conformance/worker.py).

The protocol's failure handling runs against small TensorFlow-free workers planted here; the
suite itself runs twice in a subprocess on a worker in this interpreter: on the reference (a
few clauses pass) and on an adapter that crashes, garbles and reads stdin in its first three
saves (each of those examples fails saying so, and the run goes on, with a fresh worker after
the first two; a hang is the same path with a timeout, checked on the planted workers to keep
the test short).
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conformance.api import ImplementationError, resolve_implementation
from conformance.remote import NOT_CLAIMED, RemoteError, Worker, WorkerError, parse

ROOT = Path(__file__).resolve().parents[2]

# A worker of the protocol that needs no TensorFlow: it answers hello, and a build as its
# mode says (argv[1]): "ok", "crash", "hang", "garbage", "wrong-id", or an error reply.
FAKE_WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    mode = sys.argv[1]
    for line in sys.stdin:
        request = json.loads(line)
        reply = {"id": request["id"], "ok": True, "messages": []}
        if request["op"] == "shutdown":
            break
        if request["op"] == "hello":
            reply.update(protocol=1, implementation={"name": "fake", "framework": "keras"})
        elif request["op"] == "build":
            if mode == "crash":
                sys.stderr.write("Fatal Python error: Segmentation fault\\n")
                sys.stderr.flush()
                os._exit(139)
            if mode == "hang":
                time.sleep(3600)
            if mode == "garbage":
                print("Saving model... done!", flush=True)
                continue
            if mode == "wrong-id":
                reply["id"] += 100
            if mode == "error":
                reply = {"id": request["id"], "ok": False, "error": {
                    "type": "FileExistsError", "module": "builtins", "message": "/x exists",
                    "phase": "save", "traceback": "Traceback ..."}}
            else:
                reply["model"] = "m1"
        print(json.dumps(reply), flush=True)
    """
)


@pytest.fixture
def fake_worker(tmp_path):
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    workers = []

    def make(mode, timeout=30.0):
        worker = Worker(sys.executable, "fake", timeout=timeout,
                        command=[sys.executable, str(script), mode])
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.close()


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("crash", "crashed (exit status 139)"),
        ("hang", "did not answer within 1 s and was killed"),
        ("garbage", "answered something that is not JSON: 'Saving model... done!'"),
        ("wrong-id", "answered request 102, not 2"),
    ],
)
def test_a_broken_worker_fails_the_request_clearly_and_is_replaced(fake_worker, mode, said):
    worker = fake_worker(mode, timeout=1.0)
    worker.start()
    first = worker.proc.pid
    with pytest.raises(WorkerError) as excinfo:
        worker.request("build", spec={"seed": 3})
    message = str(excinfo.value)
    assert said in message
    assert "fake_worker.py" in message and f"pid {first}" in message  # which worker
    assert '"op": "build"' in message and '"seed": 3' in message  # which request
    assert "the next request starts a fresh worker" in message
    if mode == "crash":
        assert "Segmentation fault" in message  # the tail of its stderr
    assert worker.proc is None
    # The next request starts a fresh worker (and fails again: this one always misbehaves).
    with pytest.raises(WorkerError):
        worker.request("build", spec={"seed": 3})
    assert worker.generation == 2


def test_an_error_reply_is_raised_as_the_remote_exception(fake_worker):
    worker = fake_worker("error")
    with pytest.raises(FileExistsError) as excinfo:
        worker.request("build", spec={})
    assert isinstance(excinfo.value, RemoteError)
    assert type(excinfo.value).__name__ == "FileExistsError"
    assert excinfo.value.phase == "save" and str(excinfo.value) == "/x exists"
    assert worker.request("hello")["protocol"] == 1  # the worker lives on


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("python:", "python:/path/to/bin/python:TARGET"),
        (f"python:{sys.executable}", "python:/path/to/bin/python:TARGET"),
        ("python:/nonexistent/bin/python:reference", "/nonexistent/bin/python is not an "
         "executable"),
    ],
)
def test_malformed_targets_are_usage_errors(spec, said):
    with pytest.raises(ImplementationError, match=".*") as excinfo:
        parse(spec)
    assert said in str(excinfo.value)


def test_a_worker_that_cannot_import_its_target_is_refused_at_start():
    with pytest.raises(ImplementationError) as excinfo:
        resolve_implementation(f"python:{sys.executable}:no_such_module_here:Impl")
    message = str(excinfo.value)
    assert "the worker did not start" in message and "no_such_module_here" in message


def _suite(tmp_path, impl, *args, env=None):
    report = tmp_path / "report.json"
    command = [
        sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider",
        f"--conformance-impl={impl}", f"--conformance-report={report}",
        f"--rootdir={ROOT}", *args,
    ]  # fmt: skip
    env = {**{k: v for k, v in os.environ.items() if "XDIST" not in k}, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    data = json.loads(report.read_text()) if report.exists() else None
    return proc, data


def test_the_suite_passes_on_the_reference_in_a_worker(tmp_path):
    proc, report = _suite(
        tmp_path,
        f"python:{sys.executable}:reference",
        "conformance/clauses/test_calls.py::test_call_and_serving_equal_model",
        "conformance/clauses/test_variables.py",
        "conformance/clauses/test_save.py::test_model_unchanged_by_save",
        "conformance/clauses/test_load.py::test_revived_model_behaves",
        "--hypothesis-profile=dev",
        "--conformance-zoo=none",
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    statuses = {
        cid: c["status"] for cid, c in report["clauses"].items() if c["status"] != "not run"
    }
    assert statuses == {
        "CALL-INFERENCE": "pass", "VARS-EXACT": "pass", "LAYERS-TREE": "pass",
        "SAVE-NO-MUTATION": "pass", "LOAD-REVIVE": "pass",
    }, statuses


def test_a_misbehaving_worker_fails_its_examples_and_the_run_goes_on(tmp_path):
    counter = tmp_path / "saves"
    tests = [
        f"conformance/clauses/test_signatures.py::test_fingerprint_matches_golden[spec-0{i}]"
        for i in range(4)
    ]
    proc, _ = _suite(
        tmp_path,
        f"python:{sys.executable}:tests.conformance.oop_planted:Misbehaving",
        *tests,
        "--conformance-worker-timeout=60",
        env={"OOP_PLANTED_COUNTER": str(counter), "OOP_PLANTED_SEQUENCE": "crash,garbage,asks"},
    )
    out = proc.stdout
    assert proc.returncode == 1, out[-4000:] + proc.stderr[-2000:]
    assert counter.read_text() == "4"
    assert "3 failed, 1 passed" in out, out[-3000:]
    for said in (
        "crashed (exit status 17)",
        "answered something that is not JSON: 'Saving model... done!'",
        "the implementation's save raised EOFError: EOF when reading a line",
    ):
        assert said in out, said
    assert "[SIG-STABLE] the implementation's save raised WorkerError: the worker" in out
    assert '"op": "save"' in out  # the request is named


def test_what_is_not_claimed_says_why():
    from conformance.contract import CLAUSE_IDS

    assert set(NOT_CLAIMED) <= set(CLAUSE_IDS)
    assert all(len(reason) > 40 for reason in NOT_CLAIMED.values())


def test_a_newer_input_layer_config_reads_in_an_older_keras():
    """tf_keras 2.21 writes InputLayer's ``optional``, which tf.keras 2.15 refuses: the worker
    drops it where its InputLayer does not take it and the value is the old meaning."""
    import importlib.util
    import types

    spec = importlib.util.spec_from_file_location("worker_module", ROOT / "conformance/worker.py")
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)

    class OldInputLayer:
        def __init__(self, input_shape=None, batch_input_shape=None, dtype=None, name=None,
                     **kwargs):
            pass

    old = types.SimpleNamespace(layers=types.SimpleNamespace(InputLayer=OldInputLayer))
    layer = {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4],
                                                    "optional": False}}
    text = json.dumps({"class_name": "Functional", "config": {"layers": [layer]}})
    read = json.loads(worker._older_keras_config(old, text))
    assert read["config"]["layers"][0]["config"] == {"batch_input_shape": [None, 4]}
    layer["config"]["optional"] = True  # a meaning the old Keras lacks: left for it to refuse
    text = json.dumps({"class_name": "Functional", "config": {"layers": [layer]}})
    assert json.loads(worker._older_keras_config(old, text)) == json.loads(text)
    import tf_keras

    assert worker._older_keras_config(tf_keras, text) == text  # this tf_keras takes it
