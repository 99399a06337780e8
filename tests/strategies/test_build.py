"""Every drawn spec builds and runs a forward pass in Keras 3 and in tf_keras; shape rules are
checked against the built layers; weights are the same in both frameworks."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import call_inputs, input_data, model_specs
from strategies.build import FRAMEWORKS, ShapeRuleError, build_model, weight_arrays
from strategies.catalog import REGISTRY

VALIDITY = settings(max_examples=30, derandomize=True, deadline=None)


def _clear():
    import keras
    import tf_keras

    keras.backend.clear_session()
    tf_keras.backend.clear_session()


def _outputs(y):
    return list(y) if isinstance(y, list | tuple) else [y]


def _run(spec, data, framework):
    """Build, then run with training False and True; returns the weights as built (a
    training call updates BatchNormalization statistics, differently in each framework)."""
    model = build_model(spec, framework)
    weights = weight_arrays(model)
    x = call_inputs(spec, data)
    batch = next(iter(data.values())).shape[0]
    for training in (False, True):
        outs = _outputs(model(x, training=training))
        assert len(outs) == len(spec.outputs)
        for o, ref in zip(outs, spec.outputs, strict=True):
            a = np.asarray(o)
            want = spec.node(ref).model_shape  # an open axis has the length of the data
            assert a.shape[0] == batch and len(a.shape) == len(want) + 1, (framework, ref)
            assert all(w is None or w == g for w, g in zip(want, a.shape[1:])), (framework, ref)
            assert np.all(np.isfinite(a)), (framework, ref, training)
    if _adds_losses(spec):
        assert len(model.losses) > 0, (framework, "regularizers and add_loss give losses")
    return weights


_MADE_BY = {"bias_regularizer": "use_bias", "beta_regularizer": "center",
            "gamma_regularizer": "scale"}


def _adds_losses(spec) -> bool:
    for n in spec.nodes:
        if n.submodel is not None and _adds_losses(n.submodel):
            return True
        # a regularizer of a weight the layer does not make regularizes nothing
        regs = [s for s, _ in n.regularizers
                if n.param_dict.get(_MADE_BY.get(s, ""), True) is not False]
        if regs or n.kind in ("KscInputLoss", "KscWeightLoss", "ActivityRegularization"):
            return True
    return False


def _same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].shape == b[key].shape, key
        if a[key].dtype == b[key].dtype:
            assert a[key].tobytes() == b[key].tobytes(), key
        else:  # e.g. tf_keras keeps float32 BatchNormalization variables in float16 models
            assert {a[key].dtype, b[key].dtype} == {np.dtype("float16"), np.dtype("float32")}
            assert np.array_equal(a[key].astype("float64"), b[key].astype("float64")), key


def test_every_drawn_spec_builds_and_runs_in_both_frameworks():
    """Validity, and the same weights in Keras 3 and tf_keras (bitwise where the variable
    dtypes agree)."""
    seen: set[str] = set()
    drawn = []

    @VALIDITY
    @given(st.data())
    def check(data):
        spec = data.draw(model_specs(), label="spec")
        arrays = data.draw(input_data(spec), label="inputs")
        seen.update(spec.kinds())
        drawn.append(spec)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            weights = [_run(spec, arrays, fw) for fw in FRAMEWORKS]
        _same_weights(*weights)
        _clear()

    check()
    never = sorted(set(REGISTRY) - seen)
    print(
        f"\nvalidity: {len(drawn)} specs drawn, all built and ran in {FRAMEWORKS}; "
        f"{len(seen & set(REGISTRY))}/{len(REGISTRY)} kinds drawn; never drawn: "
        + (", ".join(never) if never else "-")
    )


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_each_kind_builds_with_its_shape_rule(kind):
    """Each kind alone (plus adapters), in both frameworks: the shape rule holds."""

    @settings(max_examples=2, derandomize=True, deadline=None)
    @given(st.data())
    def check(data):
        spec = data.draw(model_specs(kinds=[kind], max_layers=2))
        arrays = data.draw(input_data(spec))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for fw in FRAMEWORKS:
                _run(spec, arrays, fw)

    check()
    _clear()


def _break_shape(spec, node_index=-1):
    nodes = list(spec.nodes)
    n = nodes[node_index]
    nodes[node_index] = dataclasses.replace(n, out_shape=n.out_shape + (7,))
    return dataclasses.replace(spec, nodes=tuple(nodes))


@pytest.mark.parametrize("topology", ["sequential", "functional", "subclassed", "nested"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_wrong_shape_rule_fails_loudly(topology, framework):
    @settings(max_examples=3, derandomize=True, deadline=None)
    @given(model_specs(topologies=[topology], max_layers=3))
    def check(spec):
        bad = _break_shape(spec)
        with pytest.raises(ShapeRuleError, match="shape rule"):
            build_model(bad, framework)
        if topology == "nested":  # a wrong rule inside the sub-model is caught too
            i = next(i for i, n in enumerate(spec.nodes) if n.submodel is not None)
            inner = _break_shape(spec.nodes[i].submodel, 0)
            nodes = list(spec.nodes)
            nodes[i] = dataclasses.replace(nodes[i], submodel=inner)
            with pytest.raises(ShapeRuleError):
                build_model(dataclasses.replace(spec, nodes=tuple(nodes)), framework)

    check()
    _clear()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_layer_and_output_names_come_from_the_spec(framework):
    @settings(max_examples=10, derandomize=True, deadline=None)
    @given(model_specs(topologies=["functional", "sequential", "nested"]))
    def check(spec):
        model = build_model(spec, framework)
        assert model.name == spec.name
        names = {layer.name for layer in model.layers}
        assert {n.layer_name for n in spec.nodes} <= names
        assert {i.name for i in spec.inputs} <= names | {
            getattr(t, "name", "").split(":")[0] for t in _outputs(model.inputs)
        }
        if spec.topology == "sequential":
            assert model.layers[-1].name == spec.output_names()[0]
        else:
            assert list(model.output_names) == list(spec.output_names())

    check()
    _clear()


def test_custom_objects_are_registered_in_both_frameworks():
    import keras
    import tf_keras

    from strategies.catalog import custom_objects

    for K in (keras, tf_keras):
        objs = custom_objects(K)
        for name, cls in objs.items():
            assert K.saving.get_registered_name(cls) == f"ksc>{name}"
            assert K.saving.get_registered_object(f"ksc>{name}") is cls


def test_custom_layers_losses_training_and_state():
    import keras
    import tf_keras

    from strategies.catalog import custom_objects

    x = np.ones((2, 3), dtype="float32")
    for K in (keras, tf_keras):
        objs = custom_objects(K)
        inp = objs["KscInputLoss"](rate=1.0, name="inp_loss")
        inp(x)
        assert len(inp.losses) == 1 and float(inp.losses[0]) == pytest.approx(1.0)
        wl = objs["KscWeightLoss"](rate=1.0, name="w_loss")
        wl(x)
        assert len(wl.losses) == 1 and float(wl.losses[0]) == pytest.approx(3.0)
        ts = objs["KscTrainingScale"](factor=0.5, name="scale")
        assert np.allclose(ts(x, training=True), 0.5)
        assert np.allclose(ts(x, training=False), 1.0)
        ctr = objs["KscCounter"](name="counter")
        ctr(x, training=True)
        ctr(x, training=True)
        ctr(x, training=False)
        assert int(ctr.calls.numpy()) == 2
        assert not ctr.trainable_weights and len(ctr.non_trainable_weights) == 2
        reg = objs["KscScaledL2"](factor=2.0)
        assert float(reg(np.ones((2, 2), "float32"))) == pytest.approx(2.0)
    _clear()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_deterministic_in_training_flag_is_honest(framework):
    from strategies import deterministic_in_training

    @settings(max_examples=10, derandomize=True, deadline=None)
    @given(st.data())
    def check(data):
        spec = data.draw(model_specs())
        arrays = data.draw(input_data(spec))
        if not deterministic_in_training(spec):
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = build_model(spec, framework)
            x = call_inputs(spec, arrays)
            first = [np.asarray(o) for o in _outputs(model(x, training=True))]
            second = [np.asarray(o) for o in _outputs(model(x, training=True))]
        for a, b in zip(first, second, strict=True):
            assert np.array_equal(a, b), repr(spec)

    check()
    _clear()


def _chain(kinds_params, shape, topology="functional"):
    """A one-input chain of (kind, params, out_shape) nodes."""
    from strategies.spec import InputSpec, LayerSpec, ModelSpec, freeze_params

    nodes, source = [], "in_0"
    for i, (kind, params, out_shape) in enumerate(kinds_params):
        nodes.append(
            LayerSpec(
                id=f"n{i}",
                kind=kind,
                inputs=(source,),
                params=freeze_params(params),
                out_shape=out_shape,
                layer_name=f"n{i}_{kind.lower()}",
            )
        )
        source = f"n{i}"
    return ModelSpec(
        inputs=(InputSpec("in_0", shape),), nodes=tuple(nodes), outputs=(source,),
        topology=topology,
    )


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_new_custom_layers_mask_kwargs_seeds_and_training(framework):
    from strategies.catalog.custom import custom_objects, unregistered_objects

    K = __import__(framework)
    lstm = {"units": 2, "return_sequences": False, "go_backwards": False, "use_bias": True}
    spec = _chain(
        [
            ("KscMaskZero", {"mask_value": 0.0}, (3, 2)),
            ("LSTM", lstm, (2,)),
            ("KscScaleKwarg", {"call_scale": 2.0}, (2,)),
        ],
        (3, 2),
    )
    model = build_model(spec, framework)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 2)).astype("float32")
    x[:, 0] = 0
    masked = np.asarray(model(x))
    # The mask reaches the LSTM: a masked first step leaves the output as without it.
    assert np.allclose(masked, 2.0 * np.asarray(model.get_layer("n1_lstm")(x[:, 1:])), atol=1e-6)
    # The graph calls KscScaleKwarg with the spec's scale, not the default.
    layer = model.get_layer("n2_kscscalekwarg")
    ones = np.ones((1, 2), "float32")
    assert np.allclose(layer(ones), 1.0) and np.allclose(layer(ones, scale=2.0), 2.0)

    noise = custom_objects(K)["KscSeededNoise"]
    a, b = noise(stddev=1.0, seed=7), noise(stddev=1.0, seed=7)
    z = np.zeros((2, 3), "float32")
    assert np.array_equal(a(z), z)  # inference: no noise
    first = np.asarray(a(z, training=True))
    assert np.array_equal(first, np.asarray(b(z, training=True)))  # same seed, same noise
    assert not np.array_equal(first, np.asarray(a(z, training=True)))  # the state advances

    block = custom_objects(K)["KscNormBlock"](name="block")
    y = np.arange(6, dtype="float32").reshape(2, 3)
    block(y)
    assert not np.allclose(block(y, training=True), block(y, training=False))

    gain = unregistered_objects(K)["KscGain"]
    assert K.saving.get_registered_name(gain) == "KscGain"  # not registered
    assert "KscGain" not in custom_objects(K)
    _clear()


def test_new_kinds_are_drawn_and_recorded_by_coverage():
    from strategies.coverage import draw_specs

    f = draw_specs(400, seed=1)
    for name in ("KscMaskZero", "KscScaleKwarg", "KscSeededNoise", "KscNormBlock", "KscGain"):
        assert f.kinds[name] > 0, name
