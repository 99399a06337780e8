"""How save and load time grow with model size: chains of layers and nesting depth.

Chains alternate Dense and BatchNormalization (a layer that takes ``training``, so savers
trace it in both modes) in a Sequential model. A model of nesting depth d is a Dense, a
sub-model of depth d-1 and a Dense; depth 0 is Dense, BatchNormalization, Dense. Each size
is measured as in ``bench.saveload`` (a warm-up, then the median of fresh-model runs).

The target: the reference's save+load time(80 layers) / time(10 layers) at most 10.
"""

import shutil
import tempfile

from bench import common
from bench.saveload import measure_spec

CHAIN_LENGTHS = (10, 20, 40, 80)
QUICK_CHAIN_LENGTHS = (10, 20, 40)
DEPTHS = (1, 2, 4)
TARGET_GROWTH = 10
UNITS = 8


def _dense(index, prefix, source):
    from strategies.spec import LayerSpec, freeze_params

    return LayerSpec(
        id=f"n{index}",
        kind="Dense",
        inputs=(source,),
        params=freeze_params({"units": UNITS, "activation": "relu", "use_bias": True}),
        out_shape=(UNITS,),
        layer_name=f"{prefix}n{index}_dense",
    )


def _batch_norm(index, prefix, source):
    from strategies.spec import LayerSpec, freeze_params

    params = {"momentum": 0.99, "epsilon": 1e-3, "center": True, "scale": True}
    return LayerSpec(
        id=f"n{index}",
        kind="BatchNormalization",
        inputs=(source,),
        params=freeze_params(params),
        out_shape=(UNITS,),
        layer_name=f"{prefix}n{index}_batchnormalization",
    )


def chain_spec(layers):
    from strategies.spec import InputSpec, ModelSpec

    nodes, source = [], "in_0"
    for i in range(layers):
        nodes.append((_dense if i % 2 == 0 else _batch_norm)(i, "", source))
        source = f"n{i}"
    return ModelSpec(
        inputs=(InputSpec("in_0", (UNITS,)),),
        nodes=tuple(nodes),
        outputs=(source,),
        topology="sequential",
    )


def nested_spec(depth, prefix="", name="model"):
    from strategies.spec import InputSpec, LayerSpec, ModelSpec

    input_name = f"{prefix}in_0"
    first = _dense(0, prefix, input_name)
    if depth == 0:
        middle = _batch_norm(1, prefix, "n0")
    else:
        inner_name = f"{prefix}n1_sub"
        inner = nested_spec(depth - 1, prefix=f"{inner_name}_", name=inner_name)
        middle = LayerSpec(
            id="n1",
            kind="Submodel",
            inputs=("n0",),
            out_shape=(UNITS,),
            submodel=inner,
            layer_name=inner_name,
        )
    return ModelSpec(
        inputs=(InputSpec(input_name, (UNITS,)),),
        nodes=(first, middle, _dense(2, prefix, "n1")),
        outputs=("n2",),
        topology="nested" if depth else "functional",
        name=name,
    )


def worker(args):
    common.quiet_tensorflow()
    from conformance.api import resolve_implementation

    impl = resolve_implementation(args.impl)
    cases = [(f"chain-{n}", chain_spec(n)) for n in map(int, args.lengths.split(","))]
    cases += [(f"depth-{d}", nested_spec(d)) for d in map(int, args.depths.split(","))]
    root = tempfile.mkdtemp(prefix=f"bench-scaling-{impl.name}-")
    try:
        out = {}
        for label, spec in cases:
            out[label] = measure_spec(impl, spec, args.runs, root)
            print(f"  {impl.name} {label}: {out[label]}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"implementation": impl.name, "cases": out}


def growth(cases, key):
    """time(longest chain) / time(shortest chain) for ``key`` (save_s or save_load_s)."""
    chains = sorted(
        (int(label.split("-")[1]), row[key])
        for label, row in cases.items()
        if label.startswith("chain-") and row.get(key)
    )
    if len(chains) < 2:
        return None
    (short, t_short), (long, t_long) = chains[0], chains[-1]
    return {"from": short, "to": long, "ratio": t_long / t_short}


def run(args):
    lengths = QUICK_CHAIN_LENGTHS if args.quick else CHAIN_LENGTHS
    runs = args.runs or (2 if args.quick else 5)
    impls = args.impl or ["reference", "tf_keras"]
    results = {}
    for name in impls:
        print(f"\nscaling: {name} ({runs} runs a size after a warm-up)", flush=True)
        results[name] = common.run_worker(
            "scaling", "--impl", name, "--runs", runs,
            "--lengths", ",".join(map(str, lengths)), "--depths", ",".join(map(str, DEPTHS)),
        )
    summary = report(results)
    return {"runs": runs, "memory": common.MEMORY_METHOD, "implementations": results,
            "growth": summary, "target": TARGET_GROWTH}


def report(results):
    summary = {}
    for name, result in results.items():
        if "error" in result:
            print(f"\n{name}: {result['error']}")
            continue
        rows = []
        for label, row in result["cases"].items():
            layers = row.get("layers")
            per_layer = row["save_load_s"] / layers if row.get("save_load_s") else None
            rows.append([label, layers, row.get("save_s"), row.get("load_s"),
                         row.get("save_load_s"), per_layer, row.get("peak_mib"),
                         row.get("error", "")])
        common.print_table(
            f"{name}: scaling (median seconds)",
            ["case", "layers", "save s", "load s", "save+load s", "s/layer", "peak MiB",
             "error"],
            rows,
        )
        summary[name] = {
            "save": growth(result["cases"], "save_s"),
            "save_load": growth(result["cases"], "save_load_s"),
        }
        for key, found in summary[name].items():
            if found:
                verdict = "met" if found["ratio"] <= TARGET_GROWTH else "MISSED"
                target = f"; target <= {TARGET_GROWTH}: {verdict}" if name == "reference" else ""
                print(f"{name} {key} time({found['to']})/time({found['from']}) = "
                      f"{found['ratio']:.2f}{target}")
    return summary


def main():
    parser = common.worker_parser(__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lengths", default=",".join(map(str, CHAIN_LENGTHS)))
    parser.add_argument("--depths", default=",".join(map(str, DEPTHS)))
    args = parser.parse_args()
    common.write_json(args.json_out, worker(args), announce=False)


if __name__ == "__main__":
    main()
