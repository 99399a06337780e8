"""The layer catalog: one module per layer family; the drawable kinds in :data:`REGISTRY`,
the fixed ones (never drawn: the zoo's applications) in :data:`FIXED`."""

from . import (  # noqa: F401  (each module registers its kinds)
    applications,
    attention,
    convolution,
    core,
    custom,
    merging,
    noise,
    normalization,
    pooling,
    preprocessing,
    recurrent,
    reshaping,
)
from .base import FIXED, FLOAT_DTYPES, INT_DTYPES, REGISTRY, Kind, framework_name, lookup
from .custom import custom_objects

FAMILIES = (
    "core",
    "convolution",
    "pooling",
    "normalization",
    "noise",
    "reshaping",
    "merging",
    "recurrent",
    "attention",
    "custom",
    "preprocessing",
)


def kind(name: str) -> Kind:
    return lookup(name)


def all_kinds() -> tuple[str, ...]:
    """The drawable kinds (the fixed ones, in ``FIXED``, are never drawn)."""
    return tuple(REGISTRY)


def deterministic_in_training(spec) -> bool:
    """Whether ``model(x, training=True)`` of the built ``spec`` is reproducible: no layer
    in it (nested sub-models included) is marked ``deterministic_in_training=False``."""
    return all(lookup(k).deterministic_in_training for k in spec.kinds())


__all__ = [
    "FAMILIES",
    "FIXED",
    "FLOAT_DTYPES",
    "INT_DTYPES",
    "REGISTRY",
    "Kind",
    "all_kinds",
    "custom_objects",
    "deterministic_in_training",
    "framework_name",
    "kind",
    "lookup",
]
