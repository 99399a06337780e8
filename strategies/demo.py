"""Draw, build and print a few random models: ``python -m strategies.demo --count 3``.

The draws are seeded (``--seed``), so the same command prints the same models.
"""

from __future__ import annotations

import argparse
import contextlib
import io


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--framework", choices=("keras", "tf_keras"), default="keras")
    parser.add_argument("--max-layers", type=int, default=8)
    args = parser.parse_args(argv)

    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported
    import numpy as np

    from .build import build_model
    from .generate import call_inputs
    from .sample import sample_examples

    for i, (spec, data) in enumerate(
        sample_examples(args.count, args.seed, max_layers=args.max_layers), start=1
    ):
        print(f"=== model {i}/{args.count} " + "=" * 60)
        print(repr(spec))
        print("--- JSON")
        print(spec.to_json(indent=1))
        model = build_model(spec, args.framework)
        print(f"--- {args.framework} summary (outputs: {', '.join(spec.output_names())})")
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            model.summary()
        print(buf.getvalue().rstrip())
        y = model(call_inputs(spec, data), training=False)
        outs = y if isinstance(y, list | tuple) else [y]
        print("--- forward pass, batch", next(iter(data.values())).shape[0])
        for name, o in zip(spec.output_names(), outs, strict=True):
            a = np.asarray(o)
            mean = a.astype("float64").mean()
            print(f"  {name}: shape {a.shape} dtype {a.dtype} mean {mean:.4g}")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
