"""Coverage of drawn specs: layer kinds, (kind, input rank, dtype) combinations, parameter bins
and adjacent-kind pairs, measured against what the catalog makes reachable.

``python -m strategies.coverage -n 2000`` draws specs (no building) and prints the table.
The features are computed from the specs alone; inside a property, ``model_specs`` reports
the kinds it drew through Hypothesis' ``event()``.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .spec import OUTER_SHARE, ModelSpec


def _bin(value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return repr(value)
    if isinstance(value, int | float):
        if value == 0:
            return "0"
        sign = "-" if value < 0 else ""
        return f"{sign}2^{int(math.floor(math.log2(abs(value))))}"
    if isinstance(value, tuple):
        flat = [v for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
        if not flat:
            return f"tuple[{len(value)}]"
        return f"len{len(value)}:max{_bin(max(flat))}"
    return type(value).__name__


@dataclass
class Features:
    kinds: Counter = field(default_factory=Counter)
    combos: Counter = field(default_factory=Counter)  # (kind, rank, dtype)
    params: Counter = field(default_factory=Counter)  # (kind, param, bin)
    pairs: Counter = field(default_factory=Counter)  # (producer kind, consumer kind)
    topologies: Counter = field(default_factory=Counter)
    regularizers: Counter = field(default_factory=Counter)  # (slot, regularizer kind)
    model: Counter = field(default_factory=Counter)  # frozen parts, compile and training
    specs: int = 0

    def update(self, other: Features) -> None:
        for name in ("kinds", "combos", "params", "pairs", "topologies", "regularizers", "model"):
            getattr(self, name).update(getattr(other, name))
        self.specs += other.specs


def features(spec: ModelSpec) -> Features:
    """What one spec covers (nested sub-models included)."""
    f = Features(specs=1)
    f.topologies[spec.topology] += 1
    _walk(spec, f)
    _model_features(spec, f)
    return f


def _model_features(spec: ModelSpec, f: Features) -> None:
    for node in spec.nodes:
        if node.shares:
            f.model["shared sub-model" if node.kind == "Submodel" else "shared layer"] += 1
        for inner in node.submodel.nodes if node.submodel is not None else ():
            if (inner.shares or "").startswith(OUTER_SHARE):
                f.model["layer shared with a sub-model"] += 1
    for node in spec.frozen_nodes():
        what = "sub-model" if node.submodel is not None else "layer"
        f.model[f"frozen {what} ({node.frozen} build)"] += 1
    if spec.open_inputs():
        f.model["open dims"] += 1
    if spec.mixed_precision:
        f.model[f"{spec.mixed_precision} model"] += 1
    elif spec.mixed_layers():
        policies = {n.policy for n in spec.mixed_layers()}
        for policy in sorted(policies):
            f.model[f"{policy} layers"] += 1
    _input_features(spec, f)
    t = spec.training
    if t is None:
        return
    f.model["compiled"] += 1
    f.model[f"optimizer {t.optimizer}" + (" with momentum" if t.momentum else "")] += 1
    if t.decay_steps:
        f.model["learning-rate schedule"] += 1
    if len(t.losses) > 1:
        f.model["several losses with weights"] += 1
    f.model[f"{t.steps} training steps"] += 1
    for loss in t.losses:
        f.model[f"loss {loss}"] += 1
    for metric in {m for ms in t.metrics for m in ms}:
        f.model[f"metric {metric}"] += 1


def _input_features(spec: ModelSpec, f: Features) -> None:
    from .catalog.preprocessing import holds_assets

    if any(i.dtype == "string" for i in spec.inputs):
        f.model["string inputs"] += 1
    if any(i.dtype.startswith("int") for i in spec.inputs):
        f.model["integer inputs"] += 1
    if holds_assets(spec):
        f.model["assets (vocabulary files)"] += 1


def _walk(spec: ModelSpec, f: Features, outer: str | None = None) -> str | None:
    """Record ``spec``'s nodes; ``outer`` is the kind feeding a nested sub-model's input.
    Returns the kind of the (first) output node, for the pair leaving a sub-model."""
    shapes: dict[str, tuple[tuple[int, ...], str]] = {
        i.name: (i.shape, "text" if i.words else i.dtype) for i in spec.inputs
    }
    kinds: dict[str, str] = {}
    input_names = {i.name for i in spec.inputs}
    for n in spec.nodes:
        shape, dtype = shapes[n.inputs[0]]
        if n.submodel is not None:
            kinds[n.id] = _walk(n.submodel, f, kinds.get(n.inputs[0])) or "Submodel"
        elif n.kind == "Submodel":  # a sub-model called again: walked where first called
            kinds[n.id] = "Submodel"
        else:
            kinds[n.id] = n.kind
            f.kinds[n.kind] += 1
            f.combos[(n.kind, len(shape), dtype)] += 1
            for key, value in n.params:
                f.params[(n.kind, key, _bin(value))] += 1
            for slot, reg in n.regularizers:
                f.regularizers[(slot, reg.kind)] += 1
            for ref in n.inputs:
                producer = outer if ref in input_names else kinds.get(ref)
                if producer is not None and producer != "Submodel":
                    f.pairs[(producer, n.kind)] += 1
        out_dtype = spec.dtype
        shapes[n.id] = (n.out_shape, out_dtype)
    return kinds.get(spec.outputs[0]) if spec.outputs else None


# --- what is reachable ---------------------------------------------------------------------


def reachable_combos(dtypes: tuple[str, ...] | None = None) -> set[tuple[str, int, str]]:
    from .catalog import FLOAT_DTYPES, REGISTRY

    dts = set(dtypes or FLOAT_DTYPES) | {"int32", "string", "text"}
    return {
        (k.name, r, d) for k in REGISTRY.values() for r in k.ranks for d in k.dtypes if d in dts
    }


def reachable_pairs() -> set[tuple[str, str]]:
    """(a, b) where some output rank of ``a`` is an input rank of ``b`` (float tensors; a
    masked output of Masking only feeds kinds that support masks; a lookup head only the
    kinds the generator lets follow it)."""
    from .catalog import FLOAT_DTYPES, REGISTRY
    from .catalog.preprocessing import AFTER_INT64_HEADS, INT64_HEADS

    out = set()
    for a in REGISTRY.values():
        out_ranks = {o for r in a.ranks for o in a.out_ranks(r)}
        for b in REGISTRY.values():
            if not set(b.dtypes) & set(FLOAT_DTYPES):  # takes model inputs only
                continue
            if a.name == "Masking" and not b.supports_mask:
                continue
            if a.name in INT64_HEADS and b.name not in AFTER_INT64_HEADS:
                continue
            if out_ranks & set(b.ranks):
                out.add((a.name, b.name))
    return out


def table(f: Features, dtypes: tuple[str, ...] | None = None) -> str:
    from .catalog import REGISTRY

    combos = reachable_combos(dtypes)
    pairs = reachable_pairs()
    got_combos = set(f.combos) & combos
    got_pairs = set(f.pairs) & pairs
    never = [k for k in REGISTRY if k not in f.kinds]
    lines = [
        f"specs drawn:                    {f.specs}",
        f"layer kinds drawn:              {len(set(f.kinds) & set(REGISTRY))} / {len(REGISTRY)}",
        f"(kind, rank, dtype) combos:     {len(got_combos)} / {len(combos)} reachable "
        f"= {100.0 * len(got_combos) / max(len(combos), 1):.1f} %",
        f"adjacent kind pairs:            {len(got_pairs)} / {len(pairs)} reachable "
        f"= {100.0 * len(got_pairs) / max(len(pairs), 1):.1f} %",
        f"parameter bins seen:            {len(f.params)}",
        f"(slot, regularizer) seen:       {len(f.regularizers)}",
        "topologies:                     "
        + ", ".join(f"{k}={v}" for k, v in sorted(f.topologies.items())),
        f"kinds never drawn:              {', '.join(never) if never else '-'}",
        "model features:                 "
        + (", ".join(f"{k}={v}" for k, v in sorted(f.model.items())) or "-"),
        "",
        "per kind: draws, combos covered / reachable",
    ]
    for name in REGISTRY:
        reach = {c for c in combos if c[0] == name}
        got = {c for c in got_combos if c[0] == name}
        lines.append(f"  {name:26s} {f.kinds.get(name, 0):6d}   {len(got):2d} / {len(reach):2d}")
    return "\n".join(lines)


def features_of(specs: Iterable[ModelSpec]) -> Features:
    """What the specs cover together."""
    total = Features()
    for spec in specs:
        total.update(features(spec))
    return total


def draw_specs(n: int, seed: int = 0, per_run: int | None = None, **knobs: Any) -> Features:
    """Draw ``n`` specs (seeded, no building) and return their coverage.

    One Hypothesis run draws them all, or with ``per_run`` runs of that many examples (seeds
    ``seed``, ``seed + 1``, ...), as properties draw them (the ``ci`` profile: 20 each). A
    long run is mostly Hypothesis' mutations of fewer fresh draws (each copies one choice over
    another: about 445 fresh draws in 2,000 with seed 0), so it covers fewer pairs than short
    runs do."""
    import strategies

    if not per_run:
        return features_of(strategies.sample_specs(n, seed=seed, **knobs))
    total = Features()
    for k, start in enumerate(range(0, n, per_run)):
        count = min(per_run, n - start)
        total.update(features_of(strategies.sample_specs(count, seed=seed + k, **knobs)))
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="number of specs to draw")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-layers", type=int, default=8)
    parser.add_argument(
        "--per-run",
        type=int,
        default=None,
        help="draw the specs in Hypothesis runs of this many examples (default: one run)",
    )
    parser.add_argument(
        "--compiled",
        choices=("never", "sometimes", "always"),
        default="sometimes",
        help="compiled and trained models drawn (model_specs' compiled=False/None/True)",
    )
    args = parser.parse_args(argv)
    compiled = {"never": False, "sometimes": None, "always": True}[args.compiled]
    f = draw_specs(
        args.n,
        seed=args.seed,
        per_run=args.per_run,
        max_layers=args.max_layers,
        compiled=compiled,
    )
    print(table(f))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
