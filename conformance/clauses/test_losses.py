"""LOSSES-REGULARIZATION and LOSSES-ACTIVITY: the losses a saved model keeps."""

import numpy as np
import pytest

from conformance.expected import originals
from conformance.expected.tolerances import assert_close
from conformance.plugin.drawing import shared_examples
from conformance.savedmodel import calls, tree


def _values(functions):
    return [np.asarray(function(), dtype=np.float64) for function in functions]


def check_regularization(case):
    root = tree.keras_root(case.loaded)
    saved_losses = _values(root.objects("regularization_losses"))
    assert len(saved_losses) == originals.weight_regularization_count(case.model), (
        f"keras_api.regularization_losses has {len(saved_losses)} functions, the model has "
        f"{originals.weight_regularization_count(case.model)} weight-regularization losses"
    )
    assert_close(
        np.float64(sum(saved_losses)),
        np.float64(originals.weight_regularization_total(case.model)),
        "sum of keras_api.regularization_losses()",
        dtype=case.spec.dtype,
    )
    saved_by_path = {node.path: node for node in tree.walk(case.loaded)}
    for path, layer in originals.layers_by_saved_path(case.model).items():
        node = saved_by_path.get(path)
        if node is None or node.keras_api is None or node.children:
            continue  # leaf layers own their regularizers; containers only collect them
        own = _values(node.objects("layer_regularization_losses"))
        assert_close(
            np.float64(sum(own)),
            np.float64(originals.weight_regularization_total(layer)),
            f"{path} ({layer.name!r}): sum of layer_regularization_losses()",
            dtype=case.spec.dtype,
        )


def check_activity(case, data):
    import strategies

    inputs = strategies.call_inputs(case.spec, data)
    root = tree.keras_root(case.loaded)
    all_losses_fn = root.require("call_and_return_all_conditional_losses")
    with originals.preserved(originals.variables(case.model)[0], root.objects("variables")):
        want = originals.call_losses_total(case.model, inputs, training=False)
        _, losses = calls.call(all_losses_fn, inputs, training=False)
    assert_close(
        np.float64(calls.losses_total(losses)),
        np.float64(want),
        "root call_and_return_all_conditional_losses(x)[1] vs the model's call losses",
        dtype=case.spec.dtype,
    )
    saved_by_path = {node.path: node for node in tree.walk(case.loaded)}
    for path, layer in originals.layers_by_saved_path(case.model).items():
        regularizer = getattr(layer, "activity_regularizer", None)
        node = saved_by_path.get(path)
        if regularizer is None or node is None or node.keras_api is None:
            continue
        call_args = calls.inference_call_args(node.function("__call__"))
        assert call_args, f"{path} ({layer.name!r}): no inference-mode call function traced"
        args, kwargs = call_args
        outputs, all_losses = node.function("call_and_return_all_conditional_losses")(
            *args, **kwargs
        )
        _, conditional = node.function("call_and_return_conditional_losses")(*args, **kwargs)
        activity_fn = node.function("activity_regularizer_fn")
        assert activity_fn is not None, f"{path} ({layer.name!r}): no activity_regularizer_fn"
        import tensorflow as tf

        # As in Keras (both), a call adds the activity loss divided by the batch size.
        activity = [
            np.asarray(activity_fn(y), dtype=np.float64) / (y.shape[0] if y.shape.rank else 1)
            for y in tf.nest.flatten(outputs)
        ]
        assert_close(
            np.float64(calls.losses_total(all_losses)),
            np.float64(calls.losses_total(conditional) + sum(activity)),
            f"{path} ({layer.name!r}): all conditional losses vs conditional + activity "
            "/ batch size",
            dtype=case.spec.dtype,
        )
        for index, y in enumerate(tf.nest.flatten(outputs)):
            assert_close(
                np.float64(np.asarray(activity_fn(y))),
                np.float64(np.asarray(regularizer(y))),
                f"{path} ({layer.name!r}): activity_regularizer_fn(y[{index}])",
                dtype=case.spec.dtype,
            )


@pytest.mark.clause("LOSSES-REGULARIZATION")
@shared_examples()
def test_regularization_losses(implementation, clause, example):
    spec, _ = example
    with clause.example(spec):
        check_regularization(clause.case(spec))


@pytest.mark.clause("LOSSES-ACTIVITY")
@shared_examples()
def test_activity_and_call_losses(implementation, clause, example):
    spec, data = example
    with clause.example(spec):
        check_activity(clause.case(spec), data)
