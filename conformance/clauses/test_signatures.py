"""SIG-SERVING, SIG-STABLE and SIG-DYNAMIC: the serving signature, its stability and its
open dimensions."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume

from conformance import corpus
from conformance.api import unsupported_reason
from conformance.expected import fixtures, originals
from conformance.expected.names import expected_output_names
from conformance.expected.tolerances import assert_close
from conformance.plugin.drawing import fresh_examples, shared_examples
from conformance.savedmodel import calls, functions, tree


def check_serving(case):
    inputs, outputs = tree.serving_signature(case.loaded)
    spec = case.spec
    if spec.topology != "subclassed":
        assert sorted(inputs) == sorted(spec.input_names()), (
            f"serving_default inputs {sorted(inputs)}, the model's are {sorted(spec.input_names())}"
        )
    assert len(inputs) == len(spec.inputs), (
        f"serving_default has {len(inputs)} inputs, the model {len(spec.inputs)}"
    )
    by_name = {i.name: i for i in spec.inputs}
    for name, (dtype, shape) in inputs.items():
        want = by_name.get(name)
        if want is not None:
            assert dtype == want.dtype, f"serving input {name!r}: dtype {dtype} != {want.dtype}"
            assert shape == [None, *want.model_shape], (
                f"serving input {name!r}: shape {shape}, expected {[None, *want.model_shape]} "
                "(batch dimension None)"
            )
        else:
            assert shape and shape[0] is None, f"serving input {name!r}: batch dim not None"
    assert sorted(outputs) == sorted(expected_output_names(spec)), (
        f"serving_default outputs {sorted(outputs)}, expected {sorted(expected_output_names(spec))}"
    )


GOLDEN_WRITERS = ("reference", "tf_keras")


@pytest.mark.clause("SIG-SERVING")
@shared_examples()
def test_serving_signature_names(implementation, clause, example):
    spec, _ = example
    with clause.example(spec):
        check_serving(clause.case(spec))


def check_flat_serving(path):
    """tf_keras traces its default signature with the layers' own calls, before they are
    wrapped (save_impl.default_save_signature): serving_default reaches none of the saved
    layers' call functions."""
    tree.serving_signature(tree.load(path))  # a serving_default to inspect
    nested = functions.layer_functions_called_by_signature(path)
    assert not nested, (
        f"serving_default calls {len(nested)} saved layer call function(s), e.g. "
        f"{', '.join(f'{name} ({where})' for where, name in nested[:3])}; it must be one flat "
        "function, as tf_keras traces it"
    )


@pytest.mark.clause("SIG-SERVING")
@shared_examples()
def test_serving_signature_is_flat(implementation, clause, example):
    spec, _ = example
    with clause.example(spec):
        check_flat_serving(clause.case(spec).path)


@pytest.mark.clause("SIG-SERVING")
def test_serving_is_flat_for_dense_batchnorm_dense(implementation, clause):
    K = fixtures.keras_module(implementation.framework)
    model = fixtures.dense_batchnorm_dense(K)
    with clause.example({"model": "Sequential([Input, Dense, BatchNormalization, Dense])"}):
        path, _ = clause.save(model, "flat-serving")
        check_flat_serving(path)


# Runs in a fresh interpreter. `import tensorflow` itself imports a stub of Keras when one is
# installed, so what counts is what loading and serving import on top of it: no Keras module.
_SERVE_WITHOUT_KERAS = r"""
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf

def keras_modules():
    return {m for m in sys.modules if m.split(".")[0] in ("keras", "tf_keras")}

before = keras_modules()
jobs = json.load(open(sys.argv[1]))
for job in jobs:
    loaded = tf.saved_model.load(job["path"])
    data = np.load(job["inputs"])
    out = loaded.signatures["serving_default"](**{k: tf.constant(data[k]) for k in data.files})
    np.savez(job["outputs"], **{k: v.numpy() for k, v in out.items()})
print(json.dumps({"keras_modules": sorted(keras_modules() - before)}))
"""


