"""What every benchmark shares: timing, peak memory, tables, JSON, worker subprocesses.

Each measurement that imports TensorFlow runs in a worker subprocess (``python -m
bench.<module> --worker ...``), one per implementation: the implementations do not share a
process's traced functions or memory, and a crash in one leaves the others' figures.
"""

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "out"


def suite_command(workers, report, impl, clauses, profile):
    """The suite's command line for a bench run (``-p no:randomly``: runs compare)."""
    from conformance.command import suite_command as command

    return command(
        impl,
        clauses=clauses,
        profile=profile,
        report=report,
        workers=workers,
        python=True,
        quiet=True,
        extra=["-p", "no:randomly"],
    )


def suite_env():
    """The environment of a suite run: CI's settings, and this checkout's suite first on the
    path, whatever an installed copy points at."""
    path = os.environ.get("PYTHONPATH")
    return dict(
        os.environ, CI="true", PYTHONPATH=os.pathsep.join([str(ROOT), *([path] if path else [])])
    )


def run_logged(command, cwd, env, log, label=""):
    """Run ``command`` in ``cwd``, its output into the file ``log``; (exit code, seconds)."""
    print(f"  {label}$ {' '.join(command[2:])}  (log: {log})", flush=True)
    start = time.perf_counter()
    with open(log, "w") as stream:
        proc = subprocess.run(command, cwd=cwd, env=env, stdout=stream, stderr=subprocess.STDOUT)
    return proc.returncode, time.perf_counter() - start


def quiet_tensorflow():
    from conformance.environment import quiet_tensorflow as quiet

    quiet()


def median(values):
    return statistics.median(values) if values else None


def timed(function, *args, **kwargs):
    """``(seconds, result)`` of one call."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


# --- peak memory --------------------------------------------------------------------------
# TensorFlow allocates most of its memory in C++, which tracemalloc cannot see. On Linux the
# kernel's peak RSS (VmHWM) can be reset by writing 5 to /proc/self/clear_refs, so a call's
# peak is measured as VmHWM after it minus VmRSS before it: every byte the process touched.
# Elsewhere the Python heap's peak (tracemalloc) is all there is, and the output says so.


def _status_kib(key):
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.MULTILINE)[1])


def _can_reset_peak_rss():
    try:
        Path("/proc/self/clear_refs").write_text("5")
        _status_kib("VmHWM")
        return True
    except (OSError, TypeError):
        return False


MEMORY_METHOD = (
    "peak RSS above the RSS before the call (Linux VmHWM, reset through /proc/self/clear_refs)"
    if _can_reset_peak_rss()
    else "peak Python heap during the call (tracemalloc; misses TensorFlow's C++ allocations)"
)


@contextlib.contextmanager
def peak_memory():
    """Yields a dict whose ``"mib"`` is the call's peak memory once the block ends."""
    out = {}
    if MEMORY_METHOD.startswith("peak RSS"):
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kib("VmHWM")  # the reset sets it to the current RSS
        yield out
        # The kernel updates the high-water mark lazily: a call that only freed memory can
        # read a few KiB below ``before``. That is no growth.
        out["mib"] = max(0, _status_kib("VmHWM") - before) / 1024
    else:
        tracemalloc.start()
        try:
            yield out
            out["mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()


# --- output -------------------------------------------------------------------------------


def fmt(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_table(title, headers, rows):
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n## {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
    sys.stdout.flush()


def write_json(path, document, announce=True):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    if announce:
        print(f"\nwrote {path}")


def process_peak_rss_mib():
    """This process's peak RSS so far (ru_maxrss), TensorFlow's import included."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def environment():
    from importlib import metadata

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "git": _git_state(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        **{name: version(name) for name in ("tensorflow", "keras", "tf-keras", "hypothesis")},
    }


def _git_state():
    """The commit measured, and whether the implementations' sources differ from it."""
    def git(*args):
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else None

    dirty = git("status", "--porcelain", "--", "reference_impl", "conformance", "strategies")
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_changes": bool(dirty)}


# --- workers ------------------------------------------------------------------------------


def worker_parser(doc):
    """The argument parser of a benchmark's worker process (started by ``run_worker``)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json-out", help=argparse.SUPPRESS)
    parser.add_argument("--impl", required=True)
    return parser


def run_worker(module, *args, timeout=3600):
    """Run ``python -m bench.<module> --worker ARGS``; return the JSON it wrote."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, "-m", f"bench.{module}", "--worker", "--json-out", str(out)]
        proc = subprocess.run([*command, *map(str, args)], cwd=ROOT, timeout=timeout)
        if proc.returncode != 0 or not out.exists():
            return {"error": f"worker {' '.join(command[2:])} exited {proc.returncode}"}
        return json.loads(out.read_text())
