"""The clause registry, the contract document, and the adapter checks."""

import pytest

from conformance import api
from conformance import contract as clauses
from conformance.api import ImplementationError, resolve_implementation

ISSUE_IDS = (
    "FORMAT-KERAS-API VARS-EXACT LAYERS-TREE CALL-INFERENCE CALL-TRAINING CALL-CONSISTENT "
    "LOSSES-REGULARIZATION LOSSES-ACTIVITY SIG-SERVING SIG-STABLE SIG-DYNAMIC SAVE-UNBUILT "
    "SAVE-OVERWRITE "
    "SAVE-OPTIMIZER SAVE-SIGNATURES SAVE-NO-MUTATION SAVE-ATOMIC SAVE-CONCURRENT LOAD-REVIVE "
    "LOAD-RESAVE LOAD-CORRUPT"
).split() + ["LOAD-HOSTILE", "LOAD-RESUME", "LOAD-LEGACY", "SAVE-ASSETS"] + [  # 16's, 12's, 13's
    "CONSUMER-TFLITE", "CONSUMER-ONNX"  # issue 6's optional consumer clauses
]


def test_clause_ids_are_the_public_ones():
    assert list(clauses.CLAUSE_IDS) == ISSUE_IDS


def test_every_clause_says_why_and_how_and_has_a_module():
    from pathlib import Path

    package = Path(clauses.__file__).parent / "clauses"
    for clause in clauses.CLAUSES:
        assert clause.requires and clause.why and clause.checked_by, clause.id
        assert (package / f"test_{clause.group}.py").exists(), clause.id


def test_every_clause_is_checked_by_a_test():
    import ast
    from pathlib import Path

    package = Path(clauses.__file__).parent / "clauses"
    marked = set()
    for module in package.glob("test_*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", None) == "clause"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                marked.add(node.args[0].value)
    assert marked == set(clauses.CLAUSE_IDS)


def test_contract_document_is_generated_from_the_registry():
    from pathlib import Path

    document = Path(clauses.__file__).parent / "CONTRACT.md"
    assert document.read_text() == clauses.contract_markdown(), (
        "CONTRACT.md is stale: python -m conformance contract > conformance/CONTRACT.md"
    )


def test_parse_clause_list():
    assert clauses.parse_clause_list("VARS-EXACT, SIG-STABLE") == {"VARS-EXACT", "SIG-STABLE"}
    with pytest.raises(ValueError, match="NOPE"):
        clauses.parse_clause_list("VARS-EXACT,NOPE")


def test_resolve_builtins_without_importing_them_eagerly():
    impl = resolve_implementation("reference")
    assert impl.name == "reference" and impl.framework == "keras"
    assert resolve_implementation("tf_keras").framework == "tf_keras"