@pytest.mark.clause("SIG-SERVING")
def test_serving_runs_without_keras(implementation, clause, tmp_path):
    """The corpus specs' serving signatures run, with equal outputs, in a keras-free process."""
    jobs, expected = [], []
    for name, spec in corpus.supported_specs(implementation)[:4]:
        with clause.example(spec):
            case = clause.case(spec)
            data = calls.serving_feed(case.loaded, spec, corpus.corpus_inputs(spec))
            want = case.loaded.signatures["serving_default"](**data)
            expected.append((spec, {k: v.numpy() for k, v in want.items()}))
            np.savez(tmp_path / f"{name}-in.npz", **data)
            jobs.append(
                {
                    "path": case.path,
                    "inputs": str(tmp_path / f"{name}-in.npz"),
                    "outputs": str(tmp_path / f"{name}-out.npz"),
                }
            )
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", _SERVE_WITHOUT_KERAS, str(tmp_path / "jobs.json")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, f"serving in a keras-free process failed:\n{proc.stderr[-3000:]}"
    leaked = json.loads(proc.stdout.strip().splitlines()[-1])["keras_modules"]
    assert not leaked, f"loading the SavedModel imported Keras modules: {leaked[:5]}"
    for job, (spec, want) in zip(jobs, expected):
        with clause.example(spec):
            got = np.load(job["outputs"])
            assert sorted(got.files) == sorted(want), "serving output keys differ"
            for key in want:
                assert_close(got[key], want[key], f"serving output {key!r} in a fresh process")


@pytest.mark.clause("SIG-STABLE")
def test_fingerprint_stable_across_resaves(implementation, clause):
    for name, spec in corpus.supported_specs(implementation)[:3]:
        with clause.example(spec, corpus_spec=name):
            first = corpus.fingerprint_spec(implementation, spec)
            second = corpus.fingerprint_spec(implementation, spec)
            assert first == second, f"{name}: re-saving the same model changed the fingerprint"


@pytest.mark.clause("SIG-STABLE")
@pytest.mark.parametrize("name", corpus.corpus_names())
def test_fingerprint_matches_golden(implementation, clause, name):
    spec = corpus.corpus_spec(name)
    unsupported = unsupported_reason(implementation, spec)
    if unsupported:
        pytest.skip(f"{name}: {unsupported}")
    with clause.example(spec, corpus_spec=name):
        digest = corpus.fingerprint_spec(implementation, spec)
        clause.record_fingerprint(name, digest)
        golden = corpus.golden(implementation.framework).get(name)
        if golden is None:
            pytest.skip(f"no golden fingerprint for {name} ({implementation.framework})")
        # The goldens are this project's (written by the reference and tf_keras' saver).
        hint = (
            "; rewrite goldens only with `python -m conformance corpus --write-golden`"
            if implementation.name in GOLDEN_WRITERS
            else ""
        )
        assert digest == golden, (
            f"{name}: fingerprint {digest[:16]}… differs from the golden {golden[:16]}…{hint}"
        )


@pytest.mark.clause("SIG-STABLE")
def test_fingerprint_stable_across_processes(implementation, impl_spec, clause):
    """Without xdist (or with one worker): each corpus spec in two subprocesses with different
    PYTHONHASHSEED, one example per spec. With two workers or more the controller compares the
    workers' fingerprints instead and counts the same examples (``plugin.stability``)."""
    if clause.fingerprints_compared_by_the_controller:
        pytest.skip("under xdist the workers' fingerprints are compared on the controller")
    results = [corpus.fingerprints_in_subprocess(impl_spec, seed) for seed in ("1", "2")]
    for name, spec in corpus.supported_specs(implementation):
        with clause.example(spec, corpus_spec=name):
            assert results[0][name] == results[1][name], (
                f"{name}: fingerprints differ between PYTHONHASHSEED=1 and =2"
            )


# --- SIG-DYNAMIC ---------------------------------------------------------------------------

# Two lengths past each open axis' probe length (the spec's), different from it and from each
# other: a saver that traced the probe shape accepts neither.
_DYNAMIC_EXTRAS = (1, 3)


def _dynamic_data(spec, extra, seed):
    """Inputs with every open axis ``extra`` past its probe length (batch 2 unless fixed)."""
    from strategies.opendims import open_lengths

    lengths = open_lengths(spec, extra)
    rng = np.random.default_rng(seed)
    data = {}
    for inp in spec.inputs:
        shape = (inp.batch_size or 2,) + tuple(
            lengths.get((inp.name, axis), dim) for axis, dim in enumerate(inp.shape)
        )
        if inp.dtype.startswith("int"):
            data[inp.name] = rng.integers(0, inp.vocab or 2, size=shape).astype(inp.dtype)
        else:
            data[inp.name] = rng.uniform(-1.0, 1.0, size=shape).astype(inp.dtype)
    return data


