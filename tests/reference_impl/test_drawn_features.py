"""The reference on drawn models with open dimensions and with mixed precision: the clauses'
own checks (VARS-EXACT, LOAD-REVIVE, SIG-SERVING, SIG-DYNAMIC) on a few seeded specs."""

from __future__ import annotations

import warnings

import pytest

from conformance.clauses.test_load import check_revive
from conformance.clauses.test_signatures import (
    check_dynamic_calls,
    check_dynamic_signatures,
    check_serving,
)
from conformance.clauses.test_variables import check_variables
from conformance.implementations import ReferenceImplementation
from conformance.plugin.example import CaseCache
from strategies import sample_examples


def _cases(tmp_path, count, **knobs):
    impl = ReferenceImplementation()
    cache = CaseCache(str(tmp_path))
    for spec, data in sample_examples(count, seed=11, max_layers=4, **knobs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield impl, cache.get(impl, spec), data


@pytest.mark.parametrize("policy", ["mixed", "open"])
def test_reference_passes_the_clauses_on_drawn_features(tmp_path, policy):
    knobs = (
        {"mixed_precision": True, "dtypes": ["float32"]} if policy == "mixed" else
        {"open_dims": True}
    )
    checked = 0
    for impl, case, data in _cases(tmp_path, 8, **knobs):
        spec = case.spec
        if not (spec.mixed_layers() if policy == "mixed" else spec.open_inputs()):
            continue
        check_variables(case)
        check_serving(case)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            revived = impl.load(case.path)
        check_revive(case, revived, data)
        if policy == "open":
            check_dynamic_signatures(case)
            check_dynamic_calls(case, revived)
        else:  # the layers compute in the policy's dtype after the load
            by_name = {layer.name: layer for layer in revived._flatten_layers()}
            for node in spec.mixed_layers():
                layer = by_name.get(node.layer_name)
                policy = node.policy or spec.mixed_precision
                assert layer is not None, node.layer_name
                assert layer.compute_dtype == policy.split("_")[1], (node.layer_name, policy)
                if layer.weights:
                    assert all(v.dtype == "float32" for v in layer.weights if "float" in
                               str(v.dtype)), node.layer_name
        checked += 1
    assert checked >= 1, checked
