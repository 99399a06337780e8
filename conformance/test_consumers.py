"""CONSUMER-TFLITE and CONSUMER-ONNX: the saved model converts, and the converted one agrees.

Each test walks the shared example stream (a share of the profile's examples: converting is
slow), converts each case's SavedModel and compares the converted model with the serving
signature. Examples the converter cannot handle are tallied, with its message, on the
test's report (``consumers.CONSUMER_PROPERTY``), not failed; a test where no example could
be converted is skipped saying so, never passed.
"""

import pytest
from hypothesis import given, seed, settings

from conformance import consumers, profiles
from conformance.cases import case_cache, examples
from conformance.stream import SHARED_SEED
from conformance.tolerances import assert_converted_close

# The share of the profile's examples each consumer walks (at least MIN_EXAMPLES): a TFLite
# conversion and its control take a few seconds, a tf2onnx one a fresh interpreter (10-20 s
# on 2 shared cores).
TFLITE_SHARE = 0.3
ONNX_SHARE = 0.25
MIN_EXAMPLES = 3


def consumer_examples(share):
    """Decorator: the shared stream (same strategy and seed) with ``share`` of its examples.

    Applied when the test runs, so the active profile decides the count.
    """

    def decorate(check):
        count = max(MIN_EXAMPLES, round(settings().max_examples * share))
        check = given(example=examples())(check)
        check = settings(
            max_examples=count,
            deadline=None,
            suppress_health_check=profiles.SUITE_HEALTH_CHECKS,
        )(check)
        if settings.get_current_profile_name() != "nightly":
            check = seed(SHARED_SEED)(check)
        return check

    return decorate


def run_consumer(name, share, implementation, clause, request):
    consumer = consumers.CONSUMERS[name]
    tally = consumers.Tally(consumer.clause_id)

    @consumer_examples(share)
    def check(example):
        spec, data = example
        with clause.example(spec, consumer=name):
            case = case_cache().get(implementation, spec)
            outcome = consumers.check_case(
                consumer, case, data, check_values=assert_converted_close
            )
        tally.add(outcome, spec)

    try:
        check()
    finally:
        request.node.user_properties.append((consumers.CONSUMER_PROPERTY, tally.as_property()))
    if tally.checked == 0:
        pytest.skip(
            f"{consumer.clause_id}: all {len(tally.unsupported)} examples are unsupported by "
            f"the {name} converter, none was checked: {tally.summary()}"
        )


@pytest.mark.clause("CONSUMER-TFLITE")
def test_tflite_conversion_equals_serving(implementation, clause, request):
    reason = consumers.tflite_missing_reason()
    if reason:
        pytest.skip(f"CONSUMER-TFLITE: {reason}")
    run_consumer(consumers.TFLITE, TFLITE_SHARE, implementation, clause, request)


@pytest.mark.clause("CONSUMER-ONNX")
def test_onnx_conversion_equals_serving(implementation, clause, request):
    missing = consumers.missing_onnx_modules()
    if missing:
        pytest.skip(
            f"CONSUMER-ONNX needs {', '.join(missing)} (the optional extra: {consumers.EXTRA_HINT})"
        )
    run_consumer(consumers.ONNX, ONNX_SHARE, implementation, clause, request)
