"""Save, load and save+load time and peak memory per corpus spec, for every built-in.

Each implementation runs in its own worker process. Per spec: one warm-up (build, save,
load) and then ``runs`` timed runs, each on a freshly built model as the suite does (one save
per drawn model; building is not timed). save+load is the median of the per-run sums. An
implementation whose ``load`` raises ``NotImplementedError`` gets no load figures; one whose
save of a spec fails gets the error in that row.

The target: the reference's save+load at most 0.5x tf_keras' legacy save+load, summed over
the specs both saved, in the same run.
"""

import gc
import os
import shutil
import tempfile

from bench import common

QUICK_SPECS = ("spec-00", "spec-06", "spec-10", "spec-17")
TARGET_RATIO = 0.5


def measure_spec(impl, spec, runs, root):
    import strategies

    def one_run(label):
        model = strategies.build_model(spec, framework=impl.framework)
        path = os.path.join(root, label)
        with common.peak_memory() as memory:
            save_s, _ = common.timed(impl.save, model, path)
            try:
                load_s, loaded = common.timed(impl.load, path)
                del loaded
            except NotImplementedError:
                load_s = None
        del model
        shutil.rmtree(path, ignore_errors=True)
        gc.collect()
        return save_s, load_s, memory["mib"]

    try:
        one_run("warm-up")
        results = [one_run(f"run-{i}") for i in range(runs)]
    except Exception as exc:  # a spec this implementation cannot save: a row, not a crash
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    saves = [r[0] for r in results]
    loads = [r[1] for r in results if r[1] is not None]
    return {
        "save_s": common.median(saves),
        "load_s": common.median(loads),
        "save_load_s": common.median([r[0] + r[1] for r in results]) if loads else None,
        "peak_mib": common.median([r[2] for r in results]),
        "runs": runs,
        "layers": spec.num_layers(),
    }


def worker(args):
    common.quiet_tensorflow()
    from conformance import corpus
    from conformance.api import resolve_implementation

    impl = resolve_implementation(args.impl)
    names = args.specs.split(",") if args.specs else corpus.corpus_names()
    root = tempfile.mkdtemp(prefix=f"bench-{impl.name}-")
    try:
        specs = {}
        for name in names:
            specs[name] = measure_spec(impl, corpus.corpus_spec(name), args.runs, root)
            print(f"  {impl.name} {name}: {specs[name]}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "implementation": impl.name,
        "framework": impl.framework,
        "specs": specs,
        # ru_maxrss after the last spec: the worker's peak, with TensorFlow's import.
        "process_peak_rss_mib": common.process_peak_rss_mib(),
    }


def ratio(results, numerator="reference", denominator="tf_keras"):
    """Sum of save+load medians of ``numerator`` over ``denominator``'s, on shared specs."""
    top, bottom = results.get(numerator, {}), results.get(denominator, {})
    shared = [
        name
        for name, row in top.get("specs", {}).items()
        if row.get("save_load_s") and bottom.get("specs", {}).get(name, {}).get("save_load_s")
    ]
    if not shared:
        return None
    num = sum(top["specs"][n]["save_load_s"] for n in shared)
    den = sum(bottom["specs"][n]["save_load_s"] for n in shared)
    per_spec = [top["specs"][n]["save_load_s"] / bottom["specs"][n]["save_load_s"] for n in shared]
    return {
        "specs": len(shared),
        "numerator_s": num,
        "denominator_s": den,
        "ratio": num / den,
        "median_per_spec_ratio": common.median(per_spec),
        "target": TARGET_RATIO,
        "met": num / den <= TARGET_RATIO,
    }


def run(args):
    from conformance.api import BUILTIN

    impls = args.impl or sorted(BUILTIN)
    specs = ",".join(QUICK_SPECS) if args.quick else ""
    runs = args.runs or (2 if args.quick else 5)
    results = {}
    for name in impls:
        print(f"\nsave/load: {name} ({runs} runs a spec after a warm-up)", flush=True)
        extra = ["--specs", specs] if specs else []
        results[name] = common.run_worker(
            "saveload", "--impl", name, "--runs", runs, *extra
        )
    report(results)
    document = {
        "runs": runs,
        "memory": common.MEMORY_METHOD,
        "implementations": results,
        "ratio_reference_over_tf_keras": ratio(results),
    }
    return document


def report(results):
    for name, result in results.items():
        if "error" in result:
            print(f"\n{name}: {result['error']}")
            continue
        rows = [
            [spec, row.get("layers"), row.get("save_s"), row.get("load_s"),
             row.get("save_load_s"), row.get("peak_mib"), row.get("error", "")]
            for spec, row in result["specs"].items()
        ]
        common.print_table(
            f"{name}: median seconds per corpus spec, peak MiB",
            ["spec", "layers", "save s", "load s", "save+load s", "peak MiB", "error"],
            rows,
        )
    summary = []
    for name, result in results.items():
        rows = [r for r in result.get("specs", {}).values() if "error" not in r]
        total = [r["save_load_s"] for r in rows if r.get("save_load_s") is not None]
        summary.append([
            name,
            f"{len(rows)}/{len(result.get('specs', {}))}",
            sum(r["save_s"] for r in rows),
            sum(r["load_s"] for r in rows if r.get("load_s") is not None) if total else None,
            sum(total) if total else None,
            max((r["peak_mib"] for r in rows), default=None),
            result.get("process_peak_rss_mib"),
        ])
    common.print_table(
        "corpus totals (sums of per-spec medians)",
        ["implementation", "specs saved", "save s", "load s", "save+load s", "max peak MiB",
         "process peak RSS MiB"],
        summary,
    )
    found = ratio(results)
    if found:
        verdict = "met" if found["met"] else "MISSED"
        print(
            f"\nreference / tf_keras save+load on {found['specs']} specs: {found['ratio']:.2f} "
            f"(median per spec {found['median_per_spec_ratio']:.2f}); target <= "
            f"{TARGET_RATIO}: {verdict}"
        )
    print(f"memory: {common.MEMORY_METHOD}")


def main():
    parser = common.worker_parser(__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--specs", default="", help="comma-separated corpus names (all)")
    args = parser.parse_args()
    common.write_json(args.json_out, worker(args), announce=False)


if __name__ == "__main__":
    main()
