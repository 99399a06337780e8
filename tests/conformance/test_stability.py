"""SIG-STABLE's cross-worker comparison and the corpus files."""

from conformance import corpus as stability
from conformance.plugin.stability import compare_workers


def test_workers_that_agree_pass():
    prints = {"gw0": {"a": "x", "b": "y"}, "gw1": {"a": "x", "b": "y"}}
    assert compare_workers(prints) == []


def test_a_disagreement_names_the_spec_and_workers():
    prints = {"gw0": {"a": "x", "b": "y"}, "gw1": {"a": "x", "b": "z"}}
    problems = compare_workers(prints)
    assert len(problems) == 1
    assert problems[0].startswith("b: workers disagree")
    assert "gw0=y" in problems[0] and "gw1=z" in problems[0]


def test_a_spec_seen_on_one_worker_only_is_a_problem():
    prints = {"gw0": {"a": "x"}, "gw1": {}}
    assert compare_workers(prints) == ["a: fingerprinted on fewer than two workers"]


def test_corpus_has_at_least_twenty_specs_that_round_trip():
    names = stability.corpus_names()
    assert len(names) >= 20
    for name in names:
        spec = stability.corpus_spec(name)
        assert type(spec).from_json(spec.to_json()) == spec


def test_corpus_inputs_are_deterministic_and_fit_the_spec():
    import numpy as np

    for name, spec in stability.corpus_specs():
        first, second = stability.corpus_inputs(spec), stability.corpus_inputs(spec)
        assert sorted(first) == sorted(spec.input_names())
        for item in spec.inputs:
            assert first[item.name].shape[1:] == tuple(item.shape), name
            assert first[item.name].dtype == np.dtype(item.dtype), name
            np.testing.assert_array_equal(first[item.name], second[item.name])
            if item.vocab is not None:
                assert first[item.name].max() < item.vocab


def test_goldens_cover_the_corpus():
    for framework in ("keras", "tf_keras"):
        golden = stability.golden(framework)
        assert sorted(golden) == stability.corpus_names(), (
            f"golden-{framework}.json is stale: python -m conformance corpus --write-golden"
        )
