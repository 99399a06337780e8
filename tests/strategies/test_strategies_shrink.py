"""A deliberately false property over specs shrinks to a small spec."""

from __future__ import annotations

from hypothesis import find, settings

from strategies import model_specs

SHRINK = settings(derandomize=True, database=None, max_examples=1000, deadline=None)


def _is_tiny(spec, n_nodes):
    assert len(spec.nodes) == n_nodes, spec
    assert len(spec.inputs) == 1, spec
    assert spec.dtype == "float32", spec
    assert spec.seed == 0, spec
    assert all(d == 1 for d in spec.inputs[0].shape), spec
    assert spec.topology == "sequential", spec


def test_false_property_about_depth_shrinks_to_a_three_layer_chain():
    # "no model has three layers or more" is false; the counterexample shrinks to a chain
    # of exactly three layers on the smallest float32 input.
    spec = find(model_specs(), lambda s: len(s.nodes) >= 3, settings=SHRINK)
    _is_tiny(spec, 3)
    for prev, n in zip(spec.nodes, spec.nodes[1:], strict=False):
        assert n.inputs == (prev.id,)


def test_false_property_about_a_kind_shrinks_to_that_layer_alone():
    # "no model contains a Conv2D" is false; the counterexample is one Conv2D on (1, 1, 1).
    spec = find(model_specs(), lambda s: "Conv2D" in s.kinds(), settings=SHRINK)
    _is_tiny(spec, 1)
    (node,) = spec.nodes
    assert node.kind == "Conv2D"
    assert node.param_dict["filters"] == 1
    assert node.param_dict["kernel_size"] == (1, 1)
    assert not node.regularizers
