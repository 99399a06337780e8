"""The spec model and the generator, without TensorFlow: JSON round trip, graph invariants,
shape rules re-derived from the catalog, knobs, and no health-check rejections."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strategies import ModelSpec, from_json, model_specs, regularizer_specs
from strategies.catalog import REGISTRY
from strategies.catalog.base import MAX_ELEMENTS, prod
from strategies.catalog.preprocessing import _vocab_size

FAST = settings(max_examples=150, derandomize=True, deadline=None)


@FAST
@given(model_specs())
def test_json_round_trip_is_exact(spec):
    text = spec.to_json()
    back = from_json(text)
    assert back == spec
    assert hash(back) == hash(spec)
    assert back.to_json() == text
    json.loads(text)  # plain JSON


@FAST
@given(model_specs())
def test_repr_is_short_and_readable(spec):
    r = repr(spec)
    assert r.startswith("ModelSpec<")
    assert "LayerSpec(" not in r and "InputSpec(" not in r
    # a few hundred characters per layer at most
    assert len(r) < 400 * (spec.num_layers() + len(spec.inputs)) + 200


def _check_graph(spec: ModelSpec, outer: ModelSpec | None = None, outer_shapes=None) -> None:
    names = {i.name for i in spec.inputs}
    shapes = {i.name: i.shape for i in spec.inputs}
    consumed: set[str] = set()
    layer_names: dict[str, str] = {}
    for n in spec.nodes:
        # acyclic by construction: every input names an earlier tensor
        assert all(r in shapes for r in n.inputs), (n, sorted(shapes))
        consumed.update(n.inputs)
        if n.submodel is not None:
            sub = n.submodel
            assert sub.topology in ("sequential", "functional")
            assert len(sub.inputs) == 1 and len(sub.outputs) == 1
            assert sub.inputs[0].shape == shapes[n.inputs[0]]
            assert sub.node(sub.outputs[0]).out_shape == n.out_shape
            _check_graph(sub, spec, shapes)
        elif n.shares is not None:
            # "outer:nK": a layer of the model holding this sub-model
            holder, held = (outer, outer_shapes) if n.shares.startswith("outer:") else (
                spec, shapes)
            orig = holder.node(n.shares.removeprefix("outer:"))
            assert (orig.kind, orig.params, orig.regularizers) == (
                n.kind,
                n.params,
                n.regularizers,
            )
            assert held[orig.inputs[0]] == shapes[n.inputs[0]]
            assert n.layer_name == orig.layer_name
        else:
            kind = REGISTRY[n.kind]
            in_shapes = tuple(shapes[r] for r in n.inputs)
            # the stored shape is the catalog's shape rule applied to the input shapes
            assert tuple(kind.out_shape(in_shapes, n.param_dict)) == n.out_shape
            assert len(in_shapes[0]) in kind.ranks
            assert n.layer_name not in layer_names.values(), n.layer_name
        assert all(d >= 1 for d in n.out_shape), n
        assert prod(n.out_shape) <= 4 * MAX_ELEMENTS, n
        layer_names[n.id] = n.layer_name
        shapes[n.id] = n.out_shape
    assert names <= consumed, "every input reaches a layer"
    assert spec.outputs, "at least one output"
    for o in spec.outputs:
        assert o not in consumed, "outputs are sinks"
    sinks = [n.id for n in spec.nodes if n.id not in consumed]
    assert set(sinks) <= set(spec.outputs), "no dangling layer"
    out_names = spec.output_names()
    assert len(set(out_names)) == len(out_names), "output names are unambiguous"


@FAST
@given(model_specs())
def test_graph_invariants(spec):
    _check_graph(spec)
    if spec.topology == "sequential":
        assert len(spec.inputs) == 1 and len(spec.outputs) == 1
        for prev, n in zip(spec.nodes, spec.nodes[1:], strict=False):
            assert n.inputs == (prev.id,)
    if spec.topology == "nested":
        assert any(n.submodel is not None for n in spec.nodes)
    batch = {i.batch_size for i in spec.inputs}
    assert len(batch) == 1, "one batch size for all inputs"
    for i in spec.inputs:
        if i.dtype == "int32":
            assert i.vocab and i.vocab >= 2
            for n in spec.nodes:
                if i.name in n.inputs:
                    assert n.kind in INT_READERS, n.kind
                    if n.kind in ("Embedding", "CategoryEncoding"):  # every id has a slot
                        size = n.param_dict.get("input_dim") or n.param_dict["num_tokens"]
                        assert size >= i.vocab
                    if n.kind == "IntegerLookup":  # a strict subset: ids hit and miss it
                        assert _vocab_size(n.param_dict) < i.vocab
        if i.dtype == "string":
            assert i.vocab and i.vocab >= 3 and i.shape[0] >= 1
            readers = [n for n in spec.nodes if i.name in n.inputs]
            assert readers and all(n.kind in ("StringLookup", "Hashing") for n in readers)
            for n in readers:
                if n.kind == "StringLookup":
                    assert _vocab_size(n.param_dict) < i.vocab


INT_READERS = ("Embedding", "CategoryEncoding", "Hashing", "IntegerLookup")


def test_names_are_deterministic_and_explicit():
    @settings(max_examples=30, derandomize=True, deadline=None)
    @given(model_specs())
    def check(spec):
        for n in spec.nodes:
            assert n.layer_name.startswith(n.shares or n.id) or n.shares
            assert n.layer_name == n.layer_name.lower()
        assert spec.name == "model"
        assert [i.name for i in spec.inputs] == [f"in_{j}" for j in range(len(spec.inputs))]

    check()


@pytest.mark.parametrize("kind", ["Conv2D", "LSTM", "Add", "MultiHeadAttention", "Embedding"])
def test_kinds_knob(kind):
    allowed = {kind} | {"Flatten", "Dense", "Reshape", "Activation"}  # adapters may appear

    @settings(max_examples=15, derandomize=True, deadline=None)
    @given(model_specs(kinds=[kind], max_layers=3))
    def check(spec):
        assert kind in spec.kinds()
        assert set(spec.kinds()) <= allowed

    check()


@pytest.mark.parametrize("topology", ["sequential", "functional", "subclassed", "nested"])
def test_topologies_knob(topology):
    @settings(max_examples=15, derandomize=True, deadline=None)
    @given(model_specs(topologies=[topology]))
    def check(spec):
        assert spec.topology == topology
        if spec.dict_inputs:
            assert topology in ("functional", "nested")

    check()


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
def test_dtypes_knob(dtype):
    @settings(max_examples=15, derandomize=True, deadline=None)
    @given(model_specs(dtypes=[dtype]))
    def check(spec):
        assert spec.dtype == dtype
        assert {i.dtype for i in spec.inputs} <= {dtype, "int32", "string"}

    check()


@pytest.mark.parametrize("knobs", [{"kinds": ["NoSuchLayer"]}, {"topologies": ["graph"]}])
def test_unknown_knob_values_are_errors(knobs):
    @settings(max_examples=1, database=None, deadline=None)
    @given(model_specs(**knobs))
    def check(spec):
        pass

    with pytest.raises(ValueError):
        check()


@settings(max_examples=100, derandomize=True, deadline=None)
@given(regularizer_specs(), regularizer_specs(orthogonal=False))
def test_regularizer_specs(a, b):
    assert a.kind in ("l1", "l2", "l1l2", "orthogonal", "ksc_scaled_l2")
    assert b.kind != "orthogonal"
    for _, v in a.params + b.params:
        assert v in ("rows", "columns") or v >= 0


def test_regularizer_factors_include_zero():
    seen = set()

    @settings(max_examples=60, derandomize=True, deadline=None)
    @given(regularizer_specs())
    def check(r):
        seen.update(v for _, v in r.params if isinstance(v, float))

    check()
    assert 0.0 in seen


def test_catalog_size_and_families():
    from strategies.catalog import FAMILIES

    assert len(REGISTRY) >= 60
    assert {k.family for k in REGISTRY.values()} == set(FAMILIES)
    assert any(not k.deterministic_in_training for k in REGISTRY.values())


@settings(max_examples=50, derandomize=True, deadline=None)
@given(st.data())
def test_input_specs_shrink_targets(data):
    from strategies import input_specs

    spec = data.draw(input_specs())
    assert spec.dtype == "float32" and 1 <= len(spec.shape) <= 4
    assert all(1 <= d <= 8 for d in spec.shape)


def test_coverage_table_counts_what_was_drawn():
    from strategies.coverage import draw_specs, reachable_combos, reachable_pairs, table

    f = draw_specs(60, seed=1)
    assert f.specs == 60
    assert set(f.kinds) <= set(REGISTRY)
    assert set(f.combos) <= reachable_combos()
    assert set(f.pairs) <= reachable_pairs()
    text = table(f)
    assert "layer kinds drawn:" in text and "adjacent kind pairs:" in text


def test_coverage_draws_in_runs_as_many_specs_as_asked():
    from strategies.coverage import draw_specs

    f = draw_specs(25, seed=1, per_run=10)
    assert f.specs == 25
    assert f.kinds != draw_specs(25, seed=1).kinds  # other runs, other specs
