"""``python -m conformance reproduce``: standalone scripts that rebuild a failing example.

The scripts run in fresh interpreters where ``conformance`` and ``strategies`` cannot be
imported (``sys.modules`` entries set to None); the planted bugs' scripts import their adapter
module (``tests.conformance.planted``, which itself needs the project), as a user's adapter
would be imported. Scripts run in parallel subprocesses. A few corpus specs by default; every
corpus spec under the ``nightly`` profile. Outside nightly the planted bugs' and expectation
entries' scripts run as a share (one planted bug per clause as in test_planted, and each
implementation's first entry); nightly runs them all.
"""

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
# Custom layers and a custom regularizer, merges, a subclassed and a nested model, float16.
DEFAULT_SPECS = ("spec-02", "spec-03", "spec-06", "spec-09", "spec-17")
# A Dense with a regularizer then a BatchNormalization (non-trainable statistics).
SMALL_SPEC = {
    "dict_inputs": False, "dtype": "float32", "extra": {}, "name": "model", "seed": 7,
    "inputs": [{"batch_size": None, "dtype": "float32", "name": "in_0", "shape": [3],
                "vocab": None}],
    "nodes": [
        {"id": "n0", "inputs": ["in_0"], "kind": "Dense", "layer_name": "n0_dense",
         "out_shape": [2], "params": {"activation": "relu", "units": 2, "use_bias": True},
         "regularizers": [["kernel_regularizer", {"kind": "l2", "params": {"l2": 0.01}}]],
         "shares": None, "submodel": None},
        {"id": "n1", "inputs": ["n0"], "kind": "BatchNormalization",
         "layer_name": "n1_batchnormalization", "out_shape": [2], "params": {},
         "regularizers": [], "shares": None, "submodel": None},
    ],
    "outputs": ["n1"], "topology": "sequential",
}


def _node(index, kind, inputs, out_shape, params=None, regularizers=()):
    return {"id": f"n{index}", "inputs": inputs, "kind": kind,
            "layer_name": f"n{index}_{kind.lower()}", "out_shape": out_shape,
            "params": params or {}, "regularizers": list(regularizers), "shares": None,
            "submodel": None}


def _small(nodes, shape=(3,)):
    """SMALL_SPEC's input (``shape``) into ``nodes``, functional."""
    spec = json.loads(json.dumps(SMALL_SPEC))
    spec["inputs"][0]["shape"] = list(shape)
    spec.update(nodes=nodes, outputs=[nodes[-1]["id"]], topology="functional")
    return spec


