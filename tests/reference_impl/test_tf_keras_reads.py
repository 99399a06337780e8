"""tf_keras' own loader reads what the reference writes.

``tf_keras.models.load_model`` rebuilds a layer from the tf_keras form of its config that
``keras_metadata.pb`` carries (``reference_impl.tf_keras_config``) and restores its weights
through the edges the saver adds beside ``keras_api``; a class tf_keras does not know (the
subclassed corpus models) is revived from the saved functions. Either way the loaded model
computes what the original did.

A few corpus specs run by default (one per topology); all 24 under the ``nightly``
Hypothesis profile, which the suite's plugin registers in a session that runs the suite:
``pytest tests/reference_impl/test_tf_keras_reads.py --conformance-impl=reference
--hypothesis-profile=nightly`` (or the whole ``pytest --hypothesis-profile=nightly``).
"""

import os

import numpy as np
import pytest

import reference_impl
from reference_impl import tf_keras_config
from reference_impl.metadata import KERAS_CONFIG_KEY, read_metadata

tf_keras = pytest.importorskip("tf_keras", reason="tf_keras is not installed")

# One per topology: sequential, functional with a revived custom layer inside, subclassed
# (revived as a whole), nested (a Sequential called inside a Functional model).
DEFAULT_SPECS = ("spec-00", "spec-08", "spec-03", "spec-17")


def _spec_names():
    from conformance import corpus
    from conformance.plugin.drawing import current_profile_name

    if current_profile_name() == "nightly":
        return corpus.corpus_names()
    return list(DEFAULT_SPECS)


def _outputs(result):
    import tensorflow as tf

    return [np.asarray(t) for t in tf.nest.flatten(result)]


@pytest.mark.parametrize("name", _spec_names())
def test_tf_keras_loads_reference_files_with_equal_outputs(name, tmp_path):
    from tf_keras.src.saving.legacy.saved_model.load import RevivedLayer

    import strategies
    from conformance import corpus
    from conformance.expected.tolerances import assert_close

    spec = corpus.corpus_spec(name)
    model = strategies.build_model(spec)
    path = os.fspath(tmp_path / "model")
    reference_impl.save(model, path)
    inputs = strategies.call_inputs(spec, corpus.corpus_inputs(spec))

    loaded = tf_keras.models.load_model(path)

    if spec.topology == "subclassed":
        assert isinstance(loaded, RevivedLayer), "an unknown model class is revived"
    else:
        assert not isinstance(loaded, RevivedLayer), f"{name} was revived, not rebuilt"
        assert type(loaded).__name__ in ("Functional", "Sequential")
    got = _outputs(loaded(inputs, training=False))
    want = _outputs(model(inputs, training=False))
    assert len(got) == len(want)
    for index, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, f"{name} loaded by tf_keras, output {index}")


def test_weights_are_restored_not_initialized(tmp_path):
    """A model rebuilt from its config holds the saved values, bitwise, not fresh ones."""
    import keras

    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, name="d")(inputs))
    model.get_layer("d").kernel.assign(np.arange(6, dtype="float32").reshape(3, 2))
    path = os.fspath(tmp_path / "model")
    reference_impl.save(model, path)

    loaded = tf_keras.models.load_model(path)

    np.testing.assert_array_equal(
        loaded.get_layer("d").kernel.numpy(), np.asarray(model.get_layer("d").kernel)
    )


def test_metadata_keeps_the_keras_config_beside_the_tf_keras_one(tmp_path):
    import keras

    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, name="d")(inputs))
    path = os.fspath(tmp_path / "model")
    reference_impl.save(model, path)

    by_name = {node.metadata["name"]: node.metadata for node in read_metadata(path)}
    assert by_name["x"][KERAS_CONFIG_KEY]["batch_shape"] == (None, 3)
    assert by_name["x"]["config"]["batch_input_shape"] == (None, 3)
    assert by_name["d"]["config"]["dtype"] == "float32"
    assert isinstance(by_name["d"][KERAS_CONFIG_KEY]["dtype"], dict)
    # The reference loader reads the Keras 3 config back.
    reloaded = reference_impl.load(path)
    assert isinstance(reloaded.get_layer("x"), keras.layers.InputLayer)


# -- the translation -----------------------------------------------------------------------


