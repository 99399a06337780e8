"""The consumer clauses' harness: real converters, planted implementations, the report tally.

CONSUMER-TFLITE needs only TensorFlow; the ONNX cases are skipped without the optional extra
(``pip install -e .[consumers]``).
"""

import json
import textwrap

import numpy as np
import pytest

from conformance import consumers
from conformance.expected.tolerances import assert_converted_close
from conformance.implementations import ReferenceImplementation
from conformance.plugin.report import CONSUMER_PROPERTY, ClauseReport, markdown
from tests.conformance.planted import PythonInServing

pytest_plugins = ["pytester"]


def _spec(dtype="float32", topology="functional", units=3, width=4):
    import strategies

    return strategies.from_json(
        json.dumps(
            {
                "dict_inputs": False,
                "dtype": dtype,
                "extra": {},
                "inputs": [
                    {
                        "batch_size": None,
                        "dtype": dtype,
                        "name": "in_0",
                        "shape": [width],
                        "vocab": None,
                    }
                ],
                "name": "model",
                "nodes": [
                    {
                        "id": "n0",
                        "inputs": ["in_0"],
                        "kind": "Dense",
                        "layer_name": "n0_dense",
                        "out_shape": [units],
                        "params": {"activation": "linear", "units": units, "use_bias": True},
                        "regularizers": [],
                        "shares": None,
                        "submodel": None,
                    }
                ],
                "outputs": ["n0"],
                "seed": 0,
                "topology": topology,
            }
        )
    )


def _data(spec, batch=3):
    rng = np.random.default_rng(7)
    return {i.name: rng.uniform(-1, 1, size=(batch, *i.shape)).astype(i.dtype) for i in spec.inputs}


def _consumer(name):
    if name == consumers.ONNX:
        missing = consumers.missing_onnx_modules()
        if missing:
            pytest.skip(f"needs {', '.join(missing)}: {consumers.EXTRA_HINT}")
    return consumers.CONSUMERS[name]


def _check(consumer, impl, spec, data=None):
    from conformance.plugin.example import case_cache

    case = case_cache().get(impl, spec)
    return consumers.check_case(
        consumer, case, data or _data(spec), check_values=assert_converted_close
    )


class RenamesServingOutputs(ReferenceImplementation):
    """Keys the serving outputs ``output_0..`` (as Keras 3 ``export`` does), not by layer."""

    name = "renames-serving-outputs"

    def save(self, model, path, *, signatures=None, **kwargs):
        import tensorflow as tf

        from reference_impl.save import input_signature

        spec = input_signature(model)

        @tf.function(input_signature=[spec])
        def serve(inputs):
            outputs = tf.nest.flatten(model(inputs, training=False))
            return {f"output_{i}": out for i, out in enumerate(outputs)}

        super().save(model, path, signatures={"serving_default": serve}, **kwargs)


@pytest.mark.parametrize("name", [consumers.TFLITE, consumers.ONNX])
def test_reference_converts_and_matches_serving(name):
    outcome = _check(_consumer(name), ReferenceImplementation(), _spec())
    assert outcome.status == "checked", outcome


@pytest.mark.parametrize("topology", ["sequential", "subclassed"])
def test_reference_converts_other_topologies_for_tflite(topology):
    outcome = _check(
        _consumer(consumers.TFLITE), ReferenceImplementation(), _spec(topology=topology)
    )
    assert outcome.status == "checked", outcome


def test_float64_is_unsupported_by_tflite_with_the_converters_message():
    spec = _spec(dtype="float64")
    outcome = _check(_consumer(consumers.TFLITE), ReferenceImplementation(), spec)
    assert outcome.status == "unsupported", outcome
    assert outcome.stage == "convert"
    # The converter's own summary line, e.g. "TF Select ops: AddV2, MatMul".
    assert "TF Select ops:" in outcome.message and "MatMul" in outcome.message, outcome.message
    assert "loc(" not in outcome.message and len(outcome.message) <= consumers.MESSAGE_LIMIT + 40
    assert "fails convert too" in outcome.control
    entry = outcome.as_dict(spec)
    assert entry["kinds"] == ["Dense"] and entry["dtype"] == "float64"


@pytest.mark.parametrize("name", [consumers.TFLITE, consumers.ONNX])
def test_renamed_serving_outputs_are_the_implementations_failure(name):
    with pytest.raises(AssertionError) as info:
        _check(_consumer(name), RenamesServingOutputs(), _spec())
    message = str(info.value)
    # Wrong at the source: said before any conversion, whatever the converter would do.
    assert "serving_default names its inputs" in message and "(SIG-SERVING)" in message, message
    assert "['output_0']" in message and "['n0_dense']" in message, message


