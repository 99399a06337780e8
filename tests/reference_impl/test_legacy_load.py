"""``reference_impl.load`` reads what tf_keras writes: Keras 2 configs translated to Keras 3,
variables matched through the object graph, the rest revived, nothing called corrupt."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

import reference_impl
import strategies
from conformance import corpus
from conformance.expected import originals
from conformance.expected.tolerances import assert_close
from reference_impl import legacy_config
from reference_impl.revive import RevivedLayer, RevivedSequential
from strategies.catalog import custom

# The corpus specs the reference refused before the translation (tf_keras 2.21 files), each
# for what it needs: hard_sigmoid (02, 18), SpatialDropout1D's arguments (04), ConvLSTM1D,
# whose cell Keras 3 does not export (07), Keras 3's seed generator variables (08, 09), a
# nested Sequential's node indices (17), mixed float16 (22). All rebuild from their config.
SPECS = ["spec-02", "spec-04", "spec-07", "spec-08", "spec-09", "spec-17", "spec-18", "spec-22"]


def _outputs(model, spec, inputs):
    result = model(inputs, training=False)
    if isinstance(result, dict):
        return [np.asarray(result[name]) for name in spec.output_names()]
    return [np.asarray(x) for x in keras.tree.flatten(result)]


@pytest.mark.parametrize("name", SPECS)
def test_tf_keras_corpus_file_loads_with_equal_outputs(tmp_path, name):
    custom.custom_objects(keras)  # the registered corpus classes, as a user would import them
    spec = corpus.corpus_spec(name)
    model = strategies.build_model(spec, framework="tf_keras")
    model.save(str(tmp_path / "m"), save_format="tf")
    inputs = strategies.call_inputs(spec, corpus.corpus_inputs(spec))
    want = originals.outputs(model, inputs, training=False)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = reference_impl.load(str(tmp_path / "m"))
    got = _outputs(loaded, spec, inputs)

    assert len(got) == len(want)
    for index, (g, w) in enumerate(zip(got, want, strict=True)):
        assert_close(g, w, f"{name} output {index}")
    assert not isinstance(loaded, RevivedLayer | RevivedSequential), [
        str(w.message) for w in caught
    ]


def _stateful_class(framework):
    """A layer with a non-trainable ``state``, a trainable ``weight`` and a Dense sublayer,
    registered under one name in ``framework`` (keras or tf_keras)."""

    @framework.saving.register_keras_serializable(package="test_legacy_load")
    class Stateful(framework.layers.Layer):
        def build(self, shape):
            self.state = self.add_weight(
                name="state", shape=(shape[-1],), initializer="zeros", trainable=False
            )
            self.weight = self.add_weight(name="weight", shape=(shape[-1],), initializer="ones")
            self.inner = framework.layers.Dense(shape[-1], name="inner")
            self.inner.build(shape)

        def call(self, x):
            return self.inner(x) * self.weight + self.state

    return Stateful


def test_variables_are_matched_by_name_not_position(tmp_path):
    """tf_keras lists a layer's trainable variables (its sublayers' included) before its
    non-trainable ones; Keras 3 a layer's own variables before its sublayers': by position
    ``Stateful``'s state would take the Dense's kernel values, or the shapes would refuse."""
    import tf_keras

    _stateful_class(keras)
    inputs = tf_keras.Input((3,))
    x = tf_keras.layers.BatchNormalization(name="bn")(inputs)
    x = _stateful_class(tf_keras)(name="stateful")(x)
    model = tf_keras.Model(inputs, x)
    for i, variable in enumerate(model.variables):
        variable.assign(np.full(variable.shape, 1.0 + i, "float32"))
    model.save(str(tmp_path / "m"), save_format="tf")

    loaded = reference_impl.load(str(tmp_path / "m"))

    assert not isinstance(loaded, RevivedLayer)
    # Each variable name is unique here (tf_keras scopes the Dense's as stateful/kernel).
    want = {v.name.split(":")[0].rsplit("/", 1)[-1]: v.numpy() for v in model.variables}
    got = {v.name: np.asarray(v) for v in loaded.variables}
    assert [v.name for v in loaded.variables] != list(want)  # what this test is about
    assert got.keys() == want.keys()
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    x = np.linspace(-1, 1, 6, dtype="float32").reshape(2, 3)
    assert_close(loaded(x, training=False), model(x, training=False), "outputs")


def test_untranslatable_config_is_revived_not_corrupt(tmp_path):
    import tf_keras

    inputs = tf_keras.Input((3,))
    outputs = tf_keras.layers.BatchNormalization(renorm=True, name="renormed")(inputs)
    model = tf_keras.Model(inputs, outputs)
    model.save(str(tmp_path / "m"), save_format="tf")
    x = np.linspace(-1, 1, 6, dtype="float32").reshape(2, 3)

    with pytest.warns(UserWarning, match="renorm"):
        loaded = reference_impl.load(str(tmp_path / "m"))

    assert isinstance(loaded, RevivedLayer)
    assert_close(loaded(x, training=False), model(x, training=False), "outputs")


def test_revived_float64_inputs_are_not_cast_to_float32(tmp_path):
    import tf_keras

    class Unregistered(tf_keras.layers.Layer):
        def call(self, x):
            return x * 1.0000001

    inputs = tf_keras.Input((2,), dtype="float64")
    model = tf_keras.Model(inputs, Unregistered(dtype="float64")(inputs))
    model.save(str(tmp_path / "m"), save_format="tf")
    x = np.array([[1.0 + 1e-12, 3.0]], "float64")

    with pytest.warns(UserWarning, match="Reviving"):
        loaded = reference_impl.load(str(tmp_path / "m"))

    np.testing.assert_array_equal(np.asarray(loaded(x)), model(x).numpy())


def test_translate_reads_keras2_configs():
    sub = {
        "class_name": "Sequential",
        "config": {"name": "sub", "layers": []},
        "name": "sub",
        "inbound_nodes": [[["in", 0, 0, {}]]],
    }
    functional = {
        "class_name": "Functional",
        "config": {
            "name": "model",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "name": "in",
                    "config": {"batch_input_shape": [None, 3], "dtype": "float64",
                               "ragged": False, "name": "in"},
                    "inbound_nodes": [],
                },
                sub,
                {
                    "class_name": "Dense",
                    "name": "d",
                    "config": {"name": "d", "units": 1, "activation": "hard_sigmoid",
                               "dtype": {"class_name": "Policy",
                                         "config": {"name": "mixed_float16"}},
                               "kernel_initializer": {"class_name": "Zeros", "config": {},
                                                      "shared_object_id": 3}},
                    "inbound_nodes": [[["sub", 1, 0, {}]]],
                },
            ],
            "input_layers": [["in", 0, 0]],
            "output_layers": [["d", 0, 0]],
        },
    }
    assert legacy_config.is_legacy({"class_name": "Functional", "keras_version": "2.15.0"})
    assert not legacy_config.is_legacy({"class_name": "Functional", "module": "keras"})

    out = legacy_config.translate(functional)["config"]

    layer_in, _, dense = out["layers"]
    assert layer_in["config"]["batch_shape"] == [None, 3]
    assert "batch_input_shape" not in layer_in["config"]
    assert dense["config"]["dtype"] == "mixed_float16"
    assert dense["inbound_nodes"] == [[["sub", 0, 0, {}]]]  # Keras 3's Sequential: no node 0
    assert "shared_object_id" not in dense["config"]["kernel_initializer"]
    activation = keras.saving.deserialize_keras_object(dense["config"]["activation"])
    assert float(activation(np.float32(1.0))) == pytest.approx(0.7)  # Keras 3's: 0.6667


def test_unknown_dtype_policy_does_not_translate():
    with pytest.raises(legacy_config.Untranslatable, match="dtype policy"):
        legacy_config.translate(
            {"class_name": "Dense", "config": {"name": "d", "units": 1,
                                               "dtype": {"class_name": "Odd", "config": {}}}}
        )
