"""Differential checks: the same specs saved by several implementations, compared.

Every spec is built once per framework; ``strategies.build_model`` sets the weights from the
spec's seed, so the Keras 3 and the tf_keras model of one spec hold bitwise-identical
weights, and any difference below comes from the savers and loaders.

Three results, all plain JSON-able data (``run`` returns them; ``python -m conformance
matrix`` renders them):

- ``pairs``: for each pair of implementations, their ``serving_default`` signatures compared
  field by field (input names, input dtypes, input shapes, output keys, output dtypes, output
  shapes: each equal or differing, with both values) and their serving outputs on the same
  inputs (``conformance.expected.tolerances``).
- ``cross``: a saver x loader matrix. What each implementation saves is loaded by plain
  ``tf.saved_model.load`` (its ``serving_default``) and by every implementation's own loader
  (the reference's, tf_keras' ``load_model``, keras_export's ``TFSMLayer``); the outputs are
  compared with the saver's original model.
- ``kept``: per implementation, what its files keep of the model: ``keras_api``, the traced
  training modes of the root call, the regularization losses, the serving output keys.

Differences are reported, never smoothed over: tf_keras keys serving outputs by the output
layers' names, Keras 3's export by ``output_0..``; export keeps no losses and no training mode.
"""

import os
import re
import shutil
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass

import numpy as np

SERVING_LOADER = "tf.saved_model.load"
SIGNATURE_FIELDS = (
    "input names",
    "input dtypes",
    "input shapes",
    "output keys",
    "output dtypes",
    "output shapes",
)


@dataclass
class FieldResult:
    """One field of two serving signatures: equal or not, with both values."""

    field: str
    equal: bool
    a: object
    b: object

    def describe(self, name_a="a", name_b="b"):
        if self.equal:
            return f"{self.field}: equal ({self.a!r})"
        return f"{self.field}: differs ({name_a}: {self.a!r}; {name_b}: {self.b!r})"


def _natural(key):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


def ordered_input_keys(keys, spec):
    """Signature input names in the model's input order.

    Names equal to the model's keep its order; names a saver made up (``input_1``,
    ``args_0``...) are taken in natural order, as ``saved.serving_feed`` matches them.
    """
    names = list(spec.input_names())
    if sorted(keys) == sorted(names):
        return names
    return sorted(keys, key=lambda key: (len(key), key))


def ordered_output_keys(keys, spec):
    """Signature output keys in the model's output order (layer names, or natural order)."""
    names = list(spec.output_names())
    if sorted(keys) == sorted(names):
        return names
    return sorted(keys, key=_natural)


def signature_fields(signature, spec):
    """``{field: value}`` of a serving signature ``(inputs, outputs)``, in model order.

    ``signature`` is what ``conformance.savedmodel.tree.serving_signature`` returns:
    ``({name: (dtype, shape)}, {key: (dtype, shape)})``.
    """
    inputs, outputs = signature
    in_keys = ordered_input_keys(list(inputs), spec)
    out_keys = ordered_output_keys(list(outputs), spec)
    return {
        "input names": in_keys,
        "input dtypes": [inputs[k][0] for k in in_keys],
        "input shapes": [inputs[k][1] for k in in_keys],
        "output keys": out_keys,
        "output dtypes": [outputs[k][0] for k in out_keys],
        "output shapes": [outputs[k][1] for k in out_keys],
    }


def compare_signatures(fields_a, fields_b):
    """Field by field: a ``FieldResult`` for each of ``SIGNATURE_FIELDS``."""
    return [
        FieldResult(
            name, fields_a.get(name) == fields_b.get(name), fields_a.get(name), fields_b.get(name)
        )
        for name in SIGNATURE_FIELDS
    ]


