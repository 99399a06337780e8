"""The LOAD-HOSTILE harness: payloads that are live, mutations that apply, outcomes classified."""

import base64
import marshal
import os
import pickle
import signal
import time
import types

from hypothesis import given, settings

from conformance import hostile
from conformance.api import Implementation


class ByPathName(Implementation):
    """Misbehaves as the one file in the directory says: the worker's outcomes, one by one."""

    name = "by-path-name"
    load_errors = (FileNotFoundError,)

    def save(self, model, path, **kwargs):
        raise NotImplementedError

    def load(self, path):
        how = (os.listdir(path) or ["model"])[0]
        if how == "segv":
            os.kill(os.getpid(), signal.SIGSEGV)
        if how == "hang":
            time.sleep(60)
        if how == "oom":
            return bytearray(8 * 2**30)
        if how == "bare":
            raise ValueError("no path here")
        if how == "code":
            open(os.path.join(os.path.dirname(path), "sentinel"), "w").close()
            return object()
        if how == "clean":
            raise FileNotFoundError(f"nothing at {path}")
        return object()


def test_worker_classifies_every_outcome(tmp_path):
    spec = f"{__name__}:ByPathName"
    sentinel = str(tmp_path / "no-sentinel")
    with hostile.Worker(spec, timeout=5, memory=2**30) as worker:
        got = {}
        for how in ("model", "clean", "bare", "segv", "model", "hang", "oom", "model"):
            source = tmp_path / "sources" / how
            source.mkdir(parents=True, exist_ok=True)
            (source / how).touch()
            scratch = tmp_path / f"scratch-{how}"
            scratch.mkdir(exist_ok=True)
            _, _, result = hostile.load_hostile(worker, [], str(source), str(scratch), sentinel)
            got[how] = result["outcome"]
        source = tmp_path / "sources" / "code"
        source.mkdir()
        (source / "code").touch()
        scratch = tmp_path / "scratch-code"
        scratch.mkdir()
        # The fake writes its sentinel beside the copy: name that one.
        _, _, result = hostile.load_hostile(
            worker, [], str(source), str(scratch), str(scratch / "sentinel")
        )
        got["code"] = result["outcome"]
    assert got == {
        "model": "model", "clean": "clean-error", "bare": "other-exception", "segv": "crash",
        "hang": "hang", "oom": "out-of-memory", "code": "sentinel",
    }
    assert worker.restarts >= 3  # after the crash, the hang and the memory kill


def test_payloads_are_live(tmp_path):
    """Run unsafely, the Lambda bytecode and the pickle create the sentinel: a loader that
    never creates it refused them, not a dud."""
    sentinel = str(tmp_path / "ran")
    config = hostile._payload("LAMBDA-KERAS2", sentinel)["config"]
    code = marshal.loads(base64.b64decode(config["function"][0]))
    types.FunctionType(code, {"open": open})(1)
    assert os.path.exists(sentinel)
    os.remove(sentinel)
    pickle.loads(base64.b64decode(hostile._payload("PICKLE", sentinel))).close()
    assert os.path.exists(sentinel)


@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(mutations=hostile.mutation_lists())
def test_mutations_apply_to_a_saved_model_copy(mutations, tmp_path_factory):
    """Every drawn list applies (or says why not) to a stand-in saved model; nothing is
    written outside the copy and its scratch folder, and the source is left alone."""
    from tensorflow.core.protobuf import saved_model_pb2

    root = tmp_path_factory.mktemp("m")
    source = root / "source"
    (source / "variables").mkdir(parents=True)
    model = saved_model_pb2.SavedModel(saved_model_schema_version=1)
    node = model.meta_graphs.add().object_graph_def.nodes.add()
    node.children.add(node_id=0, local_name="self")
    (source / hostile.SAVED_MODEL).write_bytes(model.SerializeToString())
    for name in (hostile.INDEX, hostile.DATA, "fingerprint.pb"):
        (source / name).write_bytes(b"\x01\x02\x03\x04" * 8)
    before = sorted(p.name for p in source.rglob("*"))
    (root / "outside").mkdir()
    done = hostile.apply(
        mutations, str(source), str(root / "copy"), "/nowhere", str(root / "outside")
    )
    assert len(done) == len(mutations)
    assert sorted(p.name for p in source.rglob("*")) == before
    assert sorted(p.name for p in root.iterdir()) == ["copy", "outside", "source"]
