"""The same spec gives identical weights, layer names and output names in two processes
started with different PYTHONHASHSEED (one of them builds other models first)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from hypothesis import given, settings

from strategies import model_specs

CHILD = textwrap.dedent(
    """
    import hashlib, json, sys, warnings
    from conformance.environment import quiet_tensorflow
    quiet_tensorflow()
    warnings.simplefilter("ignore")
    from strategies import ModelSpec, build_model
    from strategies.build import weight_arrays

    specs = [ModelSpec.from_json(line) for line in open(sys.argv[1]) if line.strip()]
    if sys.argv[2] == "warmup":  # build other models first: names must not depend on it
        for spec in reversed(specs):
            build_model(spec, "keras")
            build_model(spec, "tf_keras")
    out = []
    for spec in specs:
        row = {}
        for fw in ("keras", "tf_keras"):
            model = build_model(spec, fw)
            weights = weight_arrays(model)
            h = hashlib.sha256()
            for key in sorted(weights):
                h.update(key.encode())
                h.update(weights[key].astype("float64").tobytes())
            row[fw] = h.hexdigest()
            row[fw + "_names"] = sorted(layer.name for layer in model.layers)
        out.append(row)
    print("RESULT " + json.dumps(out))
    """
)


def _draw_specs(n: int) -> list:
    specs = []

    @settings(max_examples=n, derandomize=True, deadline=None, database=None)
    @given(model_specs())
    def collect(spec):
        specs.append(spec)

    collect()
    return specs[:n]


def test_same_weights_in_two_processes_with_different_hash_seeds(tmp_path):
    specs = _draw_specs(6)
    path = tmp_path / "specs.jsonl"
    path.write_text("\n".join(s.to_json() for s in specs) + "\n")
    procs = []
    for hash_seed, mode in (("1", "plain"), ("2024", "warmup")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", CHILD, str(path), mode],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
        results.append(json.loads(line[len("RESULT ") :]))
    a, b = results
    assert len(a) == len(b) == len(specs)
    for spec, ra, rb in zip(specs, a, b, strict=True):
        assert ra == rb, repr(spec)
        # the weights are the same numbers in Keras 3 and in tf_keras too
        assert ra["keras"] == ra["tf_keras"], repr(spec)