def compare_outputs(got, want, what):
    """``None`` when the two lists of arrays are equal within tolerance, else the reason."""
    from conformance.expected.tolerances import assert_close

    if len(got) != len(want):
        return f"{what}: {len(got)} outputs, expected {len(want)}"
    for index, (g, w) in enumerate(zip(got, want)):
        try:
            assert_close(g, w, f"{what}, output {index}")
        except AssertionError as exc:
            return str(exc)
    return None


def _short(exc):
    text = re.sub(r"\x1b\[[0-9;]*m", "", f"{type(exc).__name__}: {exc}").strip()
    text = " ".join(text.split())
    return text[:300]


# --- one spec ------------------------------------------------------------------------------


@dataclass
class Saved:
    """One spec saved by one implementation (or why it could not be)."""

    impl: str
    path: str | None
    model: object = None
    loaded: object = None  # tf.saved_model.load of path
    error: str | None = None


def save_all(implementations, spec, root):
    """Build ``spec`` in each implementation's framework and save it; ``{name: Saved}``."""
    import strategies
    from conformance.savedmodel import tree

    models = {}
    out = {}
    for impl in implementations:
        try:
            if impl.framework not in models:
                models[impl.framework] = strategies.build_model(spec, framework=impl.framework)
            model = models[impl.framework]
            path = os.path.join(root, impl.name)
            impl.save(model, path)
            out[impl.name] = Saved(impl.name, path, model, tree.load(path))
        except Exception as exc:
            out[impl.name] = Saved(impl.name, None, error=_short(exc))
    return out


def serving_outputs(saved, spec, data):
    """The ``serving_default`` outputs on ``data``, in model output order."""
    from conformance.savedmodel import calls

    function = saved.loaded.signatures["serving_default"]
    result = function(**calls.serving_feed(saved.loaded, spec, data))
    keys = ordered_output_keys(list(result), spec)
    return [np.asarray(result[key]) for key in keys]


def _flat_outputs(result, spec):
    import tensorflow as tf

    if isinstance(result, dict):
        keys = ordered_output_keys(list(result), spec)
        return [np.asarray(result[key]) for key in keys]
    return [np.asarray(t) for t in tf.nest.flatten(result)]


def _call_revived(obj, inputs):
    try:
        return obj(inputs, training=False)
    except TypeError as exc:
        if "training" not in str(exc):
            raise
        return obj(inputs)


def load_and_call(loader, saved, spec, data, implementations):
    """Outputs of ``saved``'s files loaded by ``loader`` (a loader name), in model order."""
    import strategies

    if loader == SERVING_LOADER:
        return serving_outputs(saved, spec, data)
    impl = implementations[loader]
    obj = impl.load(saved.path)
    return _flat_outputs(_call_revived(obj, strategies.call_inputs(spec, data)), spec)


def output_key_style(keys, spec):
    """How a serving signature names its outputs, in words."""
    count = len(keys)
    if keys == list(spec.output_names()):
        return "output layer names"
    if keys == [f"output_{i}" for i in range(count)]:
        return "output_0.. (from 0)"
    if keys == [f"output_{i}" for i in range(1, count + 1)]:
        return "output_1.. (from 1)"
    return "other: " + ", ".join(keys)


def _compare_originals(a, b, spec, data):
    """``None`` when the two original models agree (or are one), else how they differ."""
    import strategies
    from conformance.expected import originals

    if a.model is b.model:
        return None
    inputs = strategies.call_inputs(spec, data)
    return compare_outputs(
        originals.outputs(a.model, inputs, training=False),
        originals.outputs(b.model, inputs, training=False),
        f"original {a.impl} model vs original {b.impl} model",
    )