_DENSE = {"activation": "linear", "units": 2, "use_bias": True}
# Specs with what a planted bug needs (as its ``supports`` says): a linear Dense (a zeroed
# kernel shows), an activity regularizer, a custom block holding a BatchNormalization, a seeded
# noise layer, a mask maker, a frozen and an unregistered layer, a call argument.
PLANTED_SPECS = {
    "small": SMALL_SPEC,
    "linear": _small([_node(0, "Dense", ["in_0"], [2], _DENSE),
                      _node(1, "BatchNormalization", ["n0"], [2])]),
    "activity": _small([
        _node(0, "Dense", ["in_0"], [2], _DENSE,
              [["activity_regularizer", {"kind": "l2", "params": {"l2": 0.1}}]]),
        _node(1, "Dense", ["n0"], [2], _DENSE),
    ]),
    "norm-block": _small([_node(0, "KscNormBlock", ["in_0"], [3]),
                          _node(1, "Dense", ["n0"], [2], _DENSE)]),
    "seeded": _small([_node(0, "Dense", ["in_0"], [3], dict(_DENSE, units=3)),
                      _node(1, "KscSeededNoise", ["n0"], [3], {"stddev": 0.1, "seed": 5})]),
    "mask": _small([
        _node(0, "KscGain", ["in_0"], [4, 3], {"trainable": True}),
        _node(1, "KscMaskZero", ["n0"], [4, 3], {"mask_value": 0.0}),
        _node(2, "LSTM", ["n1"], [2], {"units": 2}),
    ], shape=(4, 3)),
    "frozen": _small([_node(0, "KscGain", ["in_0"], [3], {"trainable": False}),
                      _node(1, "Dense", ["n0"], [2], _DENSE)]),
    "call-argument": _small([
        _node(0, "KscGain", ["in_0"], [3], {"trainable": True}),
        _node(1, "KscScaleKwarg", ["n0"], [3], {"call_scale": 2.0}),
        _node(2, "Dense", ["n1"], [2], _DENSE),
    ]),
}
# (clause, planted bug of tests/conformance/planted.py that the clause must catch, its spec:
# a PLANTED_SPECS key, or the tf_keras expectation entry of that test)
PLANTED = (
    ("VARS-EXACT", "DropsNonTrainable", "small"),
    ("CALL-INFERENCE", "ServesInHalfPrecision", "small"),
    ("CALL-TRAINING", "TracesOnlyInference", "small"),
    ("CALL-TRAINING", "TracesSubLayerTrainingOnlyWhenOwn", "norm-block"),
    ("CALL-CONSISTENT", "RoundsItsCallFunction", "small"),
    ("LOAD-REVIVE", "FreezesOnLoad", "small"),
    ("LOAD-REVIVE", "RevivesWithoutMasks", "mask"),
    ("LOAD-REVIVE", "RevivesUnfrozen", "frozen"),
    ("LOAD-REVIVE", "CallsWithDefaultArguments", "call-argument"),
    ("LOAD-RESAVE", "RevivesAStaleVariable", "linear"),
    ("LOAD-RESUME", "ForgetsTheOptimizerState", "small"),
    ("LOAD-CORRUPT", "SwallowsLoadErrors", "small"),
    ("SIG-SERVING", "FixesBatchDimension", "test_serving_signature_names"),
    ("SIG-SERVING", "NestsServingCalls", "small"),
    ("SIG-DYNAMIC", "PinsOpenDimensions", "test_open_dimensions_stay_open"),
    ("LOSSES-REGULARIZATION", "LosesARegularizer", "small"),
    ("LOSSES-ACTIVITY", "ForgetsActivityRegularizer", "activity"),
    ("SAVE-NO-MUTATION", "FreezesLayerOnSave", "small"),
    ("SAVE-NO-MUTATION", "AdvancesSeedsOnSave", "seeded"),
    ("LAYERS-TREE", "ReversesSubLayers", "small"),
    ("FORMAT-KERAS-API", "DropsSubLayerCallFunctions", "small"),
    ("CONSUMER-TFLITE", "PythonInServing", "small"),
    ("CONSUMER-ONNX", "PythonInServingForOnnx", "small"),
    # the clauses of fixed models: the script builds the clause's fixture (no spec)
    ("SAVE-OVERWRITE", "IgnoresOverwrite", None),
    ("SAVE-SIGNATURES", "IgnoresSignatures", None),
    ("SAVE-OPTIMIZER", "AlwaysSavesOptimizer", None),
    ("SAVE-UNBUILT", "SilentAboutUnbuilt", None),
    ("SAVE-UNBUILT", "SavesInputlessModel", None),
    ("SAVE-CONCURRENT", "KeepsTheModelOnTheSaver", None),
    ("SAVE-ASSETS", "KeepsStaleAssets", None),
)
# Planted bugs that only a fixed-model test of their clause catches (no drawn spec shows them).
PLANTED_FIXTURE_ONLY = {"RevivedSequentialKeepsSavedCall": "test_resaved_sequential_serves"}
# The clause tests whose expectation entries have a reproducer.
COVERED_TESTS = {
    "test_call_and_serving_equal_model": "CALL-INFERENCE",
    "test_training_mode_equals_model": "CALL-TRAINING",
    "test_call_functions_agree": "CALL-CONSISTENT",
    "test_variables_saved_once_bitwise": "VARS-EXACT",
    "test_revived_model_behaves": "LOAD-REVIVE",
    "test_resaved_model_round_trips": "LOAD-RESAVE",
    "test_loaded_model_resumes_training": "LOAD-RESUME",
    "test_serving_signature_names": "SIG-SERVING",
    "test_serving_signature_is_flat": "SIG-SERVING",
    "test_open_dimensions_stay_open": "SIG-DYNAMIC",
    "test_regularization_losses": "LOSSES-REGULARIZATION",
    "test_activity_and_call_losses": "LOSSES-ACTIVITY",
    "test_model_unchanged_by_save": "SAVE-NO-MUTATION",
    "test_layer_tree_mirrors_model": "LAYERS-TREE",
    "test_keras_api_on_every_layer": "FORMAT-KERAS-API",
    "test_corrupt_files_raise_clearly": "LOAD-CORRUPT",
    "LOAD-CORRUPT": "LOAD-CORRUPT",  # a clause-level entry, the damaged spec above it
    "CONSUMER-TFLITE": "CONSUMER-TFLITE",  # clause-level entries, the triage spec above them
    "CONSUMER-ONNX": "CONSUMER-ONNX",
}
# The fixed-model tests (and clause-level entries) whose entries have a reproducer.
FIXTURE_TESTS = {
    "test_inputless_model_is_refused": "SAVE-UNBUILT",
    "test_unbuilt_sub_layer_saves_with_warning": "SAVE-UNBUILT",
    "test_overwrite_false_keeps_existing_files": "SAVE-OVERWRITE",
    "test_include_optimizer": "SAVE-OPTIMIZER",
    "test_signatures_written_as_given": "SAVE-SIGNATURES",
    "test_threaded_saves_equal_sequential": "SAVE-CONCURRENT",
    "test_assets_travel_with_the_saved_model": "SAVE-ASSETS",
    "test_saving_over_a_model_leaves_no_stale_asset": "SAVE-ASSETS",
    **{c: c for c in ("SAVE-UNBUILT", "SAVE-OVERWRITE", "SAVE-OPTIMIZER", "SAVE-SIGNATURES",
                      "SAVE-CONCURRENT")},
}
PROJECT_IMPORT = re.compile(r"^\s*(import|from)\s+(conformance|strategies)\b", re.M)
FRAMEWORK = {"reference": "keras", "tf_keras": "tf_keras"}
GUARD = "import sys; sys.modules['conformance'] = None; sys.modules['strategies'] = None; "


