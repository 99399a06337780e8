"""LOAD-HOSTILE: saved models changed by Hypothesis-drawn mutations load or fail clearly."""

import os
import shutil

import pytest
from hypothesis import Phase, given, settings

from conformance import corpus, hostile
from conformance.plugin.drawing import SUITE_HEALTH_CHECKS, current_profile_name

# Mutation lists per profile: a load of a mutated copy takes about 0.1 s in the worker.
MUTATIONS = {"nightly": 20000}
DEFAULT_MUTATIONS = 300


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory):
    return str(tmp_path_factory.mktemp("hostile-sentinel") / "code-ran")


@pytest.mark.clause("LOAD-HOSTILE")
def test_hostile_files_load_or_fail_clearly(
    implementation, impl_spec, clause, sentinel, tmp_path
):
    name, spec = corpus.supported_specs(implementation)[0]
    source = clause.case(spec).path
    scratch = tmp_path / "mutated"
    scratch.mkdir()
    kept = os.environ.get("CONFORMANCE_HOSTILE_DIR") or str(tmp_path / "hostile-failures")
    tally = {}  # a plain dict: xdist serializes it into the report, not a Counter
    clause.record_hostile(tally)
    count = MUTATIONS.get(current_profile_name(), DEFAULT_MUTATIONS)
    # The profile's phases (triage does not shrink), seed and database; no explicit example.
    phases = settings().phases

    with hostile.Worker(impl_spec, warm_path=source) as worker:

        @settings(
            max_examples=count,
            deadline=None,
            phases=[p for p in phases if p != Phase.explicit],
            suppress_health_check=SUITE_HEALTH_CHECKS,
        )
        @given(mutations=hostile.mutation_lists())
        def check(mutations):
            with clause.example(spec, model=name, mutations=mutations):
                path, done, result = hostile.load_hostile(
                    worker, mutations, source, str(scratch), sentinel
                )
                outcome = result["outcome"]
                tally[outcome] = tally.get(outcome, 0) + 1
                if outcome == "no-loader":
                    pytest.skip(f"{implementation.name} has no loader")
                if outcome in hostile.PASSING:
                    shutil.rmtree(path)
                    return
                os.makedirs(kept, exist_ok=True)
                saved = os.path.join(kept, f"{len(os.listdir(kept)):04d}")
                shutil.copytree(path, saved, symlinks=True)
                detail = f" ({result['type']})" if result.get("type") else ""
                # The mutations and the kept copy first: a short report shows one line.
                raise AssertionError(
                    f"{mutations!r} (copy kept at {saved}) ended in {outcome}{detail}: "
                    f"{result.get('message', '')[:400]}\n  applied: {'; '.join(done)}"
                    + (f"\n  raised at:\n{result['where']}" if result.get("where") else "")
                )

        check()