@pytest.mark.parametrize("name, stage", [(consumers.TFLITE, "convert"), (consumers.ONNX, "load")])
def test_unconvertible_serving_is_the_implementations_failure(name, stage):
    # tf2onnx keeps an op it cannot map and logs an error; onnxruntime then refuses the model.
    with pytest.raises(AssertionError) as info:
        _check(_consumer(name), PythonInServing(), _spec())
    message = str(info.value)
    assert f"fails at {stage}" in message and "PyFunc" in message, message
    assert "passes every stage" in message, message


def test_values_stage_catches_a_changed_output():
    """A converted model whose values differ fails the values stage, naming the output."""
    consumer = _consumer(consumers.TFLITE)
    from conformance.plugin.example import case_cache

    spec = _spec()
    case = case_cache().get(ReferenceImplementation(), spec)
    data = _data(spec)
    model = consumers.converted(consumer, case.path)
    got = model.run({"in_0": data["in_0"]})["n0_dense"]
    expected = consumers.Expected(
        ["in_0"], ["n0_dense"], {"in_0": data["in_0"]}, {"n0_dense": got + 1e-3}
    )
    with pytest.raises(consumers.StageError) as info:
        consumers.run_pipeline(consumer, case.path, expected, check_values=assert_converted_close)
    assert info.value.stage == "values" and "'n0_dense'" in info.value.message
    # Within the documented tolerance it passes.
    expected.values = {"n0_dense": got * (1 + 1e-6)}
    consumers.run_pipeline(consumer, case.path, expected, check_values=assert_converted_close)


@pytest.mark.parametrize("framework", ["keras", "tf_keras"])
def test_the_control_tracks_a_lookup_layers_table(framework, tmp_path):
    """A StringLookup's table is a resource, not a variable: the control's tf.Module must
    track it, or tf.saved_model.save refuses the function that captures it."""
    import tensorflow as tf

    import strategies
    from strategies.spec import ModelSpec

    def node(index, kind, inputs, out_shape, params):
        return {"id": f"n{index}", "inputs": inputs, "kind": kind, "out_shape": out_shape,
                "layer_name": f"n{index}_{kind.lower()}", "params": params,
                "regularizers": [], "shares": None, "submodel": None}

    spec = ModelSpec.from_dict({
        "dict_inputs": False, "dtype": "float32", "extra": {}, "name": "model", "seed": 0,
        "inputs": [{"batch_size": None, "dtype": "string", "name": "in_0", "shape": [1],
                    "vocab": 3}],
        "nodes": [
            node(0, "StringLookup", ["in_0"], [2], {"output_mode": "multi_hot",
                                                     "source": "list", "universe": 3,
                                                     "vocabulary": [0]}),
            node(1, "Dense", ["n0"], [2], {"units": 2, "activation": "linear",
                                          "use_bias": True}),
        ],
        "outputs": ["n1"], "topology": "functional",
    })
    model = strategies.build_model(spec, framework=framework)
    consumers.save_control(model, spec, {"in_0": "in_0"}, tmp_path / "control")
    serve = tf.saved_model.load(str(tmp_path / "control")).signatures["serving_default"]
    assert serve(in_0=tf.constant([["w0"], ["zz"]])), "the control serves"


def test_converter_message_keeps_its_summary_and_drops_locations():
    text = textwrap.dedent(
        """\
        Could not translate MLIR to FlatBuffer.<unknown>:0: error: loc(callsite(fused["MatMul:",
        loc(fused["AddV2:", "x"]): error: 'tf.AddV2' op is neither a custom op nor a flex op
        error: failed while converting: 'main':
        Some ops are not supported by the native TFLite runtime, you can enable TF kernels
        TF Select ops: AddV2, MatMul
        Details:
        \ttf.AddV2(tensor<?x3xf64>, tensor<3xf64>) -> (tensor<?x3xf64>) : {device = ""}
        """
    )
    assert consumers.converter_message(text) == "TF Select ops: AddV2, MatMul"
    plain = 'loc(fused["Erfc:", "x"]): error: \'tf.Erfc\' op is neither a custom op nor a flex op'
    assert consumers.converter_message(plain) == "'tf.Erfc' op is neither a custom op nor a flex op"


