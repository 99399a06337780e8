"""SIG-STABLE's cross-worker comparison and the corpus files."""

from types import SimpleNamespace

from conformance import corpus as stability
from conformance.plugin.report import ClauseReport
from conformance.plugin.stability import (
    across_processes_on_the_controller,
    compare_workers,
    compared_specs,
    worker_fingerprints,
)


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


def test_the_controller_counts_one_example_per_spec_compared():
    """-n 0 counts one SIG-STABLE example per corpus spec in the two-subprocess test; -n 2
    skips that test on the workers, so the controller's comparison counts the same (the ci
    profile counted 24 examples fewer with -n 2: issue 16)."""
    impl = SimpleNamespace(name="stub", claims=None, supports=None)
    specs = stability.supported_specs(impl)  # what the two-subprocess test walks
    recorded = {name: "digest" for name, _ in specs}
    per_worker = {w: worker_fingerprints(impl, None, dict(recorded)) for w in ("gw0", "gw1")}
    report = ClauseReport()
    before = report.clauses["SIG-STABLE"].examples
    report.add_cross_worker(
        compare_workers(per_worker), workers=sorted(per_worker), compared=compared_specs(per_worker)
    )
    assert report.clauses["SIG-STABLE"].examples - before == len(specs) > 0
    assert report.cross_worker["compared"] == len(specs)
    assert report.clauses["SIG-STABLE"].tests == {}  # no failure entry when the workers agree


def test_with_one_worker_the_worker_runs_the_subprocess_test():
    assert compared_specs({"gw0": {"a": "x"}}) == []
    assert compared_specs({"gw0": {"a": "x"}, "gw1": {"a": "x", "b": "y"}}) == ["a", "b"]
    assert not across_processes_on_the_controller(SimpleNamespace())  # no xdist
    one = SimpleNamespace(workerinput={"workerid": "gw0", "workercount": 1})
    two = SimpleNamespace(workerinput={"workerid": "gw0", "workercount": 2})
    assert not across_processes_on_the_controller(one)
    assert across_processes_on_the_controller(two)
