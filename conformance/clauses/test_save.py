"""SAVE-UNBUILT, SAVE-OVERWRITE, SAVE-OPTIMIZER, SAVE-SIGNATURES, SAVE-NO-MUTATION,
SAVE-ASSETS."""

import os

import numpy as np
import pytest

from conformance.expected import fixtures, originals
from conformance.expected.tolerances import assert_bitwise, assert_close
from conformance.plugin.drawing import fresh_examples
from conformance.savedmodel import files, tree


def _no_call_functions(node):
    if node.keras_api is None:
        return True
    return all(
        not tree.concrete_functions(node.function(name)) for name in tree.CALL_FUNCTIONS
    )


@pytest.mark.clause("SAVE-UNBUILT")
def test_inputless_model_is_refused(implementation, clause):
    K = fixtures.keras_module(implementation.framework)
    model = fixtures.unbuilt_sequential(K)
    with clause.example({"model": "Sequential([Dense]) without inputs"}):
        path = clause.new_path("unbuilt")
        parent = os.path.dirname(path)
        before = set(os.listdir(parent))
        try:
            implementation.save(model, path)
        except Exception:
            pass  # tf_keras' save refuses it (raise_model_input_error): so must this one
        else:
            raise AssertionError(
                "saving a model whose inputs are unknown (never built or called) succeeded; "
                "tf_keras' save refuses it with an error before writing anything"
            )
        assert not os.path.lexists(path), (
            f"the refused save left {sorted(files.relative_files(path))[:5] or 'an entry'} "
            "at the path"
        )
        left = sorted(set(os.listdir(parent)) - before)
        assert not left, f"the refused save left {left[:5]} beside the path"


@pytest.mark.clause("SAVE-UNBUILT")
def test_unbuilt_sub_layer_saves_with_warning(implementation, clause):
    K = fixtures.keras_module(implementation.framework)
    model = fixtures.model_with_unbuilt_layer(K)
    with clause.example({"model": "subclassed model holding a never-called Dense"}):
        path, messages = clause.save(model, "unbuilt-layer")
        assert any("never_called_dense" in m for m in messages), (
            f"no warning names the unbuilt layer 'never_called_dense'; messages: {messages[:5]}"
        )
        nodes = tree.walk(tree.load(path))
        unbuilt = [
            node
            for node in nodes
            if node.keras_api is not None and not node.objects("variables") and node.path != "root"
        ]
        assert unbuilt, "the unbuilt layer is missing from the saved layer tree"
        assert all(_no_call_functions(node) for node in unbuilt), (
            "the unbuilt layer was saved with call functions"
        )
        assert not _no_call_functions(nodes[0]), "the built root lost its call functions"


@pytest.mark.clause("SAVE-OVERWRITE")
def test_overwrite_false_keeps_existing_files(implementation, clause):
    K = fixtures.keras_module(implementation.framework)
    first = fixtures.small_functional(K, name="first", units=3)
    second = fixtures.small_functional(K, name="second", units=5)
    with clause.example({"models": "two small functional models, same path"}):
        path = clause.new_path("overwrite")
        implementation.save(first, path)
        before = files.tree_digest(path)
        try:
            implementation.save(second, path, overwrite=False)
        except FileExistsError:
            pass
        except Exception as exc:
            raise AssertionError(
                f"overwrite=False on an existing path raised {type(exc).__name__} "
                f"({exc}), not FileExistsError"
            ) from exc
        assert files.tree_digest(path) == before, "overwrite=False changed the existing files"
        implementation.save(second, path, overwrite=True)
        assert files.tree_digest(path) != before, "overwrite=True did not replace the files"
        loaded = tree.load(path)
        saved = tree.keras_root(loaded).objects("variables")
        saved_shapes = [v.shape.as_list() for v in saved]
        assert saved_shapes == [list(v.shape) for v in second.variables], (
            "after overwrite=True the path does not hold the new model"
        )


def _trained_spec():
    """A one-Dense Sequential compiled with Adam and trained one step, as a spec: what an
    implementation in another process builds for SAVE-OPTIMIZER."""
    from dataclasses import replace

    from conformance import corpus
    from strategies.spec import TrainingSpec

    spec = corpus.corpus_spec(corpus.corpus_names()[0])
    n = len(spec.outputs)
    return replace(
        spec, training=TrainingSpec("adam", 0.01, ("mse",) * n, (1.0,) * n, ((),) * n, steps=1)
    )


