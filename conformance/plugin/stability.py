"""SIG-STABLE across xdist workers: every worker fingerprints every corpus spec, the
controller compares them.

Without xdist (or with one worker) ``test_fingerprint_stable_across_processes`` compares each
corpus spec between two subprocesses, one example per spec; with two workers or more it skips,
and the controller's comparison stands in for it: one example per spec compared
(``compared_specs``), so that a run counts the same examples with ``-n 0`` and ``-n 2``.
"""

from conformance import corpus


def worker_fingerprints(implementation, selected_clauses, recorded):
    """This worker's corpus fingerprints: those its tests recorded, the rest computed now.

    Every worker fingerprints every corpus spec, so each is compared across all workers.
    Empty when SIG-STABLE is not run or not claimed.
    """
    claims = implementation.claims
    if (selected_clauses is not None and "SIG-STABLE" not in selected_clauses) or (
        claims is not None and "SIG-STABLE" not in claims
    ):
        return {}
    out = {}
    for name, spec in corpus.supported_specs(implementation):
        if name not in recorded:
            try:
                recorded[name] = corpus.fingerprint_spec(implementation, spec)
            except Exception as exc:  # reported as a disagreement on the controller
                recorded[name] = f"error: {type(exc).__name__}: {exc}"
        out[name] = recorded[name]
    return out


def compare_workers(per_worker):
    """Lines describing every corpus spec whose fingerprint differs between workers."""
    problems = []
    names = sorted({name for prints in per_worker.values() for name in prints})
    for name in names:
        seen = {worker: prints.get(name) for worker, prints in sorted(per_worker.items())}
        values = {value for value in seen.values() if value is not None}
        if len(values) > 1:
            detail = ", ".join(f"{w}={(v or '')[:16]}" for w, v in seen.items())
            problems.append(f"{name}: workers disagree ({detail})")
        elif sum(v is not None for v in seen.values()) < 2 and len(per_worker) > 1:
            problems.append(f"{name}: fingerprinted on fewer than two workers")
    return problems


def compared_specs(per_worker):
    """The corpus specs the controller compared across workers: none with fewer than two
    workers (nothing to compare; the worker ran the two-subprocess test instead)."""
    if len(per_worker) < 2:
        return []
    return sorted({name for prints in per_worker.values() for name in prints})


def across_processes_on_the_controller(config):
    """Whether this session's cross-process check is the controller's comparison of workers
    (an xdist worker of two or more), not ``test_fingerprint_stable_across_processes``."""
    workerinput = getattr(config, "workerinput", None)
    return workerinput is not None and int(workerinput.get("workercount", 2)) > 1