def _nightly():
    from conformance.plugin.drawing import current_profile_name

    return current_profile_name() == "nightly"


def _spec_names():
    from conformance import corpus

    if _nightly():
        return corpus.corpus_names()
    return list(DEFAULT_SPECS)


def _env(project):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if project:  # the planted adapters are modules of this project
        env["PYTHONPATH"] = str(ROOT)
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def _run(argv, cwd, project=False):
    import time

    start = time.monotonic()
    done = subprocess.run(
        argv, cwd=cwd, env=_env(project), capture_output=True, text=True, timeout=300
    )
    return done, time.monotonic() - start


def _guarded(script):
    """A fresh interpreter that cannot import conformance or strategies runs ``script``."""
    code = GUARD + f"sys.argv = [{str(script)!r}]; import runpy; "
    code += f"runpy.run_path({str(script)!r}, run_name='__main__')"
    return [sys.executable, "-c", code]


def _script(spec, clause, impl, tmp_path):
    """The tool's script (``spec`` None: a clause of fixed models)."""
    from conformance.tools.reproduce import fixture_script_source, script_source
    from strategies.spec import ModelSpec

    path = tmp_path / f"{clause}-{impl.rsplit(':', 1)[-1]}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    if spec is None:
        path.write_text(fixture_script_source(clause, impl))
    else:
        path.write_text(script_source(ModelSpec.from_dict(spec), clause, impl))
    return path


def _expectation_cases(impl):
    """``(clause, test, shrunk spec)`` of ``impl``'s expectation entries a script covers."""
    lines = (ROOT / "conformance" / "expectations" / f"{impl}.txt").read_text().splitlines()
    cases = []
    for above, line in zip(lines, lines[1:]):
        test = line.split("#")[0].strip().split("::")[-1]
        if test in COVERED_TESTS and "{" in above:
            cases.append((COVERED_TESTS[test], test, json.loads(above[above.index("{"):])))
        elif test in FIXTURE_TESTS:
            cases.append((FIXTURE_TESTS[test], test, None))
    return cases


def _planted_spec(key):
    if key is None or key in PLANTED_SPECS:
        return PLANTED_SPECS.get(key)
    return next(s for _, t, s in _expectation_cases("tf_keras") if t == key)