def _check_optimizer_keys(with_opt, values_by_name):
    import tensorflow as tf

    keys = files.optimizer_value_keys(with_opt)
    assert keys, "include_optimizer=True wrote no optimizer variables"
    reader = tf.train.load_checkpoint(os.path.join(with_opt, "variables", "variables"))
    saved_values = {reader.get_tensor(key).tobytes() for key in keys}
    for name, value in values_by_name:
        if value.ndim > 0:  # slots; scalars (iterations, learning rate) may be re-derived
            assert value.tobytes() in saved_values, (
                f"optimizer variable {name} was not saved bitwise"
            )


@pytest.mark.clause("SAVE-OPTIMIZER")
def test_include_optimizer(implementation, clause):
    import tensorflow as tf

    optimizer_report = getattr(implementation, "optimizer_report", None)
    if optimizer_report is not None:
        # An implementation in another process: its worker trains and saves the model.
        spec = _trained_spec()
        with clause.example(spec):
            without = clause.new_path("no-optimizer")
            with_opt = clause.new_path("with-optimizer")
            report = optimizer_report(spec, without, with_opt)
            written = files.optimizer_value_keys(without)
            assert written == [], (
                f"include_optimizer=False wrote optimizer variables: {written[:5]}"
            )
            assert report["same_optimizer"], "saving replaced model.optimizer"
            for (name, value), (_, after) in zip(report["before"], report["after"]):
                assert_bitwise(after, value, f"optimizer variable {name}")
            _check_optimizer_keys(with_opt, report["before"])
        return
    K = fixtures.keras_module(implementation.framework)
    model = fixtures.trained_compiled(K)
    optimizer = model.optimizer
    values = [np.array(v.numpy()) for v in originals.optimizer_variables(model)]
    with clause.example({"model": "small functional, Adam, one training step"}):
        without = clause.new_path("no-optimizer")
        implementation.save(model, without, include_optimizer=False)
        written = files.optimizer_value_keys(without)
        assert written == [], f"include_optimizer=False wrote optimizer variables: {written[:5]}"
        assert model.optimizer is optimizer, "saving replaced model.optimizer"
        for variable, value in zip(originals.optimizer_variables(model), values):
            assert_bitwise(variable.numpy(), value, f"optimizer variable {variable.name}")
        with_opt = clause.new_path("with-optimizer")
        implementation.save(model, with_opt, include_optimizer=True)
        keys = files.optimizer_value_keys(with_opt)
        assert keys, "include_optimizer=True wrote no optimizer variables"
        reader = tf.train.load_checkpoint(os.path.join(with_opt, "variables", "variables"))
        saved_values = {reader.get_tensor(key).tobytes() for key in keys}
        for variable, value in zip(originals.optimizer_variables(model), values):
            if value.ndim > 0:  # slots; scalars (iterations, learning rate) may be re-derived
                assert value.tobytes() in saved_values, (
                    f"optimizer variable {variable.name} was not saved bitwise"
                )


@pytest.mark.clause("SAVE-SIGNATURES")
def test_signatures_written_as_given(implementation, clause):
    import tensorflow as tf

    K = fixtures.keras_module(implementation.framework)
    model = fixtures.small_functional(K, name="signed")

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
    def predict(features):
        return {"scores": model(features, training=False)}

    with clause.example({"signatures": "{'predict_scores': predict}"}):
        path = clause.new_path("signatures")
        implementation.save(model, path, signatures={"predict_scores": predict})
        loaded = tree.load(path)
        assert sorted(loaded.signatures.keys()) == ["predict_scores"], (
            f"signatures written: {sorted(loaded.signatures.keys())}, given: ['predict_scores']"
        )
        inputs, outputs = tree.serving_signature(loaded, "predict_scores")
        assert inputs == {"features": ("float32", [None, 4])}
        assert list(outputs) == ["scores"]
        x = np.linspace(-1, 1, 8, dtype="float32").reshape(2, 4)
        got = loaded.signatures["predict_scores"](features=tf.constant(x))["scores"]
        assert_close(got, np.asarray(model(x, training=False)), "predict_scores output")