def _open_positions(spec, structure):
    """``(where, TensorSpec, open axes)`` of each input of a traced argument structure that
    the model left open: a dict by input name, else in the model's input order."""
    import tensorflow as tf

    if isinstance(structure, dict):
        pairs = [(name, structure.get(name)) for name in spec.input_names()]
    else:
        leaves = tf.nest.flatten(structure)
        pairs = list(zip(spec.input_names(), leaves)) if len(leaves) == len(spec.inputs) else []
    by_name = {i.name: i for i in spec.inputs}
    return [
        (name, leaf, by_name[name].open_axes)
        for name, leaf in pairs
        if leaf is not None and hasattr(leaf, "shape") and by_name[name].open_axes
    ]


def _assert_open(shape, axes, what):
    dims = shape.as_list() if hasattr(shape, "as_list") else list(shape)
    fixed = [axis for axis in axes if dims[axis + 1] is not None]
    assert not fixed, (
        f"{what}: shape {dims} fixes the dimension(s) {[a + 1 for a in fixed]} the model left "
        "None (counting the batch axis as 0)"
    )


def check_dynamic_signatures(case):
    """``None`` stays ``None`` in serving_default (inputs and outputs) and in every traced
    signature of the root's saved call functions."""
    spec = case.spec
    inputs, outputs = tree.serving_signature(case.loaded)
    serving_names = calls.serving_feed(case.loaded, spec, {n: n for n in spec.input_names()})
    for key, name in serving_names.items():
        axes = next(i.open_axes for i in spec.inputs if i.name == name)
        _assert_open(inputs[key][1], axes, f"serving_default input {key!r}")
    for key, node_id in zip(expected_output_names(spec), spec.outputs):
        if key in outputs:
            _assert_open(outputs[key][1], spec.node(node_id).open_axes, f"serving output {key!r}")
    root = tree.keras_root(case.loaded)
    for name in tree.CALL_FUNCTIONS:
        concretes = tree.concrete_functions(root.function(name))
        assert concretes, f"keras_api.{name} of the root has no traced signature"
        for index, concrete in enumerate(concretes):
            args, _ = concrete.structured_input_signature
            for where, leaf, axes in _open_positions(spec, args[0] if args else None):
                _assert_open(leaf.shape, axes, f"keras_api.{name} trace {index}, input {where!r}")


def check_dynamic_calls(case, loaded_model):
    """At two lengths past the probe: serving_default, the root's ``__call__`` and the loaded
    model give the original's outputs."""
    import strategies

    spec = case.spec
    serving = case.loaded.signatures["serving_default"]
    root_call = tree.keras_root(case.loaded).require("__call__")
    names = expected_output_names(spec)
    for extra in _DYNAMIC_EXTRAS:
        data = _dynamic_data(spec, extra, seed=extra)
        inputs = strategies.call_inputs(spec, data)
        want = originals.outputs(case.model, inputs, training=False)
        where = f"open axes at probe length + {extra}"
        result = serving(**calls.serving_feed(case.loaded, spec, data))
        for index, (name, w) in enumerate(zip(names, want)):
            assert_close(result[name], w, f"serving_default ({where}), output {index}")
        got = calls.flat_numpy(calls.call(root_call, inputs, training=False))
        for index, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w, f"keras_api.__call__ ({where}), output {index}")
        if loaded_model is not None:
            got = originals.outputs(loaded_model, inputs, training=False)
            assert len(got) == len(want), f"the loaded model gives {len(got)} outputs"
            for index, (g, w) in enumerate(zip(got, want)):
                assert_close(g, w, f"the loaded model ({where}), output {index}")


def _open_kinds():
    from strategies.opendims import RULES

    return sorted(RULES)


@pytest.mark.clause("SIG-DYNAMIC")
@fresh_examples(open_dims=True, max_layers=4, kinds=_open_kinds())
def test_open_dimensions_stay_open(implementation, clause, example):
    spec, _ = example
    if getattr(implementation, "supports", None) and implementation.supports.get(
        "open_dims"
    ) is False:
        pytest.skip(f"{implementation.name} does not support open (None) input dimensions")
    assume(spec.open_inputs())  # drawn specs nothing could open
    with clause.example(spec):
        case = clause.case(spec)
        check_dynamic_signatures(case)
        try:
            loaded_model = implementation.load(case.path)
        except NotImplementedError:
            loaded_model = None  # no loader: the saved functions are still checked
        check_dynamic_calls(case, loaded_model)
