"""Mixed precision: a policy for the whole model or for single layers, written to JSON only
when set, built in both frameworks with float32 variables and the policy's compute dtype."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from strategies import call_inputs, sample_specs
from strategies.build import FRAMEWORKS, build_model
from strategies.generate import training_batch
from strategies.spec import MIXED_POLICIES, ModelSpec
from tests.strategies.keys import json_keys

_COMPUTE = {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


def test_knob_json_and_round_trip():
    assert not any(s.mixed_layers() for s in sample_specs(40, seed=6, mixed_precision=False))
    forced = sample_specs(40, seed=6, mixed_precision=True, dtypes=["float32"])
    mixed = [s for s in forced if s.mixed_layers()]
    assert len(mixed) > 10
    assert {s.mixed_precision for s in mixed} - {""}, "some whole-model policies"
    assert any(not s.mixed_precision for s in mixed), "some single-layer policies"
    for spec in mixed:
        assert spec.dtype == "float32" and spec.training is None
        assert ModelSpec.from_json(spec.to_json()) == spec
    for spec in forced:
        if not spec.mixed_layers():
            assert not json_keys(json.loads(spec.to_json())) & {"policy", "mixed_precision"}


def _leaf_layers(model):
    from strategies.build import _leaf_layers

    return _leaf_layers(model)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_mixed_layers_keep_float32_variables_and_compute_lower(framework):
    specs = sample_specs(20, seed=8, mixed_precision=True, dtypes=["float32"])
    specs = [s for s in specs if s.mixed_layers()][:5]
    assert specs
    for spec in specs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = build_model(spec, framework)
        by_name = {layer.name: layer for layer in _leaf_layers(model)}
        for node in spec.mixed_layers():
            layer = by_name[node.layer_name]
            policy = node.policy or spec.mixed_precision
            assert layer.compute_dtype == _COMPUTE[policy], (framework, node.layer_name)
            for v in layer.weights:
                if "float" in str(v.dtype):
                    assert "float32" in str(v.dtype), (framework, node.layer_name, v.dtype)
        data, _ = training_batch(spec, 0)
        out = model(call_inputs(spec, data), training=False)
        for o in out if isinstance(out, list | tuple) else [out]:
            assert np.all(np.isfinite(np.asarray(o, dtype=np.float64))), spec
    assert set(MIXED_POLICIES) == set(_COMPUTE)