def _snapshot(model, inputs):
    import tensorflow as tf

    outs = originals.outputs(model, inputs, training=False)
    return {
        "outputs": outs,
        "losses": [np.asarray(loss) for loss in model.losses],
        "variables": [(v.name, np.array(v.numpy())) for v in model.variables],
        "trainable": [v.name for v in model.trainable_variables],
        "layer_trainable": [(layer.name, layer.trainable) for layer in model._flatten_layers()],
        "calls": [
            (layer.name, layer.__dict__.get("call"), type(layer).call)
            for layer in model._flatten_layers()
        ],
        "seeds": originals.seed_states(model),
        "optimizer": id(getattr(model, "optimizer", None)),
        "structure": tf.nest.map_structure(lambda _: 0, model(inputs, training=False)),
    }


def _assert_same(before, after):
    for key in ("trainable", "layer_trainable", "optimizer", "structure"):
        assert before[key] == after[key], f"save changed the model's {key}"
    assert [s[:2] for s in before["seeds"]] == [s[:2] for s in after["seeds"]], (
        "save changed the model's seed generators"
    )
    for (layer, what, b), (_, _, a) in zip(before["seeds"], after["seeds"]):
        assert np.array_equal(np.asarray(a), np.asarray(b)), (
            f"save changed layer {layer!r}'s {what}: {b} before, {a} after"
        )
    assert [n for n, _ in before["variables"]] == [n for n, _ in after["variables"]], (
        "save changed the model's variable list"
    )
    for (name, b), (_, a) in zip(before["variables"], after["variables"]):
        assert_bitwise(a, b, f"variable {name} after save")
    for index, (b, a) in enumerate(zip(before["outputs"], after["outputs"])):
        assert_bitwise(a, b, f"output {index} after save")
    assert len(before["losses"]) == len(after["losses"]), "save changed the number of losses"
    for index, (b, a) in enumerate(zip(before["losses"], after["losses"])):
        assert_bitwise(a, b, f"loss {index} after save")
    for (name, own_b, cls_b), (_, own_a, cls_a) in zip(before["calls"], after["calls"]):
        assert own_a is own_b and cls_a is cls_b, f"save left layer {name!r}'s call replaced"


@pytest.mark.clause("SAVE-NO-MUTATION")
@fresh_examples()
def test_model_unchanged_by_save(implementation, clause, example):
    import strategies

    spec, data = example
    with clause.example(spec):
        save_unchanged = getattr(implementation, "save_unchanged", None)
        if save_unchanged is not None:
            # An implementation in another process: the worker compares its own model.
            problems = save_unchanged(spec, data, clause.new_path("no-mutation"))
            assert not problems, "; ".join(problems)
            return
        model = clause.build(spec)
        inputs = strategies.call_inputs(spec, data)
        before = _snapshot(model, inputs)
        implementation.save(model, clause.new_path("no-mutation"))
        _assert_same(before, _snapshot(model, inputs))


# --- SAVE-ASSETS ---------------------------------------------------------------------------


def _asset_spec(string_vocab, int_vocab):
    """Functional: StringLookup and IntegerLookup, each with a vocabulary file, into Dense."""
    from strategies.spec import InputSpec, LayerSpec, ModelSpec, freeze_params

    def lookup(node_id, kind, source, vocab, universe):
        params = {"source": "file", "universe": universe, "vocabulary": vocab,
                  "output_mode": "count"}
        return LayerSpec(node_id, kind, (source,), freeze_params(params),
                         out_shape=(len(vocab) + 1,), layer_name=f"{node_id}_{kind.lower()}")

    dense = freeze_params({"units": 2, "activation": "linear", "use_bias": True})
    width = len(string_vocab) + len(int_vocab) + 2
    nodes = (
        lookup("n0", "StringLookup", "in_0", string_vocab, 8),
        lookup("n1", "IntegerLookup", "in_1", int_vocab, 8),
        LayerSpec("n2", "Concatenate", ("n0", "n1"), out_shape=(width,),
                  layer_name="n2_concatenate"),
        LayerSpec("n3", "Dense", ("n2",), dense, out_shape=(2,), layer_name="n3_dense"),
    )
    inputs = (InputSpec("in_0", (3,), "string", vocab=8), InputSpec("in_1", (3,), "int32", vocab=8))
    return ModelSpec(inputs=inputs, nodes=nodes, outputs=("n3",), seed=7)


_ASSET_DATA = {
    "in_0": np.array([["w0", "w1", "w7"], ["w3", "w3", "w5"]]),
    "in_1": np.array([[0, 1, 7], [2, 6, 6]], dtype="int32"),
}

