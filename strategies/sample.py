"""Seeded draws outside a property: the same arguments give the same specs in any process.

For command lines and tools (the corpus, the coverage table, the demo); properties use
``model_specs`` with ``@given`` as usual.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import numpy as np

from .generate import input_data, model_specs
from .spec import ModelSpec


@contextmanager
def _without_local_constants():
    """Hypothesis mixes constants found in the process's own loaded modules into some draws,
    so one seed would draw other specs in a test session than in a script: sampling leaves
    them out (private Hypothesis names; without them, sampling goes on as it is)."""
    try:
        from hypothesis.internal.conjecture import providers

        original = providers._get_local_constants
        empty = providers.Constants()
        cache = providers.CONSTANTS_CACHE.cache
    except (ImportError, AttributeError):
        yield
        return
    providers._get_local_constants = lambda: empty
    cache.clear()  # it holds what the constants allowed, computed with the local ones
    try:
        yield
    finally:
        providers._get_local_constants = original
        cache.clear()


def _seeded(count: int, seed: int):
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis import seed as hypothesis_seed

    def decorate(test):
        return hypothesis_seed(seed)(
            settings(
                max_examples=count,
                database=None,
                phases=[Phase.generate],
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )(test)
        )

    return decorate


def sample_specs(count: int, seed: int = 0, **knobs: Any) -> list[ModelSpec]:
    """``count`` specs drawn from ``model_specs(**knobs)`` with Hypothesis' ``seed``."""
    from hypothesis import given

    drawn: list[ModelSpec] = []

    @_seeded(count, seed)
    @given(model_specs(**knobs))
    def collect(spec: ModelSpec) -> None:
        drawn.append(spec)

    with _without_local_constants():
        collect()
    return drawn


def sample_examples(count: int, seed: int, **knobs: Any) -> list[tuple[ModelSpec, dict]]:
    """``count`` (spec, input data) pairs drawn with ``seed``, the minimal first draw left out."""
    from hypothesis import given
    from hypothesis import strategies as st

    drawn: list = []

    @_seeded(count + 1, seed)
    @given(st.data())
    def collect(data) -> None:
        spec = data.draw(model_specs(**knobs))
        drawn.append((spec, data.draw(input_data(spec))))

    with _without_local_constants():
        collect()
    return drawn[1 : count + 1]  # Hypothesis' first draw is the minimal spec: skip it


def seeded_inputs(spec: ModelSpec, batch: int = 2) -> dict[str, np.ndarray]:
    """Inputs for ``spec`` from its own ``seed`` alone, keyed by input name (no Hypothesis):
    what the corpus records and every legacy writer fed its model."""
    rng = np.random.default_rng(spec.seed)
    data = {}
    for item in spec.inputs:
        shape = (item.batch_size or batch, *item.shape)
        if item.vocab is not None:
            data[item.name] = rng.integers(0, item.vocab, size=shape).astype(item.dtype)
        elif item.dtype.startswith("int"):
            data[item.name] = rng.integers(0, 4, size=shape).astype(item.dtype)
        else:
            data[item.name] = (rng.standard_normal(shape) * 0.5).astype(item.dtype)
    return data
