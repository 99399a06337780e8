"""Big real models: save, load and peak memory of keras.applications architectures.

MobileNetV3Small, EfficientNetB0 and ResNet50 (``weights=None``, 32x32 inputs, the zoo's
specs in ``conformance/corpus/zoo.json``, seeded weights), saved three ways, each in its own
worker process:

- ``reference``: ``reference_impl.save`` of the Keras 3 model, loaded with ``reference_impl.load``;
- ``tf_keras``: tf_keras' own saver (``model.save(path, save_format="tf")``) on the same
  architecture built with ``tf_keras.applications``, loaded with ``load_model``;
- ``bare``: ``tf.saved_model.save`` of the Keras 3 model with one serving signature, loaded
  with ``tf.saved_model.load``: the floor, one trace of the model and no Keras format.

A worker first saves a one-layer model (TensorFlow's one-time start-up), then each model once:
a save takes tens of seconds. Peak memory is the save's (``common.peak_memory``).

Targets: the reference's save at most 2x the bare save's time, and its peak memory at most 2x
the bare save's.
"""

import gc
import os
import shutil
import tempfile

from bench import common

MODELS = ("MobileNetV3Small", "EfficientNetB0", "ResNet50")
QUICK_MODELS = ("MobileNetV3Small",)
SAVERS = ("reference", "tf_keras", "bare")
TARGET_TIME_RATIO = 2.0
TARGET_MEMORY_RATIO = 2.0


def _saver(name):
    """``(framework, save(model, path), load(path))`` of one of ``SAVERS``."""
    import tensorflow as tf

    if name == "bare":

        def save(model, path):
            spec = [tf.TensorSpec([None, *i.shape[1:]], i.dtype) for i in model.inputs]
            serve = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0],
                                                  training=False))
            tf.saved_model.save(model, path, signatures=serve.get_concrete_function(*spec))

        return "keras", save, tf.saved_model.load
    from conformance.api import resolve_implementation

    impl = resolve_implementation(name)
    return impl.framework, impl.save, impl.load


def measure(name, models, root):
    import strategies
    from conformance import corpus

    framework, save, load = _saver(name)
    warm = strategies.build_model(corpus.corpus_spec("spec-00"), framework=framework)
    save(warm, os.path.join(root, "warm-up"))
    rows = {}
    for model_name in models:
        spec = corpus.zoo_spec(model_name)
        try:
            model = strategies.build_model(spec, framework=framework)
            path = os.path.join(root, model_name)
            with common.peak_memory() as memory:
                save_s, _ = common.timed(save, model, path)
            load_s, loaded = common.timed(load, path)
            del loaded, model
            rows[model_name] = {"save_s": save_s, "load_s": load_s, "save_peak_mib": memory["mib"],
                                "files_mib": _size_mib(path)}
        except Exception as exc:  # a model this saver cannot take: a row, not a crash
            rows[model_name] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        shutil.rmtree(os.path.join(root, model_name), ignore_errors=True)
        gc.collect()
        print(f"  {name} {model_name}: {rows[model_name]}", flush=True)
    return rows


def _size_mib(path):
    total = 0
    for folder, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    return total / 2**20


def worker(args):
    common.quiet_tensorflow()
    root = tempfile.mkdtemp(prefix=f"bench-big-{args.impl}-")
    try:
        return {"saver": args.impl, "models": measure(args.impl, args.models.split(","), root)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def ratios(results, models):
    """The reference over the bare save and over tf_keras, per model: time and memory."""
    out = {}
    for model_name in models:
        rows = {s: results.get(s, {}).get("models", {}).get(model_name, {}) for s in SAVERS}
        ref, bare, tfk = rows["reference"], rows["bare"], rows["tf_keras"]

        def over(a, b, key):
            return a[key] / b[key] if a.get(key) and b.get(key) else None

        out[model_name] = {
            "save_time_over_bare": over(ref, bare, "save_s"),
            "save_peak_over_bare": over(ref, bare, "save_peak_mib"),
            "save_time_over_tf_keras": over(ref, tfk, "save_s"),
            "save_load_over_tf_keras": (
                (ref["save_s"] + ref["load_s"]) / (tfk["save_s"] + tfk["load_s"])
                if all(r.get(k) for r in (ref, tfk) for k in ("save_s", "load_s")) else None
            ),
        }
    return out


def run(args):
    models = QUICK_MODELS if args.quick else MODELS
    # The built-ins asked for (default the reference and tf_keras), then the floor.
    savers = [*dict.fromkeys(args.impl or ("reference", "tf_keras")), "bare"]
    results = {}
    for saver in savers:
        print(f"\nbig models: {saver} ({', '.join(models)}, one save each)", flush=True)
        results[saver] = common.run_worker("bigmodels", "--impl", saver,
                                           "--models", ",".join(models))
    rows = []
    for saver, result in results.items():
        for model_name, row in result.get("models", {}).items():
            rows.append([saver, model_name, row.get("save_s"), row.get("load_s"),
                         row.get("save_peak_mib"), row.get("files_mib"), row.get("error", "")])
        if "error" in result:
            rows.append([saver, "", None, None, None, None, result["error"]])
    common.print_table("big real models: seconds, save's peak MiB, files MiB",
                       ["saver", "model", "save s", "load s", "save peak MiB", "files MiB",
                        "error"], rows)
    found = ratios(results, models)
    verdicts = {}
    for model_name, r in found.items():
        for key, target in (("save_time_over_bare", TARGET_TIME_RATIO),
                            ("save_peak_over_bare", TARGET_MEMORY_RATIO)):
            value = r[key]
            if value is None:
                continue
            verdicts[f"{model_name}_{key}"] = value
            met = "met" if value <= target else "MISSED"
            print(f"{model_name}: reference {key.replace('_', ' ')} {value:.2f}x "
                  f"(target <= {target}: {met})")
        if r["save_load_over_tf_keras"] is not None:
            print(f"{model_name}: reference save+load over tf_keras' "
                  f"{r['save_load_over_tf_keras']:.2f}x")
    print(f"memory: {common.MEMORY_METHOD}")
    return {"models": list(models), "savers": savers, "results": results, "ratios": found,
            "verdicts": verdicts, "memory": common.MEMORY_METHOD,
            "targets": {"save_time_over_bare": TARGET_TIME_RATIO,
                        "save_peak_over_bare": TARGET_MEMORY_RATIO}}


def main():
    parser = common.worker_parser(__doc__)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    common.write_json(args.json_out, worker(args), announce=False)


if __name__ == "__main__":
    main()
