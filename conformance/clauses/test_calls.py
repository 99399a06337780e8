"""CALL-INFERENCE, CALL-TRAINING, CALL-CONSISTENT: what the saved call functions compute."""

import pytest

from conformance.expected import originals
from conformance.expected.names import expected_output_names
from conformance.expected.tolerances import assert_close
from conformance.plugin.drawing import shared_examples
from conformance.savedmodel import calls, tree


def _inputs(spec, data):
    import strategies

    return strategies.call_inputs(spec, data)


def _assert_outputs(got, want, what):
    assert len(got) == len(want), f"{what}: {len(got)} outputs, the model gives {len(want)}"
    for index, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, f"{what}, output {index}")


def check_inference(case, data):
    inputs = _inputs(case.spec, data)
    want = originals.outputs(case.model, inputs, training=False)
    root_call = tree.keras_root(case.loaded).require("__call__")
    got = calls.flat_numpy(calls.call(root_call, inputs, training=False))
    _assert_outputs(got, want, "keras_api.__call__(training=False)")
    serving = case.loaded.signatures["serving_default"]
    result = serving(**calls.serving_feed(case.loaded, case.spec, data))
    output_names = expected_output_names(case.spec)
    assert sorted(result) == sorted(output_names), (
        f"serving_default outputs {sorted(result)}, expected {sorted(output_names)}"
    )
    _assert_outputs([result[name].numpy() for name in output_names], want, "serving_default")


def deterministic_in_training(spec):
    import strategies

    return strategies.deterministic_in_training(spec)


def check_training(case, data):
    # Training-mode calls move BatchNormalization statistics and seed states, in the model
    # and in the loaded object; the case is shared with other clauses, so both are restored.
    root = tree.keras_root(case.loaded)
    with originals.preserved(originals.variables(case.model)[0], root.objects("variables")):
        _check_training(case, data)


def _check_training(case, data):
    inputs = _inputs(case.spec, data)
    root_call = tree.keras_root(case.loaded).require("__call__")
    traced = calls.training_values(root_call)
    if originals.expects_training(case.model):
        assert {True, False} <= traced, (
            f"keras_api.__call__ is traced for training in {sorted(traced, key=str)}, "
            "not for both True and False"
        )
    # Inference first: a training-mode call moves the statistics inference reads.
    inference_out = calls.flat_numpy(calls.call(root_call, inputs, training=False))
    want_inference = originals.outputs(case.model, inputs, training=False)
    _assert_outputs(inference_out, want_inference, "keras_api.__call__(training=False)")
    training_out = calls.flat_numpy(calls.call(root_call, inputs, training=True))
    want_training = originals.outputs(case.model, inputs, training=True)
    if deterministic_in_training(case.spec):
        _assert_outputs(training_out, want_training, "keras_api.__call__(training=True)")
    else:
        # Stochastic layers: equal shapes are all that can be compared.
        assert [o.shape for o in training_out] == [o.shape for o in want_training], (
            "keras_api.__call__(training=True): output shapes differ from the model's"
        )
    _check_layers_training(case)


def _check_layers_training(case):
    """Every saved sub-layer whose original call, or a descendant's, takes ``training`` is
    traced for both modes; for deterministic models each mode gives the original layer's
    output on the same made-up inputs."""
    import tensorflow as tf

    by_path = originals.layers_by_saved_path(case.model)
    compare = deterministic_in_training(case.spec)
    for node in tree.walk(case.loaded)[1:]:
        layer = by_path.get(node.path)
        if layer is None or originals.is_input_layer(layer) or not originals.uses_training(layer):
            continue
        call_fn = node.function("__call__")
        if not tree.concrete_functions(call_fn):
            continue  # saved without call functions (an RNN's cell): FORMAT-KERAS-API's concern
        traced = calls.training_values(call_fn)
        assert {True, False} <= traced, (
            f"{node.path} ({layer.name}): its call or a sub-layer's takes training, but "
            f"keras_api.__call__ is traced for training in {sorted(traced, key=str)}, not for "
            "both True and False"
        )
        if not compare:
            continue
        for training, args, kwargs in calls.traced_calls(call_fn):
            tensors = [a for a in tf.nest.flatten((args, kwargs)) if tf.is_tensor(a)]
            literals = [
                a for a in tf.nest.flatten((args, kwargs))
                if not tf.is_tensor(a) and not isinstance(a, bool)
            ]
            if training is None or len(tensors) != 1 or literals:
                continue  # several tensor arguments or constants: not comparable by position
            got = calls.flat_numpy(call_fn(*args, **kwargs))
            want = calls.flat_numpy(layer(tensors[0], training=training))
            _assert_outputs(got, want, f"{node.path} ({layer.name}) __call__(training={training})")


def check_consistent(case):
    # Training-mode calls move statistics of the shared case's loaded object: restore them.
    root = tree.keras_root(case.loaded)
    root.require("__call__")
    with originals.preserved(root.objects("variables")):
        _check_consistent(case)


def _check_consistent(case):
    # Stochastic layers draw new noise on every training-mode call: compare those calls
    # only when every layer of the model is deterministic in training.
    compare_training = deterministic_in_training(case.spec)
    compared = 0
    for node in tree.walk(case.loaded):
        call_fn = node.function("__call__")
        for training, args, kwargs in calls.traced_calls(call_fn):
            if training and not compare_training:
                continue
            plain = calls.flat_numpy(call_fn(*args, **kwargs))
            for name in tree.CALL_FUNCTIONS[1:]:
                function = node.function(name)
                assert function is not None, f"{node.path}: keras_api lacks {name}"
                outputs, _losses = function(*args, **kwargs)
                _assert_outputs(
                    calls.flat_numpy(outputs),
                    plain,
                    f"{node.path}: {name}(x)[0] vs __call__(x), training={training}",
                )
                compared += 1
    assert compared, "keras_api.__call__ of the root has no traced function to compare"


@pytest.mark.clause("CALL-INFERENCE")
@shared_examples(zoo="first")
def test_call_and_serving_equal_model(implementation, clause, example):
    spec, data = example
    with clause.example(spec):
        check_inference(clause.case(spec), data)


@pytest.mark.clause("CALL-TRAINING")
@shared_examples()
def test_training_mode_equals_model(implementation, clause, example):
    spec, data = example
    with clause.example(spec):
        check_training(clause.case(spec), data)


@pytest.mark.clause("CALL-CONSISTENT")
@shared_examples()
def test_call_functions_agree(implementation, clause, example):
    spec, _ = example
    with clause.example(spec):
        check_consistent(clause.case(spec))
