"""CONSUMER-TFLITE and CONSUMER-ONNX: the saved model converts, and the converted one agrees.

Each test walks the shared example stream (a share of the profile's examples: converting is
slow), converts each case's SavedModel and compares the converted model with the serving
signature. Examples the converter cannot handle are tallied, with its message, on the
test's report (``clause.record_consumer``), not failed; a test where no example could
be converted is skipped saying so, never passed.
"""

import pytest

from conformance import consumers
from conformance.expected.tolerances import assert_converted_close
from conformance.plugin.drawing import share_of_examples

# The share of the profile's examples each consumer walks (at least MIN_EXAMPLES): a TFLite
# conversion and its control take a few seconds, a tf2onnx one a fresh interpreter (10-20 s
# on 2 shared cores).
TFLITE_SHARE = 0.3
ONNX_SHARE = 0.25
MIN_EXAMPLES = 3


def run_consumer(name, share, clause):
    consumer = consumers.CONSUMERS[name]
    tally = consumers.Tally(consumer.clause_id)

    @share_of_examples(share, MIN_EXAMPLES)
    def check(example):
        spec, data = example
        with clause.example(spec, consumer=name):
            case = clause.case(spec)
            outcome = consumers.check_case(
                consumer, case, data, check_values=assert_converted_close
            )
        tally.add(outcome, spec)

    try:
        check()
    finally:
        clause.record_consumer(tally)
    if tally.checked == 0:
        pytest.skip(
            f"{consumer.clause_id}: all {len(tally.unsupported)} examples are unsupported by "
            f"the {name} converter, none was checked: {tally.summary()}"
        )


@pytest.mark.clause("CONSUMER-TFLITE")
def test_tflite_conversion_equals_serving(clause):
    reason = consumers.tflite_missing_reason()
    if reason:
        pytest.skip(f"CONSUMER-TFLITE: {reason}")
    run_consumer(consumers.TFLITE, TFLITE_SHARE, clause)


@pytest.mark.clause("CONSUMER-ONNX")
def test_onnx_conversion_equals_serving(clause):
    missing = consumers.missing_onnx_modules()
    if missing:
        pytest.skip(
            f"CONSUMER-ONNX needs {', '.join(missing)} (the optional extra: {consumers.EXTRA_HINT})"
        )
    run_consumer(consumers.ONNX, ONNX_SHARE, clause)