def kept(saved, spec):
    """What ``saved``'s files keep of the model, through plain ``tf.saved_model.load``."""
    from conformance.expected import originals
    from conformance.savedmodel import calls, tree

    root = tree.walk(saved.loaded)[0]
    call = root.function("__call__")
    training = (
        sorted(
            (str(v) for v in calls.training_values(call)),
            key=lambda v: ("None", "False", "True").index(v),
        )
        if call is not None
        else None
    )
    _, outputs = tree.serving_signature(saved.loaded)
    return {
        "keras_api": root.keras_api is not None,
        "layers with keras_api": sum(
            node.keras_api is not None for node in tree.walk(saved.loaded)
        ),
        "training modes of __call__": training,
        "regularization losses": len(root.objects("regularization_losses"))
        if root.keras_api is not None
        else None,
        "model regularization losses": originals.weight_regularization_count(saved.model),
        "serving output keys": output_key_style(ordered_output_keys(list(outputs), spec), spec),
        "signatures": sorted(saved.loaded.signatures.keys()),
    }


def compare_spec(implementations, spec, root, *, loaders=True):
    """Every comparison for one spec: ``{"saves", "pairs", "cross", "kept"}``."""
    import strategies
    from conformance import corpus
    from conformance.expected import originals
    from conformance.savedmodel import tree

    by_name = {impl.name: impl for impl in implementations}
    saves = save_all(implementations, spec, root)
    data = corpus.corpus_inputs(spec)
    result = {
        "saves": {name: s.error for name, s in saves.items()},
        "pairs": {},
        "cross": {},
        "kept": {},
    }
    fields, outputs = {}, {}
    for name, s in saves.items():
        if s.error:
            continue
        try:
            fields[name] = signature_fields(tree.serving_signature(s.loaded), spec)
            outputs[name] = serving_outputs(s, spec, data)
        except Exception as exc:
            saves[name].error = "serving_default: " + _short(exc)
            result["saves"][name] = saves[name].error
            continue
        try:
            result["kept"][name] = kept(s, spec)
        except Exception as exc:
            result["kept"][name] = {"error": _short(exc)}
    names = [impl.name for impl in implementations]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            key = f"{a} | {b}"
            if a not in fields or b not in fields:
                missing = [n for n in (a, b) if n not in fields]
                result["pairs"][key] = {
                    "error": "; ".join(f"{n}: {saves[n].error}" for n in missing)
                }
                continue
            result["pairs"][key] = {
                "fields": [asdict(f) for f in compare_signatures(fields[a], fields[b])],
                "outputs": compare_outputs(outputs[a], outputs[b], f"serving {a} vs {b}"),
                # Built in two frameworks, the originals themselves may compute differently
                # (same weights, different layer semantics): then the savers are not to blame.
                "originals": _compare_originals(saves[a], saves[b], spec, data),
            }
    if not loaders:
        return result
    for saver, s in saves.items():
        row = {}
        if s.error:
            result["cross"][saver] = {
                loader: {"error": f"save: {s.error}"} for loader in [SERVING_LOADER, *names]
            }
            continue
        want = originals.outputs(s.model, strategies.call_inputs(spec, data), training=False)
        for loader in [SERVING_LOADER, *names]:
            started = time.perf_counter()
            try:
                got = load_and_call(loader, s, spec, data, by_name)
                problem = compare_outputs(got, want, f"{saver} files loaded by {loader}")
                row[loader] = {"error": problem} if problem else {"ok": True}
            except NotImplementedError as exc:
                row[loader] = {"no_loader": _short(exc)}
            except Exception as exc:
                row[loader] = {"error": _short(exc)}
            row[loader]["seconds"] = round(time.perf_counter() - started, 2)
        result["cross"][saver] = row
    return result


# --- many specs ----------------------------------------------------------------------------


