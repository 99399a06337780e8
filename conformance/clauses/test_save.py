"""SAVE-UNBUILT, SAVE-OVERWRITE, SAVE-OPTIMIZER, SAVE-SIGNATURES, SAVE-NO-MUTATION."""

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


@pytest.mark.clause("SAVE-OPTIMIZER")
def test_include_optimizer(implementation, clause):
    import tensorflow as tf

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
        model = strategies.build_model(spec, framework=implementation.framework)
        inputs = strategies.call_inputs(spec, data)
        before = _snapshot(model, inputs)
        implementation.save(model, clause.new_path("no-mutation"))
        _assert_same(before, _snapshot(model, inputs))
