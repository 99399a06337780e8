"""A first run on a broken implementation against the reference, side by side.

The naive adapter of the README's walk-through saves with plain ``tf.saved_model.save``: a
SavedModel without ``keras_api``, which fails almost every clause. Both run as a user runs
them (``pytest --pyargs conformance``, from an empty directory holding the adapter, the same
profile and workers), one after the other in this process, and the ratio of their wall
times is the figure. Target: the broken implementation's first run takes at most 3x the
reference's.
"""

import os
import tempfile
from pathlib import Path

from bench import common

TARGET_RATIO = 3.0
QUICK_CLAUSES = "FORMAT-KERAS-API,CALL-INFERENCE,SIG-SERVING,LOAD-REVIVE"

NAIVE_SAVER = """
import tensorflow as tf

from conformance import Implementation


class NaiveSaver(Implementation):
    name = "naive"

    def save(self, model, path, *, overwrite=True, include_optimizer=True, signatures=None):
        tf.saved_model.save(model, path)

    def load(self, path):
        return tf.saved_model.load(path)
"""


def run_one(impl, clauses, profile, workers, out_dir):
    from conformance.command import suite_command

    label = impl.partition(":")[0]
    log = Path(out_dir) / f"first-run-{label}.log"
    with tempfile.TemporaryDirectory(prefix="bench-first-run-") as cwd:
        (Path(cwd) / "naive_saver.py").write_text(NAIVE_SAVER)
        command = suite_command(
            impl, clauses=clauses, profile=profile, workers=workers, python=True, quiet=True,
            report=str(Path(cwd) / "report.json"),
        )  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CI")}
        returncode, wall = common.run_logged(command, cwd, env, log)
    lines = len(log.read_text(errors="replace").splitlines())
    return {"impl": impl, "wall_s": wall, "exit_code": returncode, "output_lines": lines}


def run(args):
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    clauses = QUICK_CLAUSES if args.quick else args.clauses
    profile = args.profile or "dev"
    workers = args.workers.split(",")[-1]
    print(f"\nfirst run: naive adapter vs reference, profile {profile}, -n {workers}, "
          f"clauses {clauses or 'all'}", flush=True)
    runs = [run_one(impl, clauses, profile, workers, out_dir)
            for impl in ("naive_saver:NaiveSaver", "reference")]
    common.print_table(
        "first run", ["implementation", "wall s", "exit", "output lines"],
        [[r["impl"], r["wall_s"], r["exit_code"], r["output_lines"]] for r in runs],
    )
    ratio = runs[0]["wall_s"] / runs[1]["wall_s"]
    met = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(f"naive / reference wall time: {ratio:.2f}x (target <= {TARGET_RATIO}: {met})")
    return {"runs": runs, "profile": profile, "workers": workers, "clauses": clauses,
            "ratio_naive_over_reference": ratio, "target": TARGET_RATIO}