def test_resolving_a_builtin_imports_no_framework():
    import subprocess
    import sys

    script = (
        "import sys; from conformance.api import resolve_implementation; "
        "[resolve_implementation(n) for n in ('reference', 'tf_keras', 'keras_export')]; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'tf_keras', 'reference_impl') "
        "if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]", f"resolving the built-ins imported {proc.stdout}"


@pytest.mark.parametrize(
    "spec", ["", "nope", "no_module_zz:X", "conformance.api:Missing", "conformance.api:"]
)
def test_resolve_errors_are_implementation_errors(spec):
    with pytest.raises(ImplementationError):
        resolve_implementation(spec)


def test_adapter_attributes_are_validated():
    class BadFramework(api.Implementation):
        name = "bad"
        framework = "jax"

    class BadClaims(api.Implementation):
        name = "bad"
        claims = frozenset({"NOT-A-CLAUSE"})

    with pytest.raises(ImplementationError, match="framework"):
        api.check_implementation(BadFramework())
    with pytest.raises(ImplementationError, match="NOT-A-CLAUSE"):
        api.check_implementation(BadClaims())


def test_supports_is_validated():
    class UnknownKnob(api.Implementation):
        name = "bad"
        supports = {"layers": ["Dense"]}

        def save(self, model, path, **kwargs):
            pass

    class UnknownKind(UnknownKnob):
        supports = {"kinds": ["Dense", "NoSuchLayer"]}

    class NoSave(api.Implementation):
        name = "no-save"

    with pytest.raises(ImplementationError, match="unknown knobs"):
        api.check_implementation(UnknownKnob())
    with pytest.raises(ImplementationError, match="NoSuchLayer"):
        api.check_implementation(UnknownKind())
    with pytest.raises(ImplementationError, match="does not override Implementation.save"):
        api.check_implementation(NoSave())


def test_unsupported_fixed_specs_are_named():
    from strategies.spec import ModelSpec

    class DenseOnly(api.Implementation):
        name = "dense-only"
        supports = {"kinds": ["Dense"], "dtypes": ["float32"], "topologies": ["functional"]}

    from conformance import corpus

    reasons = {
        name: api.unsupported_reason(DenseOnly(), spec) for name, spec in corpus.corpus_specs()
    }
    assert any(reasons.values()), "the corpus has specs a Dense-only implementation lacks"
    for name, spec in corpus.corpus_specs():
        extra = set(spec.kinds()) - {"Dense", *api.ADAPTER_KINDS}
        wrong = extra or spec.dtype != "float32" or spec.topology != "functional"
        assert bool(reasons[name]) == bool(wrong), (name, reasons[name])
    assert isinstance(corpus.corpus_specs()[0][1], ModelSpec)


def test_the_drawn_models_stay_within_what_the_implementation_supports():
    from hypothesis import HealthCheck, given, settings

    from conformance.plugin import drawing

    drawing.draw_for({"kinds": ["Conv1D"], "dtypes": ["float64"], "topologies": ["sequential"]})
    seen = []
    try:

        @settings(max_examples=25, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(drawing.examples())
        def draw(example):
            seen.append(example[0])

        draw()
    finally:
        drawing.draw_for(None)
    assert seen
    for spec in seen:
        assert set(spec.kinds()) <= {"Conv1D", *api.ADAPTER_KINDS}, spec.kinds()
        assert spec.dtype == "float64" and spec.topology == "sequential"


def test_frozen_false_keeps_frozen_layers_out_and_a_clause_kinds_within_supports():
    from dataclasses import replace

    from hypothesis import HealthCheck, given, settings

    from conformance.plugin import drawing
    from strategies import sample_specs

    frozen = next(s for s in sample_specs(80, seed=5) if s.frozen_nodes())
    assert api.outside_supports({"frozen": False}, frozen) == "non-trainable (frozen) layers"
    plain = replace(frozen, nodes=tuple(replace(n, frozen="") for n in frozen.nodes))
    assert api.outside_supports({"frozen": False}, plain) is None

    drawing.draw_for({"kinds": ["Dense", "Conv1D"], "frozen": False})
    seen = []
    try:

        @settings(max_examples=25, derandomize=True, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(drawing.examples(kinds=["Conv1D", "LSTM"]))  # LSTM is not supported
        def draw(example):
            seen.append(example[0])

        draw()
    finally:
        drawing.draw_for(None)
    assert seen
    for spec in seen:
        assert set(spec.kinds()) <= {"Conv1D", *api.ADAPTER_KINDS}, spec.kinds()
        assert not spec.frozen_nodes(), spec


def test_hypothesis_control_flow_passes_through_an_example():
    from hypothesis import assume, given, settings
    from hypothesis import strategies as st

    from conformance.plugin.example import ClauseRun

    class Request:
        class node:
            name = "test_x"
            user_properties = []

    run = ClauseRun(Request(), "VARS-EXACT", implementation=None, impl_spec="x", profile="ci")
    ran = []

    @settings(max_examples=20, database=None)
    @given(st.integers(0, 9))
    def prop(x):
        with run.example({"x": x}):
            assume(x % 2 == 0)  # raises UnsatisfiedAssumption for odd x: not a failure
            ran.append(x)

    prop()
    assert ran and all(x % 2 == 0 for x in ran)
    with pytest.raises(AssertionError, match=r"\[VARS-EXACT\] ValueError: boom"):
        with run.example({"x": 1}):
            raise ValueError("boom")