def run(impl_names, specs, *, loaders=True, progress=None):
    """Compare ``specs`` (``[(name, ModelSpec)]``) across the named implementations.

    Returns ``{"implementations", "specs", "per_spec": {spec name: compare_spec(...)}}``,
    JSON-able; ``summarize`` aggregates it.
    """
    from conformance.api import resolve_implementation
    from conformance.environment import quiet_tensorflow

    quiet_tensorflow()
    implementations = [resolve_implementation(name) for name in impl_names]
    per_spec = {}
    for name, spec in specs:
        root = tempfile.mkdtemp(prefix="conformance-diff-")
        try:
            per_spec[name] = compare_spec(implementations, spec, root, loaders=loaders)
        except Exception:
            per_spec[name] = {"error": traceback.format_exc(limit=3)[-1500:]}
        finally:
            shutil.rmtree(root, ignore_errors=True)
        if progress:
            progress(name)
    return {
        "implementations": list(impl_names),
        "specs": {name: spec.to_json() for name, spec in specs},
        "per_spec": per_spec,
    }


def summarize(document):
    """Aggregate ``run``'s document over its specs.

    ``{"pairs": {pair: {field or "serving outputs": {"equal": n, "total": n, "example": ...}}},
    "cross": {saver: {loader: {"ok": n, "total": n, "example": ...}}}}``; an example is the
    first differing spec, with both values or the error.
    """
    pairs, cross = {}, {}
    for spec_name, result in document["per_spec"].items():
        if "error" in result:
            continue
        for pair, comparison in result["pairs"].items():
            entry = pairs.setdefault(pair, {})
            if "error" in comparison:
                cell = entry.setdefault("not compared", _tally())
                _count(cell, False, spec_name, comparison["error"])
                continue
            for field in comparison["fields"]:
                cell = entry.setdefault(field["field"], _tally())
                _count(cell, field["equal"], spec_name, {"a": field["a"], "b": field["b"]})
            cell = entry.setdefault("serving outputs", _tally())
            _count(cell, comparison["outputs"] is None, spec_name, comparison["outputs"])
            cell = entry.setdefault("original models", _tally())
            _count(
                cell, comparison.get("originals") is None, spec_name, comparison.get("originals")
            )
        for saver, row in result["cross"].items():
            for loader, outcome in row.items():
                cell = cross.setdefault(saver, {}).setdefault(loader, _tally())
                if "no_loader" in outcome:
                    cell["no_loader"] = outcome["no_loader"]
                    continue
                _count(cell, "ok" in outcome, spec_name, outcome.get("error"))
    return {"pairs": pairs, "cross": cross, "kept": summarize_kept(document)}


def _regs_kept(kept_):
    return kept_["regularization losses"] == kept_["model regularization losses"]


def summarize_kept(document):
    """Per implementation, what its files keep over all specs, in words."""
    seen = {}
    for result in document["per_spec"].values():
        for impl, kept_ in result.get("kept", {}).items():
            if "error" in kept_:
                continue
            seen.setdefault(impl, []).append(kept_)
    out = {}
    for impl, entries in seen.items():
        total = len(entries)
        with_regs = [e for e in entries if e["model regularization losses"]]
        modes = sorted({str(m) for e in entries for m in (e["training modes of __call__"] or [])})
        styles = {}
        for e in entries:
            styles[e["serving output keys"]] = styles.get(e["serving output keys"], 0) + 1
        out[impl] = {
            "keras_api": f"{sum(e['keras_api'] for e in entries)}/{total} specs",
            "training modes of the root __call__": ", ".join(modes)
            if modes
            else "none (no __call__)",
            "root regularization_losses as many as the model's weight regularizers": (
                f"{sum(_regs_kept(e) for e in with_regs)}/{len(with_regs)} specs with regularizers"
            ),
            "serving output keys": "; ".join(
                f"{k} ({n}/{total})" for k, n in sorted(styles.items())
            ),
            "signatures": ", ".join(sorted({k for e in entries for k in e["signatures"]})),
        }
    return out


def _tally():
    return {"equal": 0, "total": 0, "example": None}


def _count(cell, equal, spec_name, detail):
    cell["total"] += 1
    if equal:
        cell["equal"] += 1
    elif cell["example"] is None:
        cell["example"] = {"spec": spec_name, "detail": detail}
