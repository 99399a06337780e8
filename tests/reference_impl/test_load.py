"""``reference_impl.load``: from the config, revived, compiled, fine-tuned and saved again."""

from __future__ import annotations

import os
import shutil
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import reference_impl
from conformance.savedmodel import fingerprint
from reference_impl import errors, integrity, metadata, revive
from reference_impl.revive import RevivedLayer, RevivedModel, RevivedSequential
from tests.reference_impl import models as test_models

TOLERANCE = {"float16": 1e-3, "bfloat16": 1e-2, "float32": 1e-6, "float64": 1e-6}
FROM_CONFIG = [
    "sequential",
    "functional",
    "subclassed",
    "nested",
    "regularized",
    "two_inputs",
    "mixed_precision",
    "dict_io",
    "subclassed_list",
]


def assert_close(actual, expected, scale=1.0):
    actual, expected = np.asarray(actual), np.asarray(expected)
    tol = TOLERANCE.get(str(expected.dtype), 1e-6) * scale
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)


def assert_bitwise(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    assert actual.tobytes() == expected.tobytes()


def outputs(model, x, training=False):
    return tf.nest.map_structure(np.asarray, model(x, training=training))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(model, sample input, path) for every test model, saved once."""
    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("load")
    result = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the RNN cell's "skipping" warning
        for name, build in test_models.BUILDERS.items():
            model = build()
            reference_impl.save(model, str(root / name))
            result[name] = (model, test_models.SAMPLES[name](), str(root / name))
    return result


@pytest.fixture(scope="module")
def revived(saved):
    model, x, path = saved["unregistered"]
    return model, x, reference_impl.load(path, safe_mode=False)


# -- from the config ---------------------------------------------------------------------


@pytest.mark.parametrize("name", FROM_CONFIG)
def test_from_config_same_class_outputs_and_bitwise_variables(saved, name):
    model, x, path = saved[name]
    loaded = reference_impl.load(path)
    assert type(loaded) is type(model)
    assert not isinstance(loaded, RevivedLayer)
    for got, want in zip(loaded.variables, model.variables, strict=True):
        assert_bitwise(got.numpy(), want.numpy())
    tf.nest.map_structure(assert_close, outputs(loaded, x), outputs(model, x))


def test_from_config_losses_match(saved):
    model, x, path = saved["regularized"]
    loaded = reference_impl.load(path)
    model(x)
    loaded(x)
    assert len(loaded.losses) == len(model.losses) == 9
    for got, want in zip(loaded.losses, model.losses, strict=True):
        assert_close(got, want)


def test_from_config_keeps_trainable_flags(tmp_path):
    model = test_models.functional_branch_merge()
    model.get_layer("left").trainable = False
    reference_impl.save(model, str(tmp_path / "m"))
    loaded = reference_impl.load(str(tmp_path / "m"))
    assert not loaded.get_layer("left").trainable
    assert len(loaded.trainable_variables) == len(model.trainable_variables)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A compiled Sequential model after one step, saved with and without its optimizer."""
    keras.utils.set_random_seed(0)
    model = test_models.sequential()
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=["mae"])
    x, y = test_models.sample((8, 4)), test_models.sample((8, 3), seed=1)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    root = tmp_path_factory.mktemp("trained")
    reference_impl.save(model, str(root / "with"))
    reference_impl.save(model, str(root / "without"), include_optimizer=False)
    return model, x, y, str(root / "with"), str(root / "without")


def test_compile_and_optimizer_variables_restored(trained):
    model, x, y, with_optimizer, _ = trained
    loaded = reference_impl.load(with_optimizer)
    assert loaded.compiled and isinstance(loaded.optimizer, keras.optimizers.Adam)
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables)
    for got, want in zip(loaded.optimizer.variables, model.optimizer.variables, strict=True):
        assert_bitwise(got.numpy(), want.numpy())
    # The next step continues identically: same update from the same state.
    clone = reference_impl.load(with_optimizer)
    clone.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    for got, want in zip(loaded.variables, clone.variables, strict=True):
        assert_bitwise(got.numpy(), want.numpy())


def test_without_optimizer_compiles_fresh_or_not_at_all(trained):
    model, _, _, _, without = trained
    loaded = reference_impl.load(without)
    # No training config and no optimizer variables were written.
    assert not getattr(loaded, "compiled", False) or int(loaded.optimizer.iterations) == 0
    loaded_uncompiled = reference_impl.load(trained[3], compile=False)
    assert not loaded_uncompiled.compiled


