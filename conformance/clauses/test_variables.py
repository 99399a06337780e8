"""VARS-EXACT and LAYERS-TREE: the saved variables and the saved layer tree."""

import pytest

from conformance.expected import originals
from conformance.expected.tolerances import assert_bitwise
from conformance.plugin.drawing import shared_examples
from conformance.savedmodel import files, tree


def check_variables(case):
    root = tree.keras_root(case.loaded)
    expected = originals.variables(case.model)
    for name, want in zip(
        ("variables", "trainable_variables", "non_trainable_variables"), expected
    ):
        got = root.objects(name)
        assert len(got) == len(want), (
            f"keras_api.{name}: {len(got)} saved, the model has {len(want)}"
        )
        for index, (saved, original) in enumerate(zip(got, want)):
            assert_bitwise(
                saved.numpy(),
                originals.variable_value(original),
                f"keras_api.{name}[{index}] ({original.name})",
            )
    count = len(files.checkpoint_value_keys(case.path))
    assert count == len(expected[0]), (
        f"the checkpoint holds {count} variables, the model has {len(expected[0])} "
        "(each must be saved exactly once)"
    )


def check_layer_tree(case):
    tree.keras_root(case.loaded)
    first_place = {}
    for path, layer in originals.all_layer_paths(case.model):
        children = originals.sublayers(layer)
        saved = tree.saved_at(case.loaded, path)
        if children:
            api = getattr(saved, "keras_api", None)
            assert api is not None, f"{path} ({layer.name!r}) has no keras_api"
            saved_children = list(api.layers)
            assert len(saved_children) == len(children), (
                f"{path} ({layer.name!r}): keras_api.layers has {len(saved_children)} "
                f"entries, the layer has {len(children)} sub-layers"
            )
            for index, (child, saved_child) in enumerate(zip(children, saved_children)):
                want = [tuple(v.shape) for v in child.variables]
                api = getattr(saved_child, "keras_api", None)
                # tf_keras saves a Normalization layer with an empty keras_api (EfficientNet)
                assert api is None or hasattr(api, "variables"), (
                    f"{path}.layers[{index}] ({child.name!r}) is saved with a keras_api that "
                    "has no `variables`"
                )
                got = [tuple(v.shape) for v in api.variables] if api is not None else []
                assert got == want, (
                    f"{path}.layers[{index}] should be {child.name!r} (variable shapes {want}), "
                    f"the saved one has {got}: sub-layer order differs"
                )
        if id(layer) in first_place:
            other = first_place[id(layer)]
            assert saved is tree.saved_at(case.loaded, other), (
                f"shared layer {layer.name!r} is saved twice ({other} and {path})"
            )
        else:
            first_place[id(layer)] = path


@pytest.mark.clause("VARS-EXACT")
@shared_examples(zoo="all")
def test_variables_saved_once_bitwise(implementation, clause, example):
    spec, _ = example
    with clause.example(spec):
        check_variables(clause.case(spec))


@pytest.mark.clause("LAYERS-TREE")
@shared_examples(zoo="all")
def test_layer_tree_mirrors_model(implementation, clause, example):
    spec, _ = example
    with clause.example(spec):
        check_layer_tree(clause.case(spec))
