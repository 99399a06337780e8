"""FORMAT-KERAS-API: the ``keras_api`` objects of the root and of every built sub-layer."""

import pytest

from conformance.expected import originals
from conformance.plugin.drawing import shared_examples
from conformance.savedmodel import tree


def check_keras_api(case):
    layers = originals.layers_by_saved_path(case.model)
    saved = {node.path: node for node in tree.walk(case.loaded)}
    for name in tree.ROOT_ENDPOINTS:
        assert getattr(case.loaded, name, None) is not None, f"root lacks the endpoint {name!r}"
    assert saved["root"].function("_default_save_signature") is not None, (
        "root keras_api lacks _default_save_signature"
    )
    for path, layer in layers.items():
        if originals.is_input_layer(layer):
            continue  # InputLayer carries no keras_api in the format (as tf_keras writes it)
        node = saved.get(path)
        assert node is not None, f"layer {layer.name!r} ({path}) is not in the saved layer tree"
        assert node.keras_api is not None, f"layer {layer.name!r} ({path}) has no keras_api"
        for name in tree.LAYER_OBJECTS:
            assert getattr(node.keras_api, name, None) is not None, (
                f"{path} ({layer.name!r}): keras_api lacks the object list {name!r}"
            )
        if node.function("__call__") is None and case.warned_about(layer.name):
            continue  # skipped with a warning that names it (SAVE-UNBUILT): allowed
        for name in tree.CALL_FUNCTIONS:
            function = node.function(name)
            assert function is not None, f"{path} ({layer.name!r}): keras_api lacks {name!r}"
            assert tree.concrete_functions(function), (
                f"{path} ({layer.name!r}): {name} has no traced function"
            )
        has_activity = getattr(layer, "activity_regularizer", None) is not None
        if has_activity:
            assert node.function("activity_regularizer_fn") is not None, (
                f"{path} ({layer.name!r}) has an activity regularizer but no "
                "activity_regularizer_fn"
            )


@pytest.mark.clause("FORMAT-KERAS-API")
@shared_examples()
def test_keras_api_on_every_layer(implementation, clause, example):
    spec, _ = example
    with clause.example(spec):
        check_keras_api(clause.case(spec))