def test_fine_tune_then_save_again(trained, tmp_path):
    model, x, y, with_optimizer, _ = trained
    loaded = reference_impl.load(with_optimizer)
    before = [v.numpy().copy() for v in loaded.trainable_variables]
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert any(
        not np.array_equal(v.numpy(), b)
        for v, b in zip(loaded.trainable_variables, before, strict=True)
    )
    reference_impl.save(loaded, str(tmp_path / "again"))
    again = reference_impl.load(str(tmp_path / "again"))
    for got, want in zip(again.variables, loaded.variables, strict=True):
        assert_bitwise(got.numpy(), want.numpy())
    assert_close(outputs(again, x), outputs(loaded, x))


# -- safe mode ---------------------------------------------------------------------------


def test_unknown_class_under_safe_mode_is_revived_with_a_warning(saved):
    """Saved graph functions are not Python code: safe_mode revives an unknown class."""
    model, x, path = saved["unregistered"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = reference_impl.load(path)
    assert isinstance(loaded, RevivedModel)
    assert any("UnregisteredModel" in str(w.message) for w in caught)
    assert_close(outputs(loaded, x), outputs(model, x))


def test_custom_objects_make_an_unknown_class_known(saved):
    model, x, path = saved["unregistered"]
    # Without get_config overrides these classes rebuild from their base config.
    custom = {
        "UnregisteredModel": test_models.UnregisteredModel,
        "UnregisteredScaler": test_models.UnregisteredScaler,
    }
    loaded = reference_impl.load(path, custom_objects=custom)
    assert isinstance(loaded, test_models.UnregisteredModel)
    for got, want in zip(loaded.variables, model.variables, strict=True):
        assert_bitwise(got.numpy(), want.numpy())
    assert_close(outputs(loaded, x), outputs(model, x))


def test_lambda_refused_in_safe_mode(tmp_path):
    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs))
    reference_impl.save(model, str(tmp_path / "m"))
    with pytest.raises(errors.ReferenceImplError) as caught:
        reference_impl.load(str(tmp_path / "m"))
    assert isinstance(caught.value, (errors.UnsafeDeserializationError, errors.UnknownClassError))
    unsafe = reference_impl.load(str(tmp_path / "m"), safe_mode=False)
    assert_close(unsafe(np.ones((1, 3), "float32")), np.full((1, 3), 2.0, "float32"))


# -- revived -----------------------------------------------------------------------------


def test_revived_outputs_both_training_modes(saved):
    model, x, path = saved["unregistered"]
    loaded = reference_impl.load(path, safe_mode=False)
    assert isinstance(loaded, RevivedModel) and isinstance(loaded, keras.Model)
    assert_close(outputs(loaded, x), outputs(model, x))
    # UnregisteredScaler doubles its outputs in training; BatchNormalization uses batch stats
    # (and updates its moving statistics, so the shared model's are put back afterwards).
    state = [v.numpy() for v in model.variables]
    try:
        expected = outputs(model, x, training=True)
    finally:
        for variable, value in zip(model.variables, state, strict=True):
            variable.assign(value)
    assert_close(outputs(loaded, x, training=True), expected, scale=10)
    assert not np.allclose(outputs(loaded, x, training=True), outputs(loaded, x))


def test_revived_variables_shared_and_split_by_trainable(revived):
    model, _, loaded = revived
    pairs = [
        (loaded.trainable_variables, model.trainable_variables),
        (loaded.non_trainable_variables, model.non_trainable_variables),
    ]
    for got_list, want_list in pairs:
        assert len(got_list) == len(want_list)
        for got, want in zip(got_list, want_list, strict=True):
            assert_bitwise(got.numpy(), want.numpy())
    # The Keras variables wrap the loaded tf.Variables themselves: no copies.
    saved_ids = {id(v) for v in loaded._saved.api.variables}
    assert {id(v.value) for v in loaded.variables} == saved_ids


def test_revived_losses(revived):
    model, x, loaded = revived
    model(x)
    loaded(x)
    # add_loss of the custom layer, then the dense kernel and scale regularizers.
    assert len(loaded.losses) == len(model.losses) == 3
    assert_close(sorted(np.asarray(loaded.losses)), sorted(np.asarray(model.losses)))