BATCH_SIZE = 8
BATCH = (
    "import contextlib, io, json, runpy\n"
    "results = []\n"
    "for script in {scripts!r}:\n"
    "    out = io.StringIO()\n"
    "    with contextlib.redirect_stdout(out):\n"
    "        try:\n"
    "            runpy.run_path(script, run_name='__main__')\n"
    "            code = 0\n"
    "        except SystemExit as exc:\n"
    "            code = exc.code\n"
    "    results.append((code, out.getvalue()))\n"
    "print('RESULTS=' + json.dumps(results))\n"
)


def _batch(scripts, cwd, guarded):
    """Run scripts one after another in one interpreter (one TensorFlow import):
    ``[(exit code, stdout)]``."""
    code = (GUARD if guarded else "") + BATCH.format(scripts=[str(s) for s in scripts])
    done, seconds = _run([sys.executable, "-c", code], cwd, project=not guarded)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULTS=")]
    assert lines, done.stderr[-3000:]
    return json.loads(lines[0][len("RESULTS="):]), seconds


def test_scripts_catch_planted_bugs_and_expected_failures_and_pass_on_reference(tmp_path):
    """Planted bugs and tf_keras' and keras_export's expectation entries: exit 1 with the
    clause's message; the reference: exit 0. Project-free scripts run where conformance
    cannot be imported."""
    from tests.conformance import planted as planted_module

    # Outside nightly a share: a clause's later planted bugs run only in the nightly (as in
    # test_planted), and of each implementation's expectation entries the first.
    everything = _nightly()
    guarded, planted = [], []  # (what, clause, script, expected exit code)
    for clause, bug, key in PLANTED:
        if getattr(planted_module, bug).nightly_only and not everything:
            continue
        spec = _planted_spec(key)
        impl = f"tests.conformance.planted:{bug}"
        planted.append((bug, clause, _script(spec, clause, impl, tmp_path / bug), 1))
        fine = _script(spec, clause, "reference", tmp_path / f"ref-{bug}")
        guarded.append((f"reference ({bug}'s spec)", clause, fine, 0))
    assert {c for c, _, _ in _expectation_cases("tf_keras")} >= {
        "SIG-SERVING", "LOSSES-REGULARIZATION", "FORMAT-KERAS-API", "CALL-TRAINING",
        "CALL-CONSISTENT", "LOSSES-ACTIVITY", "SAVE-NO-MUTATION", "LOAD-RESUME", "LOAD-RESAVE",
        "SIG-DYNAMIC", "LAYERS-TREE", "CALL-INFERENCE", "LOAD-REVIVE", "SAVE-UNBUILT",
        "SAVE-OVERWRITE", "LOAD-CORRUPT", "SAVE-ASSETS",
    }
    assert {c for c, _, _ in _expectation_cases("keras_export")} >= {
        "SIG-SERVING", "SIG-DYNAMIC", "SAVE-NO-MUTATION", "SAVE-OVERWRITE", "SAVE-SIGNATURES",
        "LOAD-CORRUPT", "SAVE-CONCURRENT", "CONSUMER-TFLITE", "CONSUMER-ONNX",
    }
    for impl in ("tf_keras", "keras_export"):
        cases = _expectation_cases(impl)
        for clause, test, spec in cases if everything else cases[:1]:
            where = tmp_path / impl / test
            guarded.append((f"{impl} {test}", clause, _script(spec, clause, impl, where), 1))
            if _nightly():  # the reference on the clause's planted-bug spec runs always
                fine = _script(spec, clause, "reference", where / "reference")
                guarded.append((f"reference {test}", clause, fine, 0))
    for _, _, script, _ in guarded:
        assert not PROJECT_IMPORT.search(script.read_text()), script
    # batches of a few scripts (one TensorFlow import each), two at a time
    batches = [(cases[i:i + BATCH_SIZE], g) for cases, g in ((guarded, True), (planted, False))
               for i in range(0, len(cases), BATCH_SIZE)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(_batch, [c[2] for c in cases], tmp_path, g) for cases, g in batches]
        outcomes = [job.result() for job in jobs]
    for (cases, _), (results, _seconds) in zip(batches, outcomes):
        for (what, clause, _, want), (code, out) in zip(cases, results):
            assert code == want, f"{clause} on {what}: exit {code}\n{out}"
            assert f"[{clause}]" in out, out
            assert ("DIVERGENCE" in out) == bool(want), out