def test_input_layer_batch_shape_is_renamed():
    config = {"batch_shape": (None, 2), "dtype": "float32", "name": "x", "optional": False}
    out = tf_keras_config.translate("InputLayer", config)
    assert out == {"batch_input_shape": (None, 2), "dtype": "float32", "name": "x"}


def test_dtype_policy_becomes_its_name():
    policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float64"}}
    assert tf_keras_config.translate("Dense", {"dtype": policy})["dtype"] == "float64"


def test_argument_at_a_non_neutral_value_is_untranslatable():
    with pytest.raises(tf_keras_config.Untranslatable, match="rms_scaling"):
        tf_keras_config.translate("LayerNormalization", {"rms_scaling": True})
    assert tf_keras_config.translate("LayerNormalization", {"rms_scaling": False}) == {}


def test_initializer_arguments_tf_keras_lacks_are_dropped_at_their_neutral_value():
    initializer = {
        "module": "keras.initializers",
        "class_name": "GlorotUniform",
        "config": {"seed": None, "input_axes": None, "output_axes": None},
        "registered_name": None,
    }
    out = tf_keras_config.translate("Dense", {"kernel_initializer": initializer})
    assert out["kernel_initializer"]["config"] == {"seed": None}


def _tensor(name, node=0, index=0):
    return {"class_name": "__keras_tensor__", "config": {"keras_history": [name, node, index]}}


def test_functional_calls_become_tf_keras_node_lists():
    config = {
        "name": "m",
        "trainable": True,
        "layers": [
            {"class_name": "InputLayer", "name": "a", "config": {"name": "a"}, "inbound_nodes": []},
            {"class_name": "InputLayer", "name": "b", "config": {"name": "b"}, "inbound_nodes": []},
            {
                "class_name": "Add",
                "name": "add",
                "config": {"name": "add"},
                "inbound_nodes": [{"args": [[_tensor("a"), _tensor("b")]], "kwargs": {}}],
            },
        ],
        "input_layers": [["a", 0, 0], ["b", 0, 0]],
        "output_layers": [["add", 0, 0]],
    }
    out = tf_keras_config.translate("Functional", config)
    assert out["layers"][2]["inbound_nodes"] == [[["a", 0, 0, {}], ["b", 0, 0, {}]]]
    assert out["output_layers"] == [["add", 0, 0]]


def test_a_nested_model_is_referred_to_past_its_own_first_node():
    sub = {
        "class_name": "Sequential",
        "name": "sub",
        "config": {"name": "sub", "layers": [{"class_name": "InputLayer", "config": {}}]},
        "inbound_nodes": [{"args": [_tensor("x")], "kwargs": {"mask": None}}],
    }
    config = {
        "name": "m",
        "layers": [
            {"class_name": "InputLayer", "name": "x", "config": {"name": "x"}, "inbound_nodes": []},
            sub,
        ],
        "input_layers": [["x", 0, 0]],
        "output_layers": [["sub", 0, 0]],
    }
    out = tf_keras_config.translate("Functional", config)
    assert out["layers"][1]["inbound_nodes"] == [[["x", 0, 0, {"mask": None}]]]
    assert out["output_layers"] == [["sub", 1, 0]]


def test_a_call_with_two_positional_tensors_is_untranslatable():
    with pytest.raises(tf_keras_config.Untranslatable, match="2 positional"):
        tf_keras_config._node({"args": [_tensor("a"), _tensor("b")], "kwargs": {}}, set())


def test_reference_loader_reads_files_written_before_the_keras_config_key(tmp_path):
    """Older files hold the Keras 3 config in ``config`` itself; they still load bitwise."""
    import keras

    from reference_impl import integrity
    from reference_impl.metadata import MetadataNode, write_metadata

    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, name="d")(inputs))
    path = os.fspath(tmp_path / "model")
    reference_impl.save(model, path)
    old_nodes = []
    for node in read_metadata(path):
        record = dict(node.metadata)
        record["config"] = record.pop(KERAS_CONFIG_KEY)
        record.pop("model_config", None)
        old_nodes.append(MetadataNode(node.node_id, node.node_path, node.identifier, record))
    write_metadata(path, old_nodes)
    integrity.write_manifest(path)  # as the older saver wrote it

    loaded = reference_impl.load(path)

    assert type(loaded).__name__ == "Functional"
    for got, want in zip(loaded.weights, model.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