def test_revived_gradient_step_fine_tunes(saved, tmp_path):
    model, x, path = saved["unregistered"]
    loaded = reference_impl.load(path, safe_mode=False)
    loaded.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [v.numpy().copy() for v in loaded.trainable_variables]
    loaded.fit(x, np.zeros((len(x), 2), "float32"), epochs=1, batch_size=len(x), verbose=0)
    changed = [
        not np.array_equal(v.numpy(), b)
        for v, b in zip(loaded.trainable_variables, before, strict=True)
    ]
    assert all(changed)
    # The saved functions see the new values: outputs changed.
    assert not np.allclose(outputs(loaded, x), outputs(model, x))
    # ... and the revived model saves again, and revives again to the same outputs.
    reference_impl.save(loaded, str(tmp_path / "again"))
    again = reference_impl.load(str(tmp_path / "again"), safe_mode=False)
    assert_close(outputs(again, x), outputs(loaded, x))
    for got, want in zip(again.variables, loaded.variables, strict=True):
        assert_bitwise(got.numpy(), want.numpy())


def test_revived_list_inputs_and_saved_again(saved, tmp_path):
    model, x, path = saved["subclassed_list"]
    # PairModel is registered, so load() would rebuild it; revive it directly instead.
    root = next(node for node in metadata.read_metadata(path) if node.node_id == 0)
    loaded = revive.revive(path, root)
    assert isinstance(loaded, RevivedModel)
    assert_close(outputs(loaded, x), outputs(model, x))
    reference_impl.save(loaded, str(tmp_path / "again"))
    again = reference_impl.load(str(tmp_path / "again"), safe_mode=False)
    assert_close(outputs(again, x), outputs(model, x))


# -- a loaded Sequential changed with pop() and add() ---------------------------------------


class _Halves(keras.layers.Layer):
    """Registered nowhere: a Sequential holding it is revived, not rebuilt from its config."""

    def call(self, inputs):
        return inputs * 0.5


def _sequential(unknown_class=False):
    stack = [keras.Input((4,), name="seq_in"), keras.layers.Dense(3, name="seq_hidden")]
    if unknown_class:
        stack.append(_Halves(name="seq_halves"))
    stack += [keras.layers.Dense(2, name="seq_out"), keras.layers.Activation("tanh")]
    return keras.Sequential(stack, name="seq")


def _serve(path, x):
    served = tf.saved_model.load(path).signatures["serving_default"](seq_in=tf.constant(x))
    return served