_SERVE = """
import json, sys
import numpy as np
import tensorflow as tf
path, data = sys.argv[1], json.loads(sys.argv[2])
fn = tf.saved_model.load(path).signatures["serving_default"]
names = sorted(fn.structured_input_signature[1])
keys = names if set(names) == set(data) else sorted(data)
args = {n: tf.constant(np.array(data[k], dtype=fn.structured_input_signature[1][n].dtype.name
        if fn.structured_input_signature[1][n].dtype != tf.string else object))
        for n, k in zip(names, keys)}
out = fn(**args)
print(json.dumps([np.asarray(out[k]).tolist() for k in sorted(out)]))
"""


def _serve_in_fresh_process(path):
    import json
    import subprocess
    import sys

    data = {k: v.tolist() for k, v in _ASSET_DATA.items()}
    run = subprocess.run(
        [sys.executable, "-c", _SERVE, os.fspath(path), json.dumps(data)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, (
        f"serving_default failed in a fresh process: {run.stderr.strip().splitlines()[-3:]}"
    )
    return [np.array(o) for o in json.loads(run.stdout.strip().splitlines()[-1])]


def _asset_files(path):
    root = os.path.join(path, "assets")
    if not os.path.isdir(root):
        return {}
    out = {}
    for name in sorted(os.listdir(root)):
        with open(os.path.join(root, name), "rb") as f:
            out[name] = f.read()
    return out


def _build_with_assets(implementation, spec):
    import strategies
    from strategies.catalog.preprocessing import vocabulary_files

    model = strategies.build_model(spec, framework=implementation.framework)
    expected = np.asarray(model(strategies.call_inputs(spec, _ASSET_DATA)))
    originals = vocabulary_files(spec)
    contents = {}
    for f in originals:
        with open(f, "rb") as fh:
            contents[f] = fh.read()
    return model, expected, contents


@pytest.mark.clause("SAVE-ASSETS")
def test_assets_travel_with_the_saved_model(implementation, clause):
    from tensorflow.core.protobuf import saved_model_pb2

    spec = _asset_spec((0, 2, 3), (1, 2, 6))
    with clause.example(spec):
        model, expected, originals = _build_with_assets(implementation, spec)
        path = clause.new_path("assets")
        implementation.save(model, path)
        assets = _asset_files(path)
        missing = [f for f, text in originals.items() if text not in assets.values()]
        assert not missing, f"no file under assets/ holds the vocabulary of {missing}"
        proto = saved_model_pb2.SavedModel()
        with open(os.path.join(path, "saved_model.pb"), "rb") as f:
            proto.ParseFromString(f.read())
        named = [a.filename for a in proto.meta_graphs[0].asset_file_def]
        assert named and all(not os.path.isabs(n) and n in assets for n in named), (
            f"saved_model.pb names its assets {named}, not files under assets/ ({sorted(assets)})"
        )
        metadata_file = os.path.join(path, "keras_metadata.pb")  # a plain SavedModel has none
        metadata = b""
        if os.path.exists(metadata_file):
            with open(metadata_file, "rb") as f:
                metadata = f.read()
        absolute = [o for o in originals if o.encode() in metadata]
        assert not absolute, f"keras_metadata.pb holds the original vocabulary paths {absolute}"
        for f in originals:
            os.remove(f)
        served = _serve_in_fresh_process(path)
        assert_close(served[0], expected, "serving_default after the vocabulary files went")


@pytest.mark.clause("SAVE-ASSETS")
def test_saving_over_a_model_leaves_no_stale_asset(implementation, clause):
    first = _asset_spec((0, 2, 3), (1, 2, 6))
    second = _asset_spec((1, 4), (0, 3, 5, 7))
    with clause.example({"first": repr(first), "second": repr(second)}):
        model_a, _, originals_a = _build_with_assets(implementation, first)
        model_b, expected_b, originals_b = _build_with_assets(implementation, second)
        path = clause.new_path("assets-over")
        implementation.save(model_a, path)
        implementation.save(model_b, path)
        assets = _asset_files(path)
        stale = [name for name, text in assets.items() if text in originals_a.values()]
        assert not stale, f"assets of the earlier save left behind: {stale}"
        assert sorted(assets.values()) == sorted(originals_b.values()), (
            f"assets/ holds {sorted(assets)}, not the second model's vocabularies only"
        )
        served = _serve_in_fresh_process(path)
        assert_close(served[0], expected_b, "serving_default of the model saved over")