def test_tf2onnx_message_keeps_its_errors():
    stderr = textwrap.dedent(
        """\
        2026-11-25 19:00:00,000 - INFO - Using opset <onnx, 15>
        2026-11-25 19:00:01,000 - ERROR - Tensorflow op [x: PyFunc] is not supported
        Traceback (most recent call last):
          File "convert.py", line 1, in <module>
        ValueError: Unsupported ops: Counter({'PyFunc': 1})
        """
    )
    message = consumers.tf2onnx_message(stderr)
    assert "Tensorflow op [x: PyFunc] is not supported" in message
    assert "ValueError: Unsupported ops" in message and "INFO" not in message


class _Report:
    def __init__(self, nodeid, outcome, properties, longrepr=None):
        self.nodeid = nodeid
        self.when = "call"
        self.passed = outcome == "passed"
        self.failed = outcome == "failed"
        self.skipped = outcome == "skipped"
        self.user_properties = properties
        self.longrepr = longrepr


def test_report_tallies_unsupported_examples():
    report = ClauseReport()
    unsupported = {"stage": "convert", "message": "TF Select ops: MatMul", "spec": "{}"}
    report.add(
        "CONSUMER-TFLITE",
        _Report(
            "t::tflite",
            "passed",
            [
                ("conformance_examples", 10),
                (
                    CONSUMER_PROPERTY,
                    {"checked": 2, "unsupported_count": 8, "unsupported": [unsupported] * 8},
                ),
            ],
        ),
    )
    clause = report.as_dict()["CONSUMER-TFLITE"]
    assert clause["status"] == "pass"
    assert clause["consumer"]["checked"] == 2 and clause["consumer"]["unsupported_count"] == 8
    assert "consumer" not in report.as_dict()["VARS-EXACT"]
    line = [x for x in report.summary_lines() if "CONSUMER-TFLITE" in x][0]
    assert "2 converted and checked, 8 unsupported by the converter" in line
    document = {
        "implementation": "reference",
        "versions": {},
        "hypothesis": {"profile": "ci"},
        "clauses": report.as_dict(),
    }
    row = [x for x in markdown(document).splitlines() if x.startswith("| CONSUMER-TFLITE")][0]
    assert "8× convert: TF Select ops: MatMul" in row


# Run in the pytester subprocess: every conversion fails as an unsupported op would, for
# the implementation's files and the control alike; tf2onnx is reported missing.
_FAKE_CONSUMERS = """
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    from conformance import consumers

    def convert(saved_dir, workdir):
        raise consumers.StageError(
            "convert", "'tf.FakeOp' op is neither a custom op nor a flex op"
        )

    consumers.CONSUMERS["tflite"] = consumers.Consumer(
        "tflite", convert, consumers._tflite_load, consumers.TFLiteModel
    )
    consumers.missing_onnx_modules = lambda: ["tf2onnx"]
"""


def test_all_unsupported_is_skipped_saying_so_and_missing_extra_is_named(pytester):
    pytester.makepyfile(fake_consumers=_FAKE_CONSUMERS)
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "--pyargs",
        "conformance",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "-p",
        "fake_consumers",
        "-rs",
        "--hypothesis-profile=dev",
        "--conformance-clauses=CONSUMER-TFLITE,CONSUMER-ONNX",
        f"--conformance-report={report}",
    )
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*CONSUMER-TFLITE: all 4 examples are unsupported by the tflite converter, none was "
            "checked: 4× convert: 'tf.FakeOp' op is neither a custom op nor a flex op*",
            "*CONSUMER-ONNX needs tf2onnx (the optional extra: pip install -e .[[]consumers[]])*",
        ]
    )
    clauses = json.loads(report.read_text())["clauses"]
    tflite = clauses["CONSUMER-TFLITE"]
    assert tflite["status"] == "skipped"
    assert tflite["consumer"]["checked"] == 0 and tflite["consumer"]["unsupported_count"] == 4
    assert all(
        e["control"].endswith("fails convert too") for e in tflite["consumer"]["unsupported"]
    )
    assert clauses["CONSUMER-ONNX"]["status"] == "skipped"
    assert any(consumers.EXTRA_HINT in r for r in clauses["CONSUMER-ONNX"]["skip_reasons"])


def test_select_ops_are_explained_once_with_the_dtype():
    import dataclasses

    message = "ConverterError: TF Select ops: AddV2, MatMul"
    note = consumers._select_ops_note(message, dataclasses.replace(_spec(), dtype="float64"))
    assert "float64" in note and "TF Select" in note
    assert "float64" not in consumers._select_ops_note(message, _spec())
    assert consumers._select_ops_note("ConverterError: something else", _spec()) == ""
