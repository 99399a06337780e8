"""The zoo: real architectures as fixed specs of the ``Application`` kind, never drawn.

The saves themselves run in the suite (the zoo's first model is an explicit example of
CALL-INFERENCE, VARS-EXACT, LAYERS-TREE and LOAD-REVIVE in every profile); here, what decides
that they run and what they build.
"""

import numpy as np
import pytest
from hypothesis.errors import UnsatisfiedAssumption

from conformance import corpus
from conformance.plugin import drawing
from strategies.catalog import FIXED, REGISTRY, all_kinds

ZOO_PROPERTIES = (
    ("conformance.clauses.test_calls", "test_call_and_serving_equal_model"),
    ("conformance.clauses.test_variables", "test_variables_saved_once_bitwise"),
    ("conformance.clauses.test_variables", "test_layer_tree_mirrors_model"),
    ("conformance.clauses.test_load", "test_revived_model_behaves"),
)


def test_zoo_specs_are_small_fixed_application_specs():
    names = corpus.zoo_names()
    assert names[0] == "MobileNet" and len(names) == len(set(names)) >= 5
    for name, spec in corpus.zoo_specs():
        assert spec.kinds() == ("Application",), name
        assert spec.node("n0").param_dict["name"] == name
        assert spec.topology == "functional" and spec.dtype == "float32"
        assert spec.inputs[0].shape == (32, 32, 3), name
        assert spec.output_names() == (f"n0_{name.lower()}",)


def test_application_is_fixed_and_never_drawn():
    import strategies

    assert "Application" in FIXED and "Application" not in REGISTRY
    assert "Application" not in all_kinds()
    with pytest.raises(ValueError, match="Application"):
        strategies.sample_specs(1, kinds=["Application"])
    drawn = {k for spec in strategies.sample_specs(200, seed=3) for k in spec.kinds()}
    assert "Application" not in drawn


def _resolve(index, takes="first"):
    try:
        spec, _ = drawing.ZooExample(index, takes)
    except UnsatisfiedAssumption:
        return None
    return spec


@pytest.fixture
def zoo_state(monkeypatch):
    monkeypatch.setitem(drawing._ZOO, "choice", None)
    monkeypatch.setattr(drawing, "_SUPPORTED", {})
    return monkeypatch


@pytest.mark.filterwarnings("ignore:Using `reject` outside a property-based test")
def test_zoo_examples_follow_the_choice_and_the_supports(zoo_state):
    first, second = corpus.zoo_names()[:2]
    zoo_state.setattr(drawing, "current_profile_name", lambda: "dev")
    assert _resolve(0) == corpus.zoo_spec(first) and _resolve(1) is None
    assert _resolve(0, takes="all") is None  # outside nightly only the one CI property
    zoo_state.setattr(drawing, "current_profile_name", lambda: "nightly")
    assert _resolve(1) == corpus.zoo_spec(second)
    assert _resolve(0, takes="all") == corpus.zoo_spec(first)
    assert _resolve(len(corpus.zoo_names())) is None
    drawing.zoo_for("none")
    assert _resolve(0) is None
    drawing.zoo_for("all")
    zoo_state.setattr(drawing, "_SUPPORTED", {"kinds": ["Dense"]})
    assert _resolve(0) is None  # outside the implementation's supports: skipped


def test_the_zoo_properties_carry_every_zoo_model_after_the_first_example():
    import importlib

    firsts = []
    for module, name in ZOO_PROPERTIES:
        test = getattr(importlib.import_module(module), name)
        explicit = [e.kwargs["example"] for e in reversed(test.hypothesis_explicit_examples)]
        assert explicit[0] is drawing.FIRST_EXAMPLE, name
        zoo = [e.index for e in explicit[1:] if isinstance(e, drawing.ZooExample)]
        assert zoo == list(range(len(corpus.zoo_names()))), name
        takes = {e.takes for e in explicit[1:] if isinstance(e, drawing.ZooExample)}
        firsts.extend([name] if takes == {"first"} else [])
    assert firsts == ["test_call_and_serving_equal_model"], "one CI property takes the first"


def test_smallest_zoo_model_builds_alike_in_both_frameworks():
    """Its layer names are the same in keras and tf_keras applications, so the seeded
    weights and the outputs are too (not so for MobileNetV3Small or DenseNet121)."""
    import strategies
    from strategies.build import weight_arrays

    spec = corpus.zoo_spec(corpus.zoo_names()[0])
    x = corpus.corpus_inputs(spec)["in_0"]
    built = {fw: strategies.build_model(spec, framework=fw) for fw in ("keras", "tf_keras")}
    weights = {fw: weight_arrays(m) for fw, m in built.items()}
    assert sorted(weights["keras"]) == sorted(weights["tf_keras"])
    for key, value in weights["keras"].items():
        np.testing.assert_array_equal(value, weights["tf_keras"][key], err_msg=key)
    outputs = {fw: np.asarray(m(x, training=False)) for fw, m in built.items()}
    assert outputs["keras"].shape == (len(x), *spec.node("n0").out_shape)
    np.testing.assert_allclose(outputs["keras"], outputs["tf_keras"], rtol=1e-5, atol=1e-6)


def test_layer_tree_names_a_sub_layer_saved_with_an_empty_keras_api(tmp_path):
    """The zoo's finding: tf_keras saves EfficientNet's Normalization layer with a keras_api
    holding nothing; LAYERS-TREE says so instead of failing on an AttributeError."""
    from types import SimpleNamespace

    import tf_keras

    from conformance.clauses.test_variables import check_layer_tree
    from conformance.savedmodel import tree

    inputs = tf_keras.Input((4, 4, 3))
    hidden = tf_keras.layers.Normalization(axis=-1, name="norm")(inputs)
    model = tf_keras.Model(inputs, tf_keras.layers.Conv2D(2, 1, name="conv")(hidden))
    path = str(tmp_path / "model")
    model.save(path, save_format="tf")
    case = SimpleNamespace(model=model, loaded=tree.load(path))
    with pytest.raises(AssertionError, match=r"\('norm'\) is saved with a keras_api that has no"):
        check_layer_tree(case)
