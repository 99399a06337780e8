"""The LOAD-HOSTILE harness: payloads that are live, mutations that apply, outcomes classified."""

import base64
import marshal
import os
import pickle
import signal
import time
import types

import numpy as np
import pytest
from hypothesis import given, settings

from conformance import hostile
from conformance.api import Implementation
from conformance.savedmodel import bundle


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


# -- the checkpoint index's entries ----------------------------------------------------------

# Index changes that make TensorFlow's checkpoint reader abort (a CHECK failure), as found by
# the fuzzer: a value that is no BundleEntryProto, a negative dimension, an element count
# past int64, 255 dimensions, a dtype with no tensors.
ABORTS = [
    ("garbage", hostile.GARBAGE.index(b"\xff")),
    ("shape", hostile.SHAPES.index(("dim", -1))),
    ("shape", hostile.SHAPES.index(("overflow", 2**32))),
    ("shape", hostile.SHAPES.index(("rank", 255))),
    ("dtype", hostile.DTYPES.index(999)),
]
KERNEL = "kernel/.ATTRIBUTES/VARIABLE_VALUE"


def _checkpoint(root):
    """``root/variables/`` as a SavedModel holds it: a checkpoint of two variables. Its
    entries sort as the header, the object graph, the bias and the kernel."""
    import tensorflow as tf

    (root / "variables").mkdir(parents=True)
    variables = {"kernel": tf.Variable([[1.0, 2.0]]), "bias": tf.Variable([3.0])}
    tf.train.Checkpoint(**variables).write(str(root / "variables" / "variables"))
    return str(root / "variables" / "variables")


def _mutated(tmp_path, change, value):
    source = tmp_path / "source"
    _checkpoint(source)
    (tmp_path / "outside").mkdir()
    # Site 2 of the tensor entries and site 3 of all entries are the kernel's.
    site = 3 if change in ("delete", "duplicate", "swap", "key", "garbage", "reorder") else 2
    mutation = hostile.Mutation("index", hostile.INDEX, (change, site, value))
    done = hostile.apply([mutation], str(source), str(tmp_path / "copy"), "/nowhere",
                         str(tmp_path / "outside"))
    assert done[0].startswith("variables.index: "), done
    return tmp_path / "copy"


def test_index_table_round_trips(tmp_path):
    import tensorflow as tf

    assert bundle.crc32c(b"123456789") == 0xE3069283  # CRC-32C's check value
    prefix = _checkpoint(tmp_path)
    reader = tf.train.load_checkpoint(prefix)  # read before the index is written over
    before = {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}
    index = tmp_path / hostile.INDEX
    entries = bundle.read_table(index.read_bytes())
    assert [k for k, _ in entries][0] == bundle.HEADER_KEY and len(entries) == 4
    written = bundle.write_table(entries)
    assert bundle.read_table(written) == entries
    index.write_bytes(written)
    reader = tf.train.load_checkpoint(prefix)
    after = {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}
    assert sorted(after) == sorted(before)
    for key, value in before.items():
        assert np.array_equal(after[key], value), key
    flipped = bytearray(written)
    flipped[5] ^= 1
    with pytest.raises(bundle.TableError, match="checksum"):
        bundle.read_table(bytes(flipped))


def _dtype(reader):
    return reader.get_variable_to_dtype_map()[KERNEL].name


def _shape(reader):
    return reader.get_variable_to_shape_map()[KERNEL]


def _keys(reader):
    return sorted(reader.get_variable_to_shape_map())


def _value(reader):
    return reader.get_tensor(KERNEL).tolist()


@pytest.mark.parametrize("change, value, seen, expected", [
    ("dtype", hostile.DTYPES.index(3), _dtype, "int32"),
    ("shape", hostile.SHAPES.index(("add", 1)), _shape, [1, 2, 1]),
    ("delete", 0, _keys, ["_CHECKPOINTABLE_OBJECT_GRAPH", "bias/.ATTRIBUTES/VARIABLE_VALUE"]),
    ("crc32c", 0, _value, "Checksum does not match"),
    ("offset", 2, _value, "Read less bytes"),  # one byte past the data file
    ("header", hostile.HEADER.index(("num_shards", 2)), _value, "00000-of-00002; No such file"),
])
def test_index_mutations_reach_the_checkpoint_reader(tmp_path, change, value, seen, expected):
    """Written back as a valid table, the changed entry is what TensorFlow's reader sees
    (a value, or its refusal naming the cause), not a table it cannot open."""
    import tensorflow as tf

    copy = _mutated(tmp_path, change, value)
    try:
        got = seen(tf.train.load_checkpoint(str(copy / "variables" / "variables")))
    except Exception as exc:
        got = str(exc)
    if isinstance(expected, str) and isinstance(got, str) and expected != got:
        assert expected in got
    else:
        assert got == expected


def test_each_index_change_is_drawn():
    """A CI-sized run (300 lists) draws every kind of index change."""
    drawn = set()

    @settings(max_examples=300, database=None, derandomize=True)
    @given(mutations=hostile.mutation_lists())
    def draw(mutations):
        drawn.update(m.args[0] for m in mutations if m.op == "index")

    draw()
    assert drawn == set(hostile.INDEX_CHANGES)


class ReadsCheckpoint(Implementation):
    """Reads every tensor of ``variables/`` with TensorFlow's reader, as its loaders do."""

    name = "reads-checkpoint"

    def save(self, model, path, **kwargs):
        raise NotImplementedError

    def load(self, path):
        import tensorflow as tf

        reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
        return [reader.get_tensor(key) for key in reader.get_variable_to_shape_map()]


def test_an_index_tensorflow_aborts_on_is_a_crash(tmp_path):
    """The worker classifies TensorFlow's abort on such an index as a crash (one of them: a
    start of TensorFlow costs seconds; the reference refuses them all first, see
    tests/reference_impl/test_checkpoint_index.py)."""
    intact = tmp_path / "intact"
    _checkpoint(intact)
    negative = _mutated(tmp_path / "negative", *ABORTS[1])
    with hostile.Worker(f"{__name__}:ReadsCheckpoint", timeout=60) as worker:
        outcomes = [worker.load(str(path)) for path in (intact, negative)]
    assert [o["outcome"] for o in outcomes] == ["model", "crash"]
    assert "SIGABRT" in outcomes[1]["message"]