@pytest.mark.parametrize("unknown_class", [False, True], ids=["from-config", "revived"])
def test_changed_loaded_sequential_is_saved_as_changed(tmp_path, unknown_class):
    model = _sequential(unknown_class)
    x = test_models.sample((3, 4))
    reference_impl.save(model, str(tmp_path / "first"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the revival warning
        loaded = reference_impl.load(str(tmp_path / "first"), safe_mode=False)
    assert isinstance(loaded, keras.Sequential)
    assert isinstance(loaded, RevivedSequential) is unknown_class
    assert_close(outputs(loaded, x), outputs(model, x))
    loaded.pop()
    loaded.add(keras.layers.Dense(5, name="seq_new_head"))
    hidden = x
    for layer in model.layers[:-1]:
        hidden = layer(hidden)
    want = np.asarray(loaded.layers[-1](hidden))
    assert_close(outputs(loaded, x), want)
    reference_impl.save(loaded, str(tmp_path / "changed"))
    served = _serve(str(tmp_path / "changed"), x)
    assert list(served) == ["seq_new_head"]
    assert_close(served["seq_new_head"], want)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = reference_impl.load(str(tmp_path / "changed"), safe_mode=False)
    assert [layer.name for layer in again.layers][-1] == "seq_new_head"
    assert_close(outputs(again, x), want)


def test_revived_sequential_keeps_variables_and_round_trips(tmp_path):
    model = _sequential(unknown_class=True)
    model.get_layer("seq_hidden").trainable = False
    reference_impl.save(model, str(tmp_path / "first"))
    with pytest.warns(UserWarning, match="_Halves"):
        loaded = reference_impl.load(str(tmp_path / "first"), safe_mode=False)
    assert isinstance(loaded, RevivedSequential) and loaded.name == "seq"
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    for got, want in zip(loaded.variables, model.variables, strict=True):
        assert_bitwise(got.numpy(), want.numpy())
    assert len(loaded.trainable_variables) == len(model.trainable_variables) == 2
    # Saved again unchanged, it is the same saved model.
    reference_impl.save(loaded, str(tmp_path / "again"))
    first, _ = fingerprint.fingerprint(str(tmp_path / "first"))
    second, _ = fingerprint.fingerprint(str(tmp_path / "again"))
    assert first == second


def test_revived_inside_a_new_model(revived):
    model, x, loaded = revived
    inputs = keras.Input((4,), name="new_in")
    outer = keras.Model(inputs, keras.layers.Dense(1, name="head")(loaded(inputs)))
    assert outer(x).shape == (3, 1)
    outer(x)
    # The revived layer's regularization and input-dependent losses reach the outer model.
    assert len(outer.losses) == 3
    assert len(outer.trainable_variables) == len(model.trainable_variables) + 2


def test_saved_model_without_metadata_is_revived_with_a_warning(saved, tmp_path):
    model, x, path = saved["functional"]
    copy = tmp_path / "no_metadata"
    shutil.copytree(path, copy)
    os.remove(copy / "keras_metadata.pb")
    (copy / integrity.MANIFEST_FILENAME).unlink(missing_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = reference_impl.load(str(copy))
    assert any("keras_metadata.pb" in str(w.message) for w in caught)
    assert isinstance(loaded, RevivedLayer)
    tf.nest.map_structure(assert_close, outputs(loaded, x), outputs(model, x))


def test_plain_saved_model_is_not_a_keras_one(tmp_path):
    module = tf.Module()
    module.v = tf.Variable(1.0)
    tf.saved_model.save(module, str(tmp_path / "plain"))
    with pytest.raises(errors.NotASavedModelError):
        reference_impl.load(str(tmp_path / "plain"))


def test_loads_a_tf_keras_saved_model_from_config(tmp_path):
    """tf_keras' own files: its metadata names no module; Keras 3 rebuilds its config."""
    import tf_keras

    inputs = tf_keras.Input((4,), name="x")
    hidden = tf_keras.layers.Dense(3, activation="relu", name="hidden")(inputs)
    original = tf_keras.Model(inputs, tf_keras.layers.Dense(2, name="out")(hidden))
    original.save(str(tmp_path / "tf_keras"), save_format="tf")
    loaded = reference_impl.load(str(tmp_path / "tf_keras"))
    assert isinstance(loaded, keras.Model) and not isinstance(loaded, RevivedLayer)
    for got, want in zip(loaded.variables, original.variables, strict=True):
        assert_bitwise(got.numpy(), want.numpy())
    x = test_models.sample((2, 4))
    assert_close(outputs(loaded, [x]), np.asarray(original(x)))


@pytest.mark.parametrize("as_dict", [False, True])
def test_declared_input_spec_model_loads_and_revives(tmp_path, as_dict):
    """A subclassed model taking a list or dict of int32 and float16 inputs, end to end."""
    model = test_models.typed_inputs(as_dict)
    x = test_models.typed_inputs_sample(as_dict)
    reference_impl.save(model, str(tmp_path / "m"))
    rebuilt = reference_impl.load(str(tmp_path / "m"))
    assert isinstance(rebuilt, test_models.TypedInputsModel)
    assert_close(outputs(rebuilt, x), outputs(model, x))
    root = next(n for n in metadata.read_metadata(str(tmp_path / "m")) if n.node_id == 0)
    loaded = revive.revive(str(tmp_path / "m"), root)
    assert_close(outputs(loaded, x), outputs(model, x))
    reference_impl.save(loaded, str(tmp_path / "again"))
    again = reference_impl.load(str(tmp_path / "again"), safe_mode=False)
    assert_close(outputs(again, x), outputs(model, x))


@pytest.mark.parametrize("build", ["unregistered", "unregistered_functional", "shared"])
def test_revived_under_safe_mode_matches_and_saves_the_same(tmp_path, build):
    """Revived with safe_mode=True: same variables (partition and order), outputs, losses;
    fine-tunable; saved again with the same canonical fingerprint."""
    from conformance.savedmodel import fingerprint

    keras.utils.set_random_seed(1)
    model = getattr(test_models, build if build != "shared" else "shared_layer")()
    x = test_models.sample((3, 4), seed=3)
    path = str(tmp_path / "m")
    reference_impl.save(model, path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = reference_impl.load(path)
    assert isinstance(loaded, RevivedLayer)
    assert any("Reviving" in str(w.message) for w in caught)
    tf.nest.map_structure(assert_close, outputs(loaded, x), outputs(model, x))
    for attribute in ("variables", "trainable_variables", "non_trainable_variables"):
        got, want = getattr(loaded, attribute), getattr(model, attribute)
        assert len(got) == len(want), attribute
        for g, w in zip(got, want, strict=True):
            assert_bitwise(g.numpy(), w.numpy())
    model(x, training=False)
    loaded(x, training=False)
    np.testing.assert_allclose(
        float(sum(float(v) for v in loaded.losses)),
        float(sum(float(v) for v in model.losses)),
        rtol=1e-5,
    )
    reference_impl.save(loaded, str(tmp_path / "again"))
    assert fingerprint.fingerprint(path)[0] == fingerprint.fingerprint(str(tmp_path / "again"))[0]
    with tf.GradientTape() as tape:
        total = tf.add_n(
            [tf.reduce_sum(t**2) for t in tf.nest.flatten(loaded(x, training=True))]
            + list(loaded.losses)
        )
    grads = tape.gradient(total, loaded.trainable_variables)
    assert any(g is not None for g in grads)


def test_revived_model_keeps_a_zero_factor_regularizer(tmp_path):
    """A regularizer with zero factors never reads its variable; its loss is still revived."""

    class ZeroFactors(keras.Model):  # not registered: revived from the saved functions
        def __init__(self):
            super().__init__(name="zero_factors")
            self.dense = keras.layers.Dense(
                2,
                kernel_regularizer=keras.regularizers.L1L2(0.0, 0.0),
                bias_regularizer=keras.regularizers.L2(0.1),
            )

        def call(self, x):
            return self.dense(x)

    model = ZeroFactors()
    model(np.ones((2, 3), "float32"))
    reference_impl.save(model, str(tmp_path / "m"))
    with pytest.warns(UserWarning, match="ZeroFactors"):
        revived = reference_impl.load(str(tmp_path / "m"))
    assert len(model.losses) == 2
    assert len(revived.losses) == 2


# -- custom layers: masks, call arguments, training passed down, frozen layers -------------


def _custom_chain(with_gain):
    """A functional strategies model: KscMaskZero -> LSTM -> KscScaleKwarg(scale=2) ->
    KscNormBlock [-> KscGain, unregistered and frozen, so the model is revived]."""
    from tests.strategies.test_build import _chain

    lstm = {"units": 2, "return_sequences": False, "go_backwards": False, "use_bias": True}
    nodes = [
        ("KscMaskZero", {"mask_value": 0.0}, (3, 2)),
        ("LSTM", lstm, (2,)),
        ("KscScaleKwarg", {"call_scale": 2.0}, (2,)),
        ("KscNormBlock", {}, (2,)),
    ]
    if with_gain:
        nodes.append(("KscGain", {"trainable": False}, (2,)))
    return _chain(nodes, (3, 2))


@pytest.fixture(scope="module", params=["revived", "from-config"])
def custom_loaded(request, tmp_path_factory):
    import strategies

    spec = _custom_chain(with_gain=request.param == "revived")
    model = strategies.build_model(spec, "keras")
    path = str(tmp_path_factory.mktemp("custom") / "m")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference_impl.save(model, path)
        loaded = reference_impl.load(path)
    assert isinstance(loaded, RevivedModel) == (request.param == "revived")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 2)).astype("float32")
    x[:, 0] = 0
    return model, loaded, x


def _layer(model, name):
    return next(layer for layer in model._flatten_layers() if layer.name == name)


def test_loaded_custom_layers_keep_masks_kwargs_trainable_and_modes(custom_loaded):
    model, loaded, x = custom_loaded
    for training in (False, True):
        assert_close(outputs(loaded, x, training), outputs(model, x, training))
    mask = _layer(loaded, "n0_kscmaskzero").compute_mask(x, None)
    assert_bitwise(mask, _layer(model, "n0_kscmaskzero").compute_mask(x, None))
    ones = np.ones((2, 2), "float32")
    scale = _layer(loaded, "n2_kscscalekwarg")
    assert_close(scale(ones, scale=2.0), 2.0 * ones)
    assert_close(scale(ones), ones)  # the default, traced too
    for layer in model._flatten_layers():
        assert _layer(loaded, layer.name).trainable == layer.trainable, layer.name
    block, original = _layer(loaded, "n3_kscnormblock"), _layer(model, "n3_kscnormblock")
    y = np.arange(4, dtype="float32").reshape(2, 2)
    for training in (False, True):
        assert_close(block(y, training=training), original(y, training=training))


def test_revived_layer_refuses_an_untraced_call_argument_value(custom_loaded):
    _, loaded, _ = custom_loaded
    scale = _layer(loaded, "n2_kscscalekwarg")
    if not isinstance(scale, RevivedLayer):
        pytest.skip("rebuilt from its config: any value works")
    with pytest.raises(ValueError, match="scale"):
        scale(np.ones((2, 2), "float32"), scale=3.0)


def test_revived_subclassed_model_keeps_the_output_masks_its_layers_make(tmp_path):
    # The mask comes from an Embedding inside an unregistered model's call: the revived model
    # must give it to its outputs, or a compiled loss is computed over the padded steps too.
    class MasksInside(keras.Model):
        def __init__(self):
            super().__init__(name="masks_inside")
            self.embed = keras.layers.Embedding(5, 2, mask_zero=True, name="embed")

        def call(self, inputs):
            return self.embed(inputs)

    model = MasksInside()
    ids = np.array([[1, 0, 3], [0, 0, 2]], dtype="int32")
    model(ids)
    model.compile(optimizer="sgd", loss="mse")
    path = str(tmp_path / "m")
    reference_impl.save(model, path)
    with pytest.warns(UserWarning, match="Reviving"):
        revived = reference_impl.load(path, safe_mode=False)
    assert isinstance(revived, RevivedModel)
    mask = getattr(revived(ids), "_keras_mask", None)
    assert mask is not None, "the revived model's output has no mask"
    assert_bitwise(np.asarray(mask), ids != 0)
    target = np.ones((2, 3, 2), dtype="float32")
    assert_close(revived.test_on_batch(ids, target), model.test_on_batch(ids, target))


def test_revived_functional_model_names_its_losses_by_its_outputs(tmp_path):
    # An unknown layer class makes the loader revive the whole functional model: compiled
    # again, its per-output losses must keep the original's names (callbacks monitor them).
    class UnknownScale(keras.layers.Layer):
        def call(self, inputs):
            return inputs * 2.0

    inputs = keras.Input((3,), name="x")
    first = keras.layers.Dense(2, name="first")(UnknownScale(name="scale")(inputs))
    second = keras.layers.Dense(1, name="second")(inputs)
    model = keras.Model(inputs, [first, second], name="two_outputs")
    model.compile(optimizer="adam", loss=["mse", "mae"])
    x = np.ones((2, 3), dtype="float32")
    y = [np.zeros((2, 2), dtype="float32"), np.zeros((2, 1), dtype="float32")]
    want = model.test_on_batch(x, y, return_dict=True)
    path = str(tmp_path / "m")
    reference_impl.save(model, path)
    with pytest.warns(UserWarning, match="Reviving"):
        revived = reference_impl.load(path, safe_mode=False)
    assert isinstance(revived, RevivedModel)
    got = revived.test_on_batch(x, y, return_dict=True)
    assert sorted(got) == sorted(want) == ["first_loss", "loss", "second_loss"]
    for name in want:
        assert_close(got[name], want[name])


def test_layers_frozen_after_build_load_frozen_with_their_sub_layers(tmp_path):
    # From its config a ConvLSTM1D is made with trainable=False, which Keras 3.15 does not
    # pass to its cell (made from the layer's arguments): the loader must freeze it again.
    inputs = keras.Input((2, 4, 3), name="x")
    recurrent = keras.layers.ConvLSTM1D(2, 3, name="recurrent")
    outputs = keras.layers.Dense(1, name="head")(keras.layers.Flatten()(recurrent(inputs)))
    model = keras.Model(inputs, outputs)
    recurrent.trainable = False
    path = str(tmp_path / "m")
    reference_impl.save(model, path)
    loaded = reference_impl.load(path)
    assert [v.path for v in loaded.trainable_variables] == [
        v.path for v in model.trainable_variables
    ]
    frozen = loaded.get_layer("recurrent")
    before = [np.array(v.numpy()) for v in frozen.weights]
    loaded.compile(optimizer="sgd", loss="mse")
    loaded.train_on_batch(np.ones((2, 2, 4, 3), "float32"), np.ones((2, 1), "float32"))
    for value, variable in zip(before, frozen.weights):
        assert_bitwise(variable.numpy(), value)


def test_revived_layer_saved_again_keeps_its_traced_keyword_values(tmp_path):
    # The re-saved revived layer must be traced for the keyword values it was saved with,
    # or a second load cannot call it with them (and the fingerprint changes).
    class Scale(keras.layers.Layer):
        def call(self, inputs, scale=1.0):
            return inputs * scale

    class UsesScale(keras.Model):
        def __init__(self):
            super().__init__(name="uses_scale")
            self.scale = Scale(name="scale")

        def call(self, inputs):
            return self.scale(inputs, scale=0.5)

    model = UsesScale()
    x = np.array([[1.0, -2.0]], dtype="float32")
    model(x)
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    reference_impl.save(model, first)
    with pytest.warns(UserWarning):
        revived = reference_impl.load(first, safe_mode=False)
        reference_impl.save(revived, second)
        again = reference_impl.load(second, safe_mode=False)
    layer = next(child for child in again._flatten_layers() if child.name == "scale")
    assert_close(layer(x, scale=0.5), x * 0.5)
    assert_close(again(x), model(x))


def test_layer_shared_by_a_sub_model_and_its_holder_round_trips(tmp_path):
    # Keras 3 rebuilds such a config with the shared layer duplicated (keras-team/keras#10898):
    # the file is valid, so the loader revives it from its saved functions, never "corrupt".
    shared = keras.layers.Dense(3, name="shared")
    sub_in = keras.Input((3,), name="sub_in")
    sub = keras.Model(sub_in, shared(keras.layers.Dense(3, name="inner")(sub_in)), name="sub")
    x = keras.Input((3,), name="in_0")
    model = keras.Model(x, shared(sub(shared(x))))
    data = np.random.RandomState(0).rand(2, 3).astype("float32")
    reference_impl.save(model, str(tmp_path / "m"))
    assert len(tf.saved_model.load(str(tmp_path / "m")).keras_api.layers) == len(model.layers)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = reference_impl.load(str(tmp_path / "m"))
    np.testing.assert_array_equal(np.asarray(loaded(data)), np.asarray(model(data)))
    if isinstance(loaded, RevivedModel):
        assert any("Reviving" in str(w.message) for w in caught)
    assert len(loaded.weights) == len(model.weights), "the shared layer's variables once"


def test_frozen_layer_without_a_trainable_argument_loads_frozen(tmp_path):
    # Keras 3.15's SpatialDropout3D neither takes nor saves `trainable`: the flag comes from
    # the layer's metadata node.
    x = keras.Input((2, 3, 4, 2))
    dropout = keras.layers.SpatialDropout3D(0.5, name="sd")
    model = keras.Model(x, keras.layers.Dense(2, name="d")(dropout(x)))
    dropout.trainable = False
    reference_impl.save(model, str(tmp_path / "m"))
    loaded = reference_impl.load(str(tmp_path / "m"))
    assert loaded.get_layer("sd").trainable is False
    assert loaded.get_layer("d").trainable is True


def test_a_module_that_is_no_string_names_no_class(tmp_path):
    """Found by LOAD-HOSTILE: a layer's metadata "module" set to a number reached Keras'
    lookup, which raised a bare AttributeError; now the class is unknown, so revived."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="d")])
    path = str(tmp_path / "model")
    reference_impl.save(model, path)
    nodes = metadata.read_metadata(path)
    for node in nodes:
        if node.metadata.get("class_name") == "Dense":
            node.metadata["module"] = 10**60
    metadata.write_metadata(path, nodes)
    os.remove(os.path.join(path, integrity.MANIFEST_FILENAME))
    with pytest.warns(UserWarning, match="class 'Dense' is not built in"):
        loaded = reference_impl.load(path)
    assert isinstance(loaded, RevivedSequential)
