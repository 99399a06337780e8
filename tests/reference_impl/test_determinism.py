"""Determinism: the same model saved twice, or in two processes with different
PYTHONHASHSEED, gives identical metadata bytes, serving signatures and fingerprint hashes."""

from __future__ import annotations

import subprocess

import pytest

from tests.reference_impl import _infra_models as infra

# Child: build each model, save it twice with reference_impl.save, and print what must be
# stable (as one JSON line).
_SAVER = """
import hashlib, json, os, sys, tempfile
from tests.reference_impl import _infra_models as infra
import reference_impl

def summary(path):
    from tensorflow.core.protobuf import saved_model_pb2
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as file:
        proto.ParseFromString(file.read())
    signatures = proto.meta_graphs[0].signature_def
    fingerprint = tf.saved_model.experimental.read_fingerprint(path)
    with open(os.path.join(path, "keras_metadata.pb"), "rb") as file:
        metadata_bytes = file.read()
    return {
        "keras_metadata_sha256": hashlib.sha256(metadata_bytes).hexdigest(),
        "serving_default": signatures["serving_default"].SerializeToString(
            deterministic=True).hex(),
        "signature_keys": sorted(signatures),
        "signature_def_hash": fingerprint.signature_def_hash,
        "graph_def_program_hash": fingerprint.graph_def_program_hash,
        "saved_object_graph_hash": fingerprint.saved_object_graph_hash,
    }

out = {}
root = tempfile.mkdtemp()
for name, build in [("functional", lambda: infra.functional_model(compiled=True)),
                    ("subclassed", infra.subclassed_model)]:
    model = build()
    for attempt in ("first", "second"):
        path = os.path.join(root, f"{name}_{attempt}")
        reference_impl.save(model, path)
        out[f"{name}/{attempt}"] = summary(path)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def summaries(tmp_path_factory, worker_id) -> list[dict]:
    return infra.once_per_session(tmp_path_factory, worker_id, "infra_determinism", _run_savers)


def _run_savers() -> list[dict]:
    """Run the saver in two processes at once, with different hash seeds."""
    processes = [
        subprocess.Popen(
            infra.python_script(_SAVER),
            cwd=infra.REPO_ROOT,
            env=infra.subprocess_env(PYTHONHASHSEED=seed),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in ("1", "4242")
    ]
    results = []
    for process in processes:
        try:
            stdout, stderr = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        assert process.returncode == 0, stderr[-3000:]
        results.append(infra.last_json_line(stdout))
    return results


@pytest.mark.parametrize("model", ["functional", "subclassed"])
def test_saving_twice_in_one_process_is_identical(summaries, model):
    for summary in summaries:
        assert summary[f"{model}/first"] == summary[f"{model}/second"]


@pytest.mark.parametrize("model", ["functional", "subclassed"])
def test_two_processes_with_different_hash_seeds_agree(summaries, model):
    first, second = (summary[f"{model}/first"] for summary in summaries)
    for key in first:
        assert first[key] == second[key], key


def test_serving_signature_is_present(summaries):
    for summary in summaries:
        for key, value in summary.items():
            assert "serving_default" in value["signature_keys"], key
            assert all(value[h] for h in ("signature_def_hash", "graph_def_program_hash")), key


def test_traced_shapes_do_not_depend_on_earlier_saves_in_the_process():
    """A tf.function reuses a cached trace whose spec is a supertype of the one asked for:
    after a save with an open axis, the spec a saved function is traced for must still be the
    tensor's own, not the open one left in the probe that names the arguments (this made
    SIG-STABLE depend on the test order)."""
    import tensorflow as tf

    from reference_impl import tracing

    tracing.canonical_spec(tf.TensorSpec([None, 8, None], tf.int32), "inputs")
    for i in range(1, 7):
        spec = tracing.canonical_spec(tf.TensorSpec([None, 8, i], tf.int32), "inputs")
        assert spec.shape.as_list() == [None, 8, i]
        assert spec.name == "inputs"
    nested = tracing.canonical_spec(
        (tf.TensorSpec([None, 3], tf.float32), tf.TensorSpec([None, 5], tf.float32)), "inputs"
    )
    assert [s.shape.as_list() for s in nested] == [[None, 3], [None, 5]]
    assert all(s.name for s in nested)
