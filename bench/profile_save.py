"""Where one save spends its time: cProfile of a chain save, top functions by cumulative time.

Runs in a worker process: a warm-up save of the same spec first (TensorFlow's one-time start),
then one profiled save of a freshly built model. The full profile is written beside the JSON
(``profile-save-<impl>-<layers>.pstats``) for ``python -m pstats`` or snakeviz.
"""

import cProfile
import io
import os
import pstats
import shutil
import tempfile

from bench import common
from bench.scaling import chain_spec

TOP = 30


def worker(args):
    common.quiet_tensorflow()
    import strategies
    from conformance.api import resolve_implementation

    impl = resolve_implementation(args.impl)
    spec = chain_spec(args.layers)
    root = tempfile.mkdtemp(prefix="bench-profile-")
    try:
        impl.save(strategies.build_model(spec, framework=impl.framework), f"{root}/warm-up")
        model = strategies.build_model(spec, framework=impl.framework)
        profiler = cProfile.Profile()
        profiler.enable()
        impl.save(model, f"{root}/profiled")
        profiler.disable()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    stats = pstats.Stats(profiler)
    pstats_path = os.path.join(args.out, f"profile-save-{impl.name}-{args.layers}.pstats")
    stats.dump_stats(pstats_path)
    total = stats.total_tt
    rows = []
    for (filename, line, function), (_, calls, own, cumulative, _) in stats.stats.items():
        rows.append({"function": f"{_short(filename)}:{line}({function})", "calls": calls,
                     "own_s": own, "cumulative_s": cumulative})
    rows.sort(key=lambda r: r["cumulative_s"], reverse=True)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(15)
    return {"implementation": impl.name, "layers": args.layers, "total_s": total,
            "top_cumulative": rows[:TOP], "pstats": pstats_path,
            "top_own_text": text.getvalue()}


def _short(filename):
    for marker in ("site-packages/", "/work/main/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def run(args):
    impl = (args.impl or ["reference"])[0]
    layers = 20 if args.quick else 40
    print(f"\nprofile: one {impl} save of a {layers}-layer chain (cProfile)", flush=True)
    result = common.run_worker("profile_save", "--impl", impl, "--layers", layers,
                               "--out", os.path.abspath(args.out))
    if "error" in result:
        print(result["error"])
        return result
    common.print_table(
        f"{impl} save, {layers} layers: {result['total_s']:.2f} s under cProfile, "
        "top functions by cumulative time",
        ["function", "calls", "own s", "cumulative s"],
        [[r["function"][-90:], r["calls"], r["own_s"], r["cumulative_s"]]
         for r in result["top_cumulative"]],
    )
    return result


def main():
    parser = common.worker_parser(__doc__)
    parser.add_argument("--layers", type=int, default=40)
    parser.add_argument("--out", default=str(common.DEFAULT_OUT))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    common.write_json(args.json_out, worker(args), announce=False)


if __name__ == "__main__":
    main()
