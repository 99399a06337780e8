"""A deliberately false property over specs shrinks to a small spec."""

from __future__ import annotations

from hypothesis import find, settings

from strategies import model_specs

SHRINK = settings(derandomize=True, database=None, max_examples=1000, deadline=None)


def test_false_property_about_a_kind_shrinks_to_a_small_spec():
    # "no model contains a Conv2D" is false. The counterexample found shrinks to a tiny spec
    # (in practice one Conv2D on a float32 (1, 1, 1) input, everything else minimal).
    spec = find(model_specs(), lambda s: "Conv2D" in s.kinds(), settings=SHRINK)
    assert len(spec.nodes) <= 3, spec
    assert len(spec.inputs) == 1, spec
    assert spec.dtype == "float32", spec
    assert spec.seed == 0, spec
    assert all(d == 1 for d in spec.inputs[0].shape), spec
    conv = next(n for n in spec.nodes if n.kind == "Conv2D")
    assert conv.param_dict["filters"] == 1
    assert conv.param_dict["kernel_size"] == (1, 1)
    assert not conv.regularizers
