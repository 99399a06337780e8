"""The differential checks: field-by-field signature comparison, ordering, aggregation.

Most tests use plain data; one saves a one-layer corpus spec with two implementations.
"""

from conformance import corpus as stability
from conformance.tools import differential
from strategies.spec import InputSpec, LayerSpec, ModelSpec


def _spec(outputs=("n0",), names=("dense_out",)):
    nodes = tuple(
        LayerSpec(
            id=node_id,
            kind="Dense",
            inputs=("x",),
            params=(("units", 3),),
            out_shape=(3,),
            layer_name=name,
        )
        for node_id, name in zip(outputs, names)
    )
    return ModelSpec(
        inputs=(InputSpec(name="x", shape=(4,), dtype="float32"),), nodes=nodes, outputs=outputs
    )


def _signature(outputs, batch=None, dtype="float32"):
    return (
        {"x": (dtype, [batch, 4])},
        {key: ("float32", [batch, 3]) for key in outputs},
    )


def test_equal_signatures_report_every_field_equal():
    spec = _spec()
    a = differential.signature_fields(_signature(["dense_out"]), spec)
    results = differential.compare_signatures(a, dict(a))
    assert [r.field for r in results] == list(differential.SIGNATURE_FIELDS)
    assert all(r.equal for r in results)


def test_a_planted_difference_is_reported_with_both_values():
    spec = _spec()
    a = differential.signature_fields(_signature(["dense_out"]), spec)
    b = differential.signature_fields(_signature(["output_0"], batch=2, dtype="float64"), spec)
    results = {r.field: r for r in differential.compare_signatures(a, b)}
    assert results["input names"].equal
    assert not results["output keys"].equal
    assert results["output keys"].a == ["dense_out"]
    assert results["output keys"].b == ["output_0"]
    assert not results["input dtypes"].equal
    assert (results["input dtypes"].a, results["input dtypes"].b) == (["float32"], ["float64"])
    assert not results["input shapes"].equal
    assert results["input shapes"].b == [[2, 4]]
    assert results["output dtypes"].equal
    text = results["output keys"].describe("tf_keras", "keras_export")
    assert text == "output keys: differs (tf_keras: ['dense_out']; keras_export: ['output_0'])"


def test_output_keys_follow_the_model_order_or_natural_order():
    spec = _spec(outputs=("n0", "n1"), names=("zeta", "alpha"))
    assert differential.ordered_output_keys(["alpha", "zeta"], spec) == ["zeta", "alpha"]
    keys = [f"output_{i}" for i in (10, 2, 0, 1)]
    assert differential.ordered_output_keys(keys, spec) == [
        "output_0",
        "output_1",
        "output_2",
        "output_10",
    ]
    assert differential.output_key_style(["zeta", "alpha"], spec) == "output layer names"
    assert differential.output_key_style(["output_0", "output_1"], spec).startswith("output_0")
    assert differential.output_key_style(["output_1", "output_2"], spec).startswith("output_1")


def test_compare_outputs_names_the_difference():
    import numpy as np

    ones = [np.ones((2, 3), "float32")]
    assert differential.compare_outputs(ones, [np.ones((2, 3), "float32")], "x") is None
    problem = differential.compare_outputs(ones, [np.zeros((2, 3), "float32")], "x")
    assert "values differ" in problem
    assert "2 outputs" in differential.compare_outputs(ones * 2, ones, "x")


def test_summarize_counts_specs_and_keeps_the_first_difference():
    field = {"field": "output keys", "equal": False, "a": ["d"], "b": ["output_0"]}
    same = {"field": "input names", "equal": True, "a": ["x"], "b": ["x"]}
    per_spec = {
        "spec-a": {
            "pairs": {"p | q": {"fields": [field, same], "outputs": None, "originals": None}},
            "cross": {"p": {"tf.saved_model.load": {"ok": True}, "q": {"error": "boom"}}},
            "kept": {},
        },
        "spec-b": {
            "pairs": {"p | q": {"fields": [same], "outputs": "differ", "originals": None}},
            "cross": {"p": {"tf.saved_model.load": {"ok": True}, "q": {"no_loader": "none"}}},
            "kept": {},
        },
        "spec-c": {"error": "Traceback ..."},
    }
    summary = differential.summarize({"per_spec": per_spec})
    pair = summary["pairs"]["p | q"]
    assert pair["output keys"] == {
        "equal": 0,
        "total": 1,
        "example": {"spec": "spec-a", "detail": {"a": ["d"], "b": ["output_0"]}},
    }
    assert (pair["input names"]["equal"], pair["input names"]["total"]) == (2, 2)
    assert pair["serving outputs"]["example"] == {"spec": "spec-b", "detail": "differ"}
    cross = summary["cross"]["p"]
    assert (cross["tf.saved_model.load"]["equal"], cross["tf.saved_model.load"]["total"]) == (2, 2)
    assert cross["q"]["example"] == {"spec": "spec-a", "detail": "boom"}
    assert cross["q"]["no_loader"] == "none"


def test_reference_and_keras_export_on_a_one_layer_spec(tmp_path):
    """Real saves: equal outputs, output keys that differ (layer name vs output_0)."""
    from conformance.api import resolve_implementation

    spec = stability.corpus_spec("spec-01")
    impls = [resolve_implementation("reference"), resolve_implementation("keras_export")]
    result = differential.compare_spec(impls, spec, str(tmp_path))
    assert result["saves"] == {"reference": None, "keras_export": None}
    pair = result["pairs"]["reference | keras_export"]
    fields = {f["field"]: f for f in pair["fields"]}
    assert fields["output keys"]["equal"] is False
    assert fields["output keys"]["a"] == list(spec.output_names())
    assert fields["output keys"]["b"] == ["output_0"]
    assert fields["input names"]["equal"] and fields["output shapes"]["equal"]
    assert pair["outputs"] is None and pair["originals"] is None
    for saver in ("reference", "keras_export"):
        assert result["cross"][saver][differential.SERVING_LOADER].get("ok"), result["cross"]
    assert result["cross"]["keras_export"]["keras_export"].get("ok"), result["cross"]
    assert result["kept"]["keras_export"]["keras_api"] is False
    assert result["kept"]["reference"]["keras_api"] is True
