"""``reference_impl.save``: what it writes, read back with plain ``tf.saved_model.load``."""

from __future__ import annotations

import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import reference_impl
from conformance.savedmodel import functions, tree
from reference_impl import errors, metadata
from tests.reference_impl import models as test_models

TOLERANCE = {"float16": 1e-3, "bfloat16": 1e-2, "float32": 1e-6, "float64": 1e-6}

# The format's attribute lists as the suite reads them: the reference is checked against the
# contract's lists, not against its own.
LAYER_OBJECTS = tree.LAYER_OBJECTS
LAYER_FUNCTIONS = tree.CALL_FUNCTIONS


def has_call_function(saved_object, name="__call__"):
    """Whether a loaded object has the saved function ``name`` (not Python's callable())."""
    return getattr(saved_object, name, None) is not None


def assert_close(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    tol = TOLERANCE.get(str(expected.dtype), 1e-6)
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)


def assert_bitwise(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    assert actual.tobytes() == expected.tobytes()


class Saved:
    """A model, its sample input, where it was saved, and the plain TF view of it."""

    def __init__(self, name, model, x, path):
        self.name, self.model, self.x, self.path = name, model, x, path
        self.loaded = tf.saved_model.load(path)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Every test model saved once; tests only read them."""
    keras.utils.set_random_seed(0)
    result = {}
    for name, build in test_models.BUILDERS.items():
        model = build()
        path = str(tmp_path_factory.mktemp("save") / name)
        reference_impl.save(model, path)
        result[name] = Saved(name, model, test_models.SAMPLES[name](), path)
    return result


def expected_outputs(model, x):
    return tf.nest.map_structure(np.asarray, model(x, training=False))


def call_loaded(loaded, x, training=False):
    try:
        return loaded(x, training=training)
    except (TypeError, ValueError):
        return loaded(x)


@pytest.mark.parametrize("name", list(test_models.BUILDERS))
def test_inference_outputs_match(saved, name):
    case = saved[name]
    expected = expected_outputs(case.model, case.x)
    actual = call_loaded(case.loaded, case.x)
    tf.nest.map_structure(assert_close, actual, expected)
    actual_api = call_loaded(case.loaded.keras_api, case.x)
    tf.nest.map_structure(assert_close, actual_api, expected)


@pytest.mark.parametrize("name", list(test_models.BUILDERS))
def test_variables_saved_bitwise_in_model_order(saved, name):
    case = saved[name]
    loaded_vars = case.loaded.keras_api.variables
    assert len(loaded_vars) == len(case.model.variables)
    for got, want in zip(loaded_vars, case.model.variables, strict=True):
        assert_bitwise(got.numpy(), want.numpy())
    assert len(case.loaded.keras_api.trainable_variables) == len(case.model.trainable_variables)
    assert len(case.loaded.keras_api.non_trainable_variables) == len(
        case.model.non_trainable_variables
    )
    assert case.loaded.variables is case.loaded.keras_api.variables


def test_each_variable_saved_once(saved):
    reader = tf.train.load_checkpoint(os.path.join(saved["nested"].path, "variables", "variables"))
    values = [k for k in reader.get_variable_to_shape_map() if k.endswith("VARIABLE_VALUE")]
    assert len(values) == len(saved["nested"].model.variables)


def test_keras_api_attribute_sets(saved):
    loaded = saved["functional"].loaded
    for name in ("variables", "trainable_variables", "regularization_losses", "keras_api"):
        assert hasattr(loaded, name), name
    for name in ("__call__", "call_and_return_all_conditional_losses"):
        assert hasattr(loaded, name), name
    api = loaded.keras_api
    for name in (*LAYER_OBJECTS, *LAYER_FUNCTIONS, "_default_save_signature"):
        assert hasattr(api, name), name
    # Every sub-layer (input layers included) has keras_api; the called ones have functions.
    layer_names = [layer.name for layer in saved["functional"].model.layers]
    assert len(api.layers) == len(saved["functional"].model._layers)
    for child in api.layers:
        for name in LAYER_OBJECTS:
            assert hasattr(child.keras_api, name), name
        assert not hasattr(child.keras_api, "_default_save_signature")
    called = [c for c in api.layers if has_call_function(c.keras_api)]
    assert len(called) == len([n for n in layer_names if n != "x"])


def test_serving_signature_names_functional(saved):
    signature = saved["functional"].loaded.signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["x"]
    assert sorted(signature.structured_outputs) == ["first_output", "second_output"]
    out = signature(x=tf.constant(saved["functional"].x))
    first, second = expected_outputs(saved["functional"].model, saved["functional"].x)
    assert_close(out["first_output"], first)
    assert_close(out["second_output"], second)


def test_serving_signature_names_subclassed(saved):
    signature = saved["subclassed"].loaded.signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["inputs"]
    assert list(signature.structured_outputs) == ["output_1"]
    assert signature.structured_input_signature[1]["inputs"].shape.as_list() == [None, 4]


def test_serving_signature_dict_inputs_and_outputs_keep_their_keys(saved):
    signature = saved["dict_io"].loaded.signatures["serving_default"]
    assert sorted(signature.structured_input_signature[1]) == ["a", "b"]
    assert sorted(signature.structured_outputs) == ["y", "z"]


def test_serving_signature_subclassed_list_inputs(saved):
    signature = saved["subclassed_list"].loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    assert sorted(inputs) == ["inputs_0", "inputs_1"]
    assert inputs["inputs_1"].shape.as_list() == [None, 1, 1]


def test_serving_signature_sequential_named_after_input_and_last_layer(saved):
    signature = saved["sequential"].loaded.signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["features"]
    assert list(signature.structured_outputs) == ["dense_b"]


def test_training_argument_changes_outputs(saved):
    case = saved["batchnorm_dropout"]
    fn = case.loaded.keras_api.call_and_return_conditional_losses
    inference, _ = fn(case.x, False)
    training, _ = fn(case.x, True)
    assert not np.allclose(inference, training)
    assert_close(inference, expected_outputs(case.model, case.x))
    # The BatchNormalization layer on its own: training normalizes with the batch statistics.
    norm = next(c for c in case.loaded.keras_api.layers if _has_fn(c) and _n_vars(c) == 4)
    hidden = np.random.default_rng(1).normal(3.0, 2.0, (8, 6)).astype("float32")
    normalized = norm.keras_api.__call__(hidden, True)
    assert np.allclose(np.mean(normalized, axis=0), 0.0, atol=1e-3)


def _has_fn(node):
    return has_call_function(node.keras_api)


def _n_vars(node):
    return len(node.keras_api.variables)


def test_layers_without_training_take_no_training_argument(saved):
    case = saved["functional"]
    index = [layer.name for layer in case.model._layers].index("merge")
    merge = case.loaded.keras_api.layers[index].keras_api
    halves = [np.ones((2, 4), "float32"), np.zeros((2, 4), "float32")]
    assert_close(merge.__call__(halves), np.concatenate(halves, axis=-1))
    with pytest.raises((TypeError, ValueError)):
        merge.__call__(halves, True)
    # Keras 3's Dense takes `training`, so its functions do too.
    dense = case.loaded.keras_api.layers[index - 1].keras_api
    assert_close(dense.__call__(np.ones((2, 6), "float32"), False).shape, (2, 4))


def test_weight_regularization_losses(saved):
    case = saved["regularized"]
    model = case.model
    weight_losses = [float(loss) for loss in model._get_regularization_losses()]
    # embeddings, rnn kernel + recurrent kernel, dense kernel + bias, gamma, beta
    assert len(weight_losses) == 7
    saved_losses = [float(fn()) for fn in case.loaded.regularization_losses]
    np.testing.assert_allclose(saved_losses, weight_losses, rtol=1e-6)
    # Each layer lists its own; the RNN's recurrent kernel belongs to its cell.
    per_layer = {}
    for child, layer in zip(case.loaded.keras_api.layers, model._layers, strict=True):
        per_layer[layer.name] = len(child.keras_api.regularization_losses)
    assert per_layer == {
        "tokens": 0,
        "embed": 1,
        "rnn": 2,
        "dense": 2,
        "norm": 2,
        "add_loss": 0,
        "out": 0,
    }
    dense = case.loaded.keras_api.layers[3]
    assert len(dense.keras_api.layer_regularization_losses) == 2


def test_conditional_losses_activity_and_add_loss(saved):
    case = saved["regularized"]
    model = case.model
    model(case.x)
    input_losses = [float(x) for x in model.losses[: len(model.losses) - 7]]
    assert len(input_losses) == 2  # the activity regularizer and add_loss
    _, losses = case.loaded.call_and_return_all_conditional_losses(case.x, False)
    np.testing.assert_allclose(sorted(float(x) for x in losses), sorted(input_losses), rtol=1e-5)
    # On the Dense layer: the activity loss is in the "all" variant only.
    dense = case.loaded.keras_api.layers[3]
    hidden = np.ones((2, 5), "float32")
    _, without = dense.keras_api.call_and_return_conditional_losses(hidden, False)
    outputs, with_all = dense.keras_api.call_and_return_all_conditional_losses(hidden, False)
    assert len(without) == 0 and len(with_all) == 1
    # The regularizer itself; the call divides by the batch size (2), as Keras 3 does.
    raw = 0.05 * np.sum(np.abs(outputs))
    np.testing.assert_allclose(
        float(dense.keras_api.activity_regularizer_fn(outputs)), raw, rtol=1e-5
    )
    np.testing.assert_allclose(float(with_all[0]), raw / 2, rtol=1e-5)


def test_shared_layer_is_one_node_traced_for_both_shapes(saved):
    case = saved["shared"]
    api = case.loaded.keras_api
    assert len(api.layers) == 1
    shared = api.layers[0].keras_api
    traces = sorted(
        (len(fn.structured_input_signature[0][0].shape), fn.structured_input_signature[0][1])
        for fn in shared.__call__.concrete_functions
    )
    assert traces == [(2, False), (2, True), (3, False), (3, True)]
    assert_close(shared.__call__(np.ones((2, 2, 4), "float32"), False).shape, (2, 2, 3))


def test_parent_calls_children_traced_functions(saved):
    """The root's trace holds function calls, not the children's own ops."""
    api = saved["sequential"].loaded.keras_api
    graph = api.call_and_return_conditional_losses.concrete_functions[0].graph
    op_types = {op.type for op in graph.get_operations()}
    assert "MatMul" not in op_types
    assert op_types & {"StatefulPartitionedCall", "PartitionedCall"}


@pytest.mark.parametrize("name", sorted(test_models.BUILDERS))
def test_serving_signature_is_one_flat_function(saved, name):
    """As tf_keras' default signature: the layers' ops, no calls into their saved functions."""
    assert functions.layer_functions_called_by_signature(saved[name].path) == []


def test_dense_batchnorm_dense_serves_flat_and_equal(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((4,), name="x"),
            keras.layers.Dense(3, name="first"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Dense(2, name="out"),
        ]
    )
    x = test_models.sample((3, 4))
    model(x, training=True)  # moves the BatchNormalization statistics off their initial values
    path = str(tmp_path / "m")
    reference_impl.save(model, path)
    assert functions.layer_functions_called_by_signature(path) == []
    loaded = tf.saved_model.load(path)
    assert_close(loaded.signatures["serving_default"](x=tf.constant(x))["out"], model(x))
    # the layers' own functions still call their children's (saving stays linear)
    graph = loaded.keras_api.__call__.concrete_functions[0].graph
    assert {op.type for op in graph.get_operations()} & {"StatefulPartitionedCall"}


def test_unbuilt_layer_saved_without_functions_and_one_warning(tmp_path):
    model = test_models.with_unbuilt_layer()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reference_impl.save(model, str(tmp_path / "m"))
    skipped = [w for w in caught if "Skipping full serialization" in str(w.message)]
    assert len(skipped) == 1 and "'spare'" in str(skipped[0].message)
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    spare = [c for c in loaded.keras_api.layers if len(c.keras_api.variables) == 0]
    assert len(spare) == 1 and not has_call_function(spare[0].keras_api)
    assert has_call_function(loaded.keras_api)


def test_model_without_inputs_refused_before_writing(tmp_path):
    """As tf_keras' save (raise_model_input_error): an error naming the model, no files."""
    model = keras.Sequential([keras.layers.Dense(2, name="lonely")], name="never_built")
    path = tmp_path / "m"
    with pytest.raises(errors.ModelInputsUnknownError) as raised:
        reference_impl.save(model, str(path))
    assert isinstance(raised.value, ValueError)
    assert "'never_built'" in str(raised.value) and str(path) in str(raised.value)
    assert list(tmp_path.iterdir()) == []  # nothing at the path, no temporary beside it


def test_model_without_inputs_leaves_the_previous_model(tmp_path):
    path = str(tmp_path / "m")
    reference_impl.save(test_models.sequential(), path)
    before = sorted(os.listdir(path))
    unbuilt = keras.Sequential([keras.layers.Dense(2)], name="never_built")
    with pytest.raises(errors.ModelInputsUnknownError):
        reference_impl.save(unbuilt, path, overwrite=True)
    assert sorted(os.listdir(path)) == before and os.listdir(tmp_path) == ["m"]
    assert tf.saved_model.load(path).signatures


def test_unbuilt_nested_model_saved_with_warning(tmp_path):
    """Only the root is refused: a nested model that is not built is skipped, as a layer."""

    class HoldsUnbuiltModel(keras.Model):
        def __init__(self):
            super().__init__(name="holds_model")
            self.used = keras.layers.Dense(2, name="used")
            self.spare = keras.Sequential([keras.layers.Dense(2)], name="spare_model")

        def call(self, inputs):
            return self.used(inputs)

    model = HoldsUnbuiltModel()
    model(np.ones((2, 3), "float32"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reference_impl.save(model, str(tmp_path / "m"))
    assert any("'spare_model'" in str(w.message) for w in caught)
    assert has_call_function(tf.saved_model.load(str(tmp_path / "m")).keras_api)


def _fit_one_step(model, x, y):
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(x, y, epochs=1, batch_size=len(x), verbose=0)


@pytest.mark.parametrize("include_optimizer", [True, False])
def test_include_optimizer(tmp_path, include_optimizer):
    model = test_models.sequential()
    x = test_models.sample((4, 4))
    _fit_one_step(model, x, test_models.sample((4, 3), seed=1))
    optimizer = model.optimizer
    path = str(tmp_path / "m")
    reference_impl.save(model, path, include_optimizer=include_optimizer)
    assert model.optimizer is optimizer
    loaded = tf.saved_model.load(path)
    reader = tf.train.load_checkpoint(os.path.join(path, "variables", "variables"))
    keys = [
        k
        for k in reader.get_variable_to_shape_map()
        if k.endswith("VARIABLE_VALUE") and "metrics" not in k
    ]
    n_model = len(model.variables)
    if include_optimizer:
        assert len(loaded.optimizer.variables) == len(optimizer.variables)
        for got, want in zip(loaded.optimizer.variables, optimizer.variables, strict=True):
            assert_bitwise(got.numpy(), want.numpy())
        assert len(keys) == n_model + len(optimizer.variables)
    else:
        assert not hasattr(loaded, "optimizer")
        assert len(keys) == n_model


def test_model_unchanged_after_save(tmp_path):
    model = test_models.regularized()
    x = test_models.SAMPLES["regularized"]()
    _fit_one_step(model, x, test_models.sample((3, 1)))
    model.layers[1].trainable = False
    model(x)
    before_out = np.asarray(model(x, training=False))
    model(x)
    before_losses = [np.asarray(v) for v in model.losses]
    before_vars = [v.numpy().copy() for v in model.variables]
    before_trainable = [(layer.name, layer.trainable) for layer in model._flatten_layers()]
    before_dicts = {layer.name: set(vars(layer)) for layer in model._flatten_layers()}
    before_reg = [layer.activity_regularizer for layer in model._flatten_layers()]
    optimizer = model.optimizer
    reference_impl.save(model, str(tmp_path / "m"))
    after_losses = [np.asarray(v) for v in model.losses]
    assert len(after_losses) == len(before_losses)
    for got, want in zip(after_losses, before_losses, strict=True):
        assert_bitwise(got, want)
    assert [(layer.name, layer.trainable) for layer in model._flatten_layers()] == before_trainable
    assert {layer.name: set(vars(layer)) for layer in model._flatten_layers()} == before_dicts
    assert all("call" not in vars(layer) for layer in model._flatten_layers())
    assert [layer.activity_regularizer for layer in model._flatten_layers()] == before_reg
    for got, want in zip(model.variables, before_vars, strict=True):
        assert_bitwise(got.numpy(), want)
    assert model.optimizer is optimizer
    assert_bitwise(model(x, training=False), before_out)


def _object_graph(path):
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as file:
        proto.ParseFromString(file.read())
    return proto.meta_graphs[0].object_graph_def


def test_metadata_node_ids_match_object_graph(saved):
    case = saved["nested"]
    nodes = metadata.read_metadata(case.path)
    graph = _object_graph(case.path)
    by_path = {node.node_path: node for node in nodes}
    assert by_path["root"].node_id == 0
    assert by_path["root"].identifier == "_tf_keras_network"
    for node in nodes:
        node_id = 0
        for name in node.node_path.split(".")[1:]:
            node_id = {c.local_name: c.node_id for c in graph.nodes[node_id].children}[name]
        assert node_id == node.node_id
        assert "keras_api" in {c.local_name for c in graph.nodes[node_id].children}
    names = sorted(node.metadata["name"] for node in nodes)
    assert names == sorted(layer.name for layer in case.model._flatten_layers())


def test_saving_twice_is_deterministic(tmp_path):
    keras.utils.set_random_seed(1)
    model = test_models.functional_branch_merge()
    first, second = str(tmp_path / "a"), str(tmp_path / "b")
    reference_impl.save(model, first)
    reference_impl.save(model, second)
    with open(os.path.join(first, "keras_metadata.pb"), "rb") as a:
        with open(os.path.join(second, "keras_metadata.pb"), "rb") as b:
            assert a.read() == b.read()
    fa = tf.saved_model.experimental.read_fingerprint(first)
    fb = tf.saved_model.experimental.read_fingerprint(second)
    assert fa.signature_def_hash == fb.signature_def_hash
    assert fa.graph_def_program_hash == fb.graph_def_program_hash
    assert fa.saved_object_graph_hash == fb.saved_object_graph_hash
    assert fa.checkpoint_hash == fb.checkpoint_hash


def test_signatures_argument_replaces_serving_default(tmp_path):
    model = test_models.sequential()

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
    def doubled(features):
        return {"twice": model(features) * 2.0}

    reference_impl.save(model, str(tmp_path / "m"), signatures={"twice": doubled})
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    assert list(loaded.signatures) == ["twice"]


def test_bare_layer_saved_without_serving_signature(tmp_path):
    layer = keras.layers.Dense(3, name="solo")
    x = np.ones((2, 4), "float32")
    layer(x)
    reference_impl.save(layer, str(tmp_path / "m"))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    assert not hasattr(loaded.keras_api, "_default_save_signature")
    assert list(loaded.signatures) == []
    assert_close(loaded(x, False), layer(x))
    assert metadata.read_metadata(str(tmp_path / "m"))[0].identifier == "_tf_keras_layer"
    again = reference_impl.load(str(tmp_path / "m"))
    assert type(again) is keras.layers.Dense
    assert_close(again(x), layer(x))


def test_rnn_layers_carry_their_states(tmp_path):
    inputs = keras.Input((5, 3), batch_size=2, name="steps")
    model = keras.Model(inputs, keras.layers.LSTM(4, stateful=True, name="lstm")(inputs))
    model(np.ones((2, 5, 3), "float32"))
    reference_impl.save(model, str(tmp_path / "m"))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    lstm = loaded.keras_api.layers[1].keras_api
    assert [s.shape.as_list() for s in lstm.states] == [[2, 4], [2, 4]]
    for got, want in zip(lstm.states, model.get_layer("lstm").states, strict=True):
        assert_bitwise(got.numpy(), want.numpy())
    identifiers = {n.node_path: n.identifier for n in metadata.read_metadata(str(tmp_path / "m"))}
    assert identifiers["root.keras_api.layers.1"] == "_tf_keras_rnn_layer"


@pytest.mark.parametrize("kind", ["functional", "sequential"])
def test_nested_functional_with_losses(tmp_path, kind):
    """A Functional sub-model whose layers add losses is traced (its losses re-added)."""
    model = test_models.nested_with_losses(kind)
    x = test_models.sample((3, 4), seed=2)
    model(x, training=False)
    want_losses = sorted(float(v) for v in model.losses)
    reference_impl.save(model, str(tmp_path / "m"))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    assert_close(call_loaded(loaded, x), expected_outputs(model, x))
    outputs, losses = loaded.call_and_return_all_conditional_losses(x, False)
    assert_close(outputs, expected_outputs(model, x))
    np.testing.assert_allclose(sorted(float(v) for v in losses), want_losses, rtol=1e-5)
    # The model's own losses are as before the save.
    assert sorted(float(v) for v in model.losses) == want_losses


@pytest.mark.parametrize("as_dict", [False, True])
def test_declared_input_spec_dtypes_in_functions_and_serving(tmp_path, as_dict):
    """Subclassed models declaring ``input_spec`` are saved with its dtypes and shapes."""
    model = test_models.typed_inputs(as_dict)
    x = test_models.typed_inputs_sample(as_dict)
    want = expected_outputs(model, x)
    reference_impl.save(model, str(tmp_path / "m"))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    for api in (loaded, loaded.keras_api):
        for concrete in api.__call__.concrete_functions:
            specs = tf.nest.flatten(concrete.structured_input_signature[0][0])
            assert [s.dtype for s in specs] == [tf.int32, tf.float16]
            assert [s.shape.as_list() for s in specs] == [[None, 2], [None, 3]]
        assert_close(call_loaded(api, x), want)
    serving = loaded.signatures["serving_default"]
    kwargs = (
        {k: tf.constant(v) for k, v in x.items()}
        if as_dict
        else {"inputs_0": tf.constant(x[0]), "inputs_1": tf.constant(x[1])}
    )
    assert_close(serving(**kwargs)["output_1"], want)


def test_one_element_input_spec_list_for_a_single_tensor(tmp_path):
    """``input_spec = [InputSpec(...)]`` on a model called with one tensor: the saved input
    is that one tensor (the structure the model is called with), with the declared dtype."""

    class OneInput(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.input_spec = [keras.InputSpec(shape=(None, 2), dtype="int32")]
            self.embed = keras.layers.Embedding(5, 3, name="one_embed")

        def call(self, inputs):
            return self.embed(inputs)

    model = OneInput(name="one_input")
    x = np.array([[1, 2], [3, 4]], "int32")
    want = expected_outputs(model, x)
    reference_impl.save(model, str(tmp_path / "m"))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    (spec,) = loaded.signatures["serving_default"].structured_input_signature[1].values()
    assert spec.dtype == tf.int32 and spec.shape.as_list() == [None, 2]
    assert_close(call_loaded(loaded, x), want)


def test_functional_without_training_layers_still_takes_training(tmp_path):
    """Keras 3's Functional call takes ``training`` (tf_keras' graph networks always do)."""
    inputs = keras.Input((3,), name="ft_in")
    outputs = keras.layers.Rescaling(2.0, name="ft_scale")(keras.layers.Identity()(inputs))
    model = keras.Model(inputs, outputs, name="ft_model")
    reference_impl.save(model, str(tmp_path / "m"))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    traced = {fn.structured_input_signature[0][1] for fn in loaded.__call__.concrete_functions}
    assert traced == {True, False}
    assert_close(loaded(np.ones((2, 3), "float32"), False), np.full((2, 3), 2.0, "float32"))


def _saved_layer(loaded, *indices):
    node = loaded
    for index in indices:
        node = node.keras_api.layers[index]
    return node


@pytest.mark.parametrize("rnn", ["LSTM", "GRU", "SimpleRNN"])
def test_rnn_cells_get_functions_taking_states(tmp_path, rnn):
    """A cell is called with ``(inputs, states)``: its functions take both, then training."""
    inputs = keras.Input((5, 3), name="seq")
    layer = getattr(keras.layers, rnn)(4, dropout=0.25, recurrent_dropout=0.25, name="rnn")
    model = keras.Model(inputs, layer(inputs))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no layer may be skipped
        reference_impl.save(model, str(tmp_path / "m"))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    cell = _saved_layer(loaded, 1, 0)
    for name in LAYER_FUNCTIONS:
        traced = getattr(cell.keras_api, name).concrete_functions
        assert {fn.structured_input_signature[0][-1] for fn in traced} == {True, False}
    concrete = cell.keras_api.call_and_return_conditional_losses.concrete_functions[0]
    specs = concrete.structured_input_signature[0]
    assert [s.name for s in tf.nest.flatten(specs[:2])][0] == "inputs"
    x = test_models.sample((2, 3))
    # States in the structure the RNN called the cell with, as the trace recorded it.
    states = tf.nest.map_structure(
        lambda spec: tf.constant(test_models.sample((2, *spec.shape[1:]), seed=1)), specs[1]
    )
    want_output, want_states = layer.cell(x, states, training=False)
    got_output, got_states = cell.keras_api.__call__(x, states, False)
    assert_close(got_output, want_output)
    for got, want in zip(tf.nest.flatten(got_states), tf.nest.flatten(want_states), strict=True):
        assert_close(got, want)
    # The RNN's own outputs are unchanged by the cell's traced functions.
    sequence = test_models.sample((2, 5, 3), seed=7)
    assert_close(call_loaded(loaded, sequence), model(sequence, training=False))


def test_multi_head_attention_takes_query_and_value(tmp_path):
    query = keras.Input((5, 3), name="q")
    attention = keras.layers.MultiHeadAttention(2, 2, name="mha")
    model = keras.Model(query, attention(query, query))
    reference_impl.save(model, str(tmp_path / "m"))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    saved = _saved_layer(loaded, 1)
    concrete = saved.keras_api.__call__.concrete_functions[0]
    names = [s.name for s in concrete.structured_input_signature[0][:2]]
    assert names == ["inputs", "value"]
    x = test_models.sample((2, 5, 3))
    assert_close(saved.keras_api.__call__(x, x, False), attention(x, x, training=False))
    # Its projections are called alone by it, so they have functions of their own.
    for index, sub in enumerate(attention._flatten_layers(include_self=False, recursive=False)):
        if sub.name.endswith("dense"):
            assert has_call_function(_saved_layer(loaded, 1, index).keras_api), sub.name


class TwoArguments(keras.Model):
    """A subclassed model called as ``model(a, b)``, built from a shape per argument."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(2, name="two_dense")

    def build(self, a_shape, b_shape):
        self.dense.build(a_shape)

    def call(self, a, b):
        return self.dense(a) + b


def test_subclassed_model_with_two_positional_inputs(tmp_path):
    model = TwoArguments(name="two_args")
    a, b = test_models.sample((3, 3)), test_models.sample((3, 2), seed=1)
    want = model(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reference_impl.save(model, str(tmp_path / "m"))
    loaded = tf.saved_model.load(str(tmp_path / "m"))
    serving = loaded.signatures["serving_default"]
    assert sorted(serving.structured_input_signature[1]) == ["a", "b"]
    assert_close(serving(a=tf.constant(a), b=tf.constant(b))["output_1"], want)
    assert_close(loaded(a, b, False), want)
    revived = reference_impl.load(str(tmp_path / "m"))  # class unknown: revived
    assert_close(revived(a, b), want)
    reference_impl.save(revived, str(tmp_path / "again"))
    again = tf.saved_model.load(str(tmp_path / "again"))
    assert sorted(again.signatures["serving_default"].structured_input_signature[1]) == ["a", "b"]
    assert_close(again(a, b, False), want)


def test_subclassed_model_with_two_inputs_but_one_build_shape_is_warned(tmp_path):
    """Keras records only the first argument's shape unless ``build`` takes one per input."""

    class OnlyFirstShape(keras.Model):
        def __init__(self):
            super().__init__(name="only_first")
            self.dense = keras.layers.Dense(2)

        def call(self, a, b):
            return self.dense(a) + b

    model = OnlyFirstShape()
    model(test_models.sample((3, 3)), test_models.sample((3, 2)))
    with pytest.warns(UserWarning, match="only_first.*inputs are not defined"):
        reference_impl.save(model, str(tmp_path / "m"))
    assert not has_call_function(tf.saved_model.load(str(tmp_path / "m")))


# -- custom layers: masks, call arguments, training passed down ---------------------------


def test_custom_layers_mask_kwargs_and_training_are_saved(tmp_path):
    import strategies
    from tests.reference_impl.test_load import _custom_chain

    model = strategies.build_model(_custom_chain(with_gain=False), "keras")
    path = str(tmp_path / "m")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reference_impl.save(model, path)
    # The constants traced are named: a loader without the class can call only those.
    assert any("n2_kscscalekwarg" in str(w.message) and "scale" in str(w.message) for w in caught)
    loaded = tf.saved_model.load(path)
    mask_layer, _, scale_layer, block = list(loaded.keras_api.layers)[1:5]
    x = np.zeros((2, 3, 2), "float32")
    x[:, 1:] = 1.0
    assert_bitwise(
        mask_layer.keras_api.compute_mask_fn(x),
        model.get_layer("n0_kscmaskzero").compute_mask(x, None),
    )
    assert not hasattr(block.keras_api, "compute_mask_fn")  # no mask of its own
    ones = np.ones((2, 2), "float32")
    traced = {
        c.structured_input_signature[0][1]
        for c in scale_layer.keras_api.__call__.concrete_functions
    }
    assert traced == {1.0, 2.0}  # the graph's value and the default
    assert_close(scale_layer.keras_api.__call__(ones, 2.0), 2.0 * ones)
    # KscNormBlock's call takes no training; its BatchNormalization's does: both modes.
    original = model.get_layer("n3_kscnormblock")
    y = np.arange(4, dtype="float32").reshape(2, 2)
    for training in (True, False):
        assert_close(block.keras_api.__call__(y, training), original(y, training=training))