def test_a_script_runs_alone_in_an_isolated_interpreter(tmp_path):
    """``python -I``: no PYTHONPATH, no cwd on sys.path; tf_keras' fixed batch dimension."""
    clause, _, spec = next(c for c in _expectation_cases("tf_keras") if c[0] == "SIG-SERVING")
    script = _script(spec, clause, "tf_keras", tmp_path)
    done, _seconds = _run([sys.executable, "-I", str(script)], tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr[-2000:]
    assert "[SIG-SERVING] serving input 'in_0': expected float32 [None, 1]" in done.stdout


@pytest.mark.parametrize("impl", ["reference", "tf_keras"])
def test_rebuilt_models_equal_the_suites_bitwise(impl, tmp_path):
    """Each script's model, built with no project module importable, has the weights of the
    suite's model bitwise and gives its outputs (tf_keras under nightly: the CI budget)."""
    if impl == "tf_keras" and not _nightly():
        pytest.skip("tf_keras' rebuilt models are compared under --hypothesis-profile=nightly")
    import strategies
    from conformance import corpus

    specs = dict(corpus.corpus_specs())
    names = _spec_names()
    pairs = []
    for name in names:
        script = _script(specs[name].to_dict(), "CALL-INFERENCE", impl, tmp_path / name)
        pairs.append((script, tmp_path / f"{name}.npz"))
    code = GUARD + (
        "import runpy, numpy as np, tensorflow as tf\n"
        f"for script, out in {[(str(s), str(o)) for s, o in pairs]!r}:\n"
        "    g = runpy.run_path(script, run_name='rebuild')\n"
        "    m = g['build_model']()\n"
        "    outs = tf.nest.flatten(m(g['model_inputs'](), training=False))\n"
        "    data = {'in:' + k: v for k, v in g['DATA'].items()}\n"
        "    np.savez(out, *m.get_weights(), *[np.asarray(t) for t in outs], n=len(m.weights),"
        " **data)\n"
        "    assert 'conformance' not in sys.modules or sys.modules['conformance'] is None\n"
    )
    done, _ = _run([sys.executable, "-c", code], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    import tensorflow as tf

    for name, (_script_path, out) in zip(names, pairs):
        model = strategies.build_model(specs[name], FRAMEWORK[impl])
        saved = np.load(out)
        weights = model.get_weights()
        assert int(saved["n"]) == len(model.weights), name
        for i, want in enumerate(weights):
            got = saved[f"arr_{i}"]
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), (name, i)
        data = {k[3:]: saved[k] for k in saved.files if k.startswith("in:")}
        inputs = strategies.call_inputs(specs[name], data)
        wants = [np.asarray(t) for t in tf.nest.flatten(model(inputs, training=False))]
        for j, want in enumerate(wants):
            got = saved[f"arr_{len(weights) + j}"]
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=f"{name}[{j}]")


def test_command_writes_scripts_from_a_report(tmp_path, capsys):
    from conformance.__main__ import main

    report = {
        "implementation": "reference",
        "clauses": {
            "VARS-EXACT": {"failures": [{
                "test": "conformance/clauses/test_variables.py::test_variables_saved_once_bitwise",
                "spec": json.dumps(SMALL_SPEC), "message": "[VARS-EXACT] keras_api ...",
            }]},
            "SAVE-ATOMIC": {"failures": [{"test": "t", "spec": json.dumps(SMALL_SPEC)}]},
        },
    }
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert main(["reproduce", str(path), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    written = [Path(line) for line in captured.out.split()]
    assert len(written) == 1 and written[0].exists()
    assert "test_variables_saved_once_bitwise" in written[0].name
    assert "SAVE-ATOMIC" in captured.err and "fault" in captured.err  # refused, saying why


def test_uncovered_clause_is_a_usage_error(tmp_path, capsys):
    from conformance.__main__ import main

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SMALL_SPEC))
    argv = ["reproduce", "--spec", str(spec), "--clause", "SAVE-ATOMIC", "--out", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "SAVE-ATOMIC" in err and "fault harness" in err
    assert not list(tmp_path.glob("*.py"))


@pytest.mark.parametrize("argv", [["reproduce"], ["reproduce", "--spec", "{}"]])
def test_bad_arguments_say_what_is_missing(argv, capsys):
    from conformance.__main__ import main

    assert main(argv) == 2
    assert "reproduce:" in capsys.readouterr().err


def test_a_failure_names_its_script_command():
    from types import SimpleNamespace

    from conformance.command import reproduce_script_command
    from conformance.plugin.report import FAILURE_PROPERTY, compact_failure

    script = reproduce_script_command("VARS-EXACT", "test_variables_saved_once_bitwise", "r.json")
    assert script == (
        "python -m conformance reproduce r.json --clause VARS-EXACT "
        "--test test_variables_saved_once_bitwise"
    )
    assert "--conformance-report" in reproduce_script_command("VARS-EXACT", "t")
    failure = {"message": "m", "spec": "{}", "command": "c", "script": script}
    report = SimpleNamespace(
        user_properties=[("conformance_clause", "VARS-EXACT"), (FAILURE_PROPERTY, failure)]
    )
    assert f"  script: {script}" in compact_failure(report).splitlines()


def test_a_lookup_layers_vocabulary_is_written_out():
    """tf_keras' StringLookup entry: the vocabulary the suite's layer holds, as a list (the
    script's exit code is checked with the other expectation entries)."""
    from conformance.tools.reproduce import script_source
    from strategies.spec import ModelSpec

    _, _, spec = next(c for c in _expectation_cases("tf_keras") if c[0] == "LAYERS-TREE")
    source = script_source(ModelSpec.from_dict(spec), "LAYERS-TREE", "tf_keras")
    assert re.search(r"StringLookup\(name='n0_stringlookup', .*vocabulary=\['w0', 'w1'", source)


def test_open_axes_are_called_at_longer_lengths(tmp_path):
    """A spec with open axes: the script's data sets are the probe lengths, then each open
    axis OPEN_EXTRAS longer (as SIG-DYNAMIC calls), the other axes unchanged."""
    import runpy

    from conformance.tools.reproduce import OPEN_EXTRAS
    from strategies.spec import ModelSpec

    _, _, spec = next(c for c in _expectation_cases("tf_keras") if c[0] == "SIG-DYNAMIC")
    parsed = ModelSpec.from_dict(spec)
    script = _script(spec, "CALL-INFERENCE", "reference", tmp_path)
    datasets = runpy.run_path(str(script), run_name="inspected")["DATASETS"]
    assert len(datasets) == 1 + len(OPEN_EXTRAS)
    for i in parsed.inputs:
        for extra, data in zip((0, *OPEN_EXTRAS), datasets):
            want = [d + extra if a in i.open_axes else d for a, d in enumerate(i.shape)]
            assert list(data[i.name].shape[1:]) == want, (i.name, extra)


def test_every_planted_bug_has_a_script_or_a_named_refusal():
    """Each planted bug's clause: a script catches it (PLANTED, run above), or the tool
    refuses the clause by name and says why (or only a fixed-model test catches the bug)."""
    from conformance.tools.reproduce import COVERED, ReproduceError, script_source
    from strategies.spec import ModelSpec
    from tests.conformance import planted

    scripted = {bug for _, bug, _ in PLANTED}
    for bug in planted.PLANTED:
        if bug.__name__ in scripted:
            assert bug.caught_by in COVERED, bug.__name__
            continue
        if bug.__name__ in PLANTED_FIXTURE_ONLY:
            assert bug.caught_by in COVERED
            continue
        with pytest.raises(ReproduceError, match=rf"clause {bug.caught_by}: \w+"):
            script_source(ModelSpec.from_dict(SMALL_SPEC), bug.caught_by, "reference")


def _refused():
    from conformance.reproducers.source import REFUSED

    return sorted(REFUSED)


@pytest.mark.parametrize("clause", _refused())
def test_clauses_without_a_standalone_script_are_refused_saying_why(clause, capsys):
    from conformance.__main__ import main
    from conformance.tools.reproduce import REFUSED

    argv = ["reproduce", "--spec", json.dumps(SMALL_SPEC), "--clause", clause]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert clause in err and REFUSED[clause] in err


def test_a_report_names_each_failures_script_or_why_there_is_none(tmp_path):
    """``write_beside``: a drawn spec's failure gets its script under ``<stem>.repro/``, so
    does a fixture clause's; another fixed model's, a refused clause's and one whose script
    cannot be made say why; an earlier run's script is removed; nothing raises."""
    from conformance.reproducers.beside import write_beside

    broken = dict(SMALL_SPEC, nodes=[dict(SMALL_SPEC["nodes"][0], kind="NoSuchLayer")])
    document = {"implementation": "reference", "clauses": {
        "VARS-EXACT": {"failures": [
            {"test": "c/test_variables.py::test_variables_saved_once_bitwise",
             "spec": json.dumps(SMALL_SPEC), "message": "[VARS-EXACT] m"},
            {"test": "c/test_variables.py::test_other[x]", "spec": json.dumps(broken)},
        ]},
        "SAVE-OVERWRITE": {"failures": [
            {"test": "c/test_save.py::test_overwrite", "spec": '{"models": "two"}'}]},
        "SAVE-ATOMIC": {"failures": [{"test": "t", "spec": json.dumps(SMALL_SPEC)}]},
        "LOAD-REVIVE": {"failures": [{"test": "t2", "spec": "not json"}]},
    }}
    report = tmp_path / "out" / "report.json"
    stale = tmp_path / "out" / "report.repro" / "repro_old.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("# an earlier run's")
    written = write_beside(document, report)
    first, other = document["clauses"]["VARS-EXACT"]["failures"]
    (overwrite,) = document["clauses"]["SAVE-OVERWRITE"]["failures"]
    assert written == [Path(first["reproducer"]), Path(overwrite["reproducer"])]
    assert "small_functional(K, name=\"second\", units=5)" in written[1].read_text()
    assert Path(first["reproducer"]).parent == tmp_path / "out" / "report.repro"
    assert "[VARS-EXACT]" in Path(first["reproducer"]).read_text()
    assert not stale.exists()
    assert other["reproducer"] is None and "could not be made" in other["no_reproducer"]
    (atomic,) = document["clauses"]["SAVE-ATOMIC"]["failures"]
    assert "fault harness" in atomic["no_reproducer"]
    (revive,) = document["clauses"]["LOAD-REVIVE"]["failures"]
    assert "fixed model" in revive["no_reproducer"]


def test_the_report_is_written_when_no_script_can_be(tmp_path, monkeypatch):
    from conformance.plugin import report as report_module
    from conformance.reproducers import beside

    def fails(document, path):
        raise OSError("read-only folder")

    monkeypatch.setattr(beside, "write_beside", fails)
    document = {"clauses": {}}
    report_module.write_reproducers(document, tmp_path / "r.json")
    assert "read-only folder" in document["reproducers_error"]


def test_a_failing_run_writes_the_scripts_beside_its_report_under_xdist(tmp_path):
    """A planted bug caught under xdist: the controller's report names the script it wrote,
    the failure message names the file, and the script exits 1 with the clause's message."""
    from conformance.command import suite_command

    report = tmp_path / "report.json"
    command = suite_command(
        "tests.conformance.planted:FixesBatchDimension", clauses="SIG-SERVING",
        profile="triage", report=report, workers=2, select="names", python=True, quiet=True,
    )
    proc = subprocess.run(command, cwd=tmp_path, env=_env(True), capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-3000:]
    (failure,) = json.loads(report.read_text())["clauses"]["SIG-SERVING"]["failures"]
    script = Path(failure["reproducer"])
    assert script.parent == tmp_path / "report.repro" and script.exists()
    assert f"script file: {script}" in proc.stdout
    done, _ = _run([sys.executable, str(script)], tmp_path, project=True)
    assert done.returncode == 1, done.stdout + done.stderr[-2000:]
    assert "[SIG-SERVING] serving input 'in_0'" in done.stdout
