"""The per-clause conformance report: collected from test reports, written as JSON or Markdown.

Under xdist every test report reaches the controller, which alone assembles and writes it.
"""

import json
import platform
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata

from conformance.contract import CLAUSE_IDS

# Test properties the suite's tests attach (``request.node.user_properties``).
EXAMPLES_PROPERTY = "conformance_examples"
FAILURE_PROPERTY = "conformance_failure"
# CONSUMER-* tests: {"checked": n, "unsupported_count": n, "unsupported": [{stage, message, ...}]}
CONSUMER_PROPERTY = "conformance_consumer"
# SIG-STABLE golden tests: (corpus spec name, fingerprint digest)
FINGERPRINT_PROPERTY = "conformance_fingerprint"
# LOAD-LEGACY tests: {"writer", "case", "how": "config" | "revived" | "failed"}
LEGACY_PROPERTY = "conformance_legacy"
LEGACY_OUTCOMES = ("config", "revived", "failed")
# LOAD-HOSTILE tests: {outcome: number of mutated copies loaded with it}
HOSTILE_PROPERTY = "conformance_hostile"
# A test's seconds by phase (timing.PHASES) and in all ("total"): the split per clause.
TIMING_PROPERTY = "conformance_seconds"

STATUS_ORDER = ("fail", "xpass", "xfail", "pass", "not claimed", "skipped", "not run")
DETAILS_KEPT = 20000  # characters of a failure's full output kept in the JSON report


def first_line(text, limit=300):
    """The line that says what went wrong: the first, or for TensorFlow's "in user code:"
    errors (a traceback of the traced code follows) the last."""
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[0]
    if line.endswith("in user code:") and len(lines) > 1:
        head = line[: -len("in user code:")].rstrip()  # "... ValueError:"
        name, last = head.rstrip(":").rsplit(" ", 1)[-1], lines[-1]
        if last.startswith(name + ":"):
            last = last[len(name) + 1 :].strip()
        line = f"{head} {last}"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def compact_failure(report):
    """The terminal's block for a failing clause test: the clause and the failure in one line,
    the shrunk spec in one line, the command; None when the test recorded no failure."""
    failures = [value for name, value in report.user_properties if name == FAILURE_PROPERTY]
    if not failures:
        return None
    failure = failures[-1]
    clause_id = dict(report.user_properties).get("conformance_clause", "")
    message = failure.get("message", "")
    if message.startswith(f"[{clause_id}] "):
        message = message[len(clause_id) + 3 :]
    return "\n".join(
        [
            f"[{clause_id}] {first_line(message)}",
            f"  spec: {failure.get('spec', '')}",
            f"  reproduce: {failure.get('command', '')}",
            *([f"  script: {failure['script']}"] if failure.get("script") else []),
            *([f"  script file: {failure['script_file']}"] if failure.get("script_file") else []),
            "  (Hypothesis' full output: rerun with -v, or read the JSON or JUnit report)",
        ]
    )


@dataclass
class ClauseResult:
    tests: dict = field(default_factory=dict)  # nodeid -> outcome
    examples: int = 0
    failures: list = field(default_factory=list)
    skip_reasons: set = field(default_factory=set)
    # CONSUMER-* clauses: examples converted and checked, examples the converter could not handle
    consumer: dict | None = None
    # LOAD-LEGACY: writer -> case -> how it loaded ("config", "revived", "failed")
    legacy: dict = field(default_factory=dict)
    # LOAD-HOSTILE: outcome -> mutated copies loaded
    hostile: dict = field(default_factory=dict)
    # seconds by phase summed over the clause's tests (timing.PHASES, "total")
    seconds: dict = field(default_factory=dict)

    @property
    def status(self):
        outcomes = set(self.tests.values())
        for status in ("fail", "xpass", "xfail", "pass"):
            if status in outcomes:
                return status
        if self.skip_reasons and all(r.startswith("not claimed") for r in self.skip_reasons):
            return "not claimed"
        return "skipped" if outcomes else "not run"


def _outcome(report):
    if hasattr(report, "wasxfail"):
        return "xpass" if report.passed else "xfail"
    if report.failed:
        return "fail"
    if report.skipped:
        return "skipped"
    return "pass"


class ClauseReport:
    def __init__(self):
        self.clauses = {clause_id: ClauseResult() for clause_id in CLAUSE_IDS}
        self.cross_worker = None

    def add(self, clause_id, report):
        result = self.clauses[clause_id]
        if report.when != "call" and not (report.failed or report.skipped):
            return
        outcome = _outcome(report)
        previous = result.tests.get(report.nodeid)
        if previous is None or STATUS_ORDER.index(outcome) < STATUS_ORDER.index(previous):
            result.tests[report.nodeid] = outcome
        if report.skipped and not hasattr(report, "wasxfail"):
            result.skip_reasons.add(_skip_reason(report))
        for name, value in report.user_properties:
            if name == EXAMPLES_PROPERTY and report.when == "call":
                result.examples += int(value)
            elif name == FAILURE_PROPERTY and report.failed:
                details = str(report.longrepr)[-DETAILS_KEPT:]
                result.failures.append(dict(value, test=report.nodeid, details=details))
            elif name == CONSUMER_PROPERTY and report.when == "call":
                _add_consumer(result, value)
            elif name == LEGACY_PROPERTY and report.when == "call":
                how = "failed" if report.failed else value["how"]
                result.legacy.setdefault(value["writer"], {})[value["case"]] = how
            elif name == TIMING_PROPERTY and report.when == "call":
                for phase, value_s in value.items():
                    result.seconds[phase] = result.seconds.get(phase, 0.0) + value_s
            elif name == HOSTILE_PROPERTY and report.when == "call":
                for outcome, n in value.items():
                    result.hostile[outcome] = result.hostile.get(outcome, 0) + n

    def add_cross_worker(self, problems, workers, compared=()):
        """SIG-STABLE's comparison of the workers' fingerprints: one example per corpus spec
        compared, as ``test_fingerprint_stable_across_processes`` counts without xdist."""
        self.cross_worker = {
            "workers": workers, "problems": list(problems), "compared": len(compared)
        }
        self.clauses["SIG-STABLE"].examples += len(compared)
        if problems:
            self.clauses["SIG-STABLE"].tests["<cross-worker comparison>"] = "fail"

    def has_results(self):
        return any(result.tests for result in self.clauses.values())

    def unexpected_passes(self):
        return sorted(
            nodeid
            for result in self.clauses.values()
            for nodeid, outcome in result.tests.items()
            if outcome == "xpass"
        )

    def summary_lines(self):
        counts = {}
        lines = []
        for clause_id, result in self.clauses.items():
            status = result.status
            if status == "not run":
                continue
            counts[status] = counts.get(status, 0) + 1
            line = f"  {clause_id:<24} {status:<12} {result.examples:>5} examples"
            if status in ("skipped", "not claimed") and result.skip_reasons:
                line += f" ({first_line('; '.join(sorted(result.skip_reasons)), 160)})"
            elif status == "fail" and result.failures:
                line += f" ({first_line(result.failures[-1].get('message', ''), 160)})"
            if result.consumer is not None:
                line += (
                    f" ({result.consumer['checked']} converted and checked, "
                    f"{result.consumer['unsupported_count']} unsupported by the converter)"
                )
            if result.hostile:
                line += " (mutations: " + ", ".join(
                    f"{n} {o}" for o, n in sorted(result.hostile.items())
                ) + ")"
            lines.append(line)
        total = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        return [f"clauses: {total}", *lines]

    def as_dict(self):
        document = {
            clause_id: {
                "status": result.status,
                "examples": result.examples,
                "tests": dict(sorted(result.tests.items())),
                "skip_reasons": sorted(result.skip_reasons),
                "failures": result.failures,
            }
            for clause_id, result in self.clauses.items()
        }
        for clause_id, result in self.clauses.items():
            if result.consumer is not None:
                document[clause_id]["consumer"] = result.consumer
            if result.legacy:
                document[clause_id]["legacy"] = legacy_counts(result.legacy)
            if result.hostile:
                document[clause_id]["hostile"] = dict(sorted(result.hostile.items()))
            if result.seconds:
                document[clause_id]["seconds"] = seconds_split(result.seconds)
        return document


def seconds_split(seconds):
    """``{phase: seconds}`` with the rest of the tests' time as ``"checks"`` (drawing, the
    comparisons, calling the restored functions), rounded for the report."""
    from conformance.timing import PHASES

    split = {phase: seconds.get(phase, 0.0) for phase in PHASES}
    total = seconds.get("total", 0.0)
    split["checks"] = max(0.0, total - sum(split.values()))
    split["total"] = total
    return {phase: round(value, 3) for phase, value in split.items()}


def legacy_counts(by_writer):
    """writer -> {"config": n, "revived": n, "failed": n, "failed_cases": [...]}."""
    counts = {}
    for writer, cases in sorted(by_writer.items()):
        entry = {how: sum(1 for h in cases.values() if h == how) for how in LEGACY_OUTCOMES}
        entry["failed_cases"] = sorted(c for c, h in cases.items() if h == "failed")
        counts[writer] = entry
    return counts


def legacy_markdown(document):
    """The "Legacy corpus" section: per writer, the files loaded by config, revived, failed."""
    found = [(c, r) for c, r in document["clauses"].items() if r.get("legacy")]
    if not found:
        return []
    clause_id, result = found[0]
    lines = [
        "",
        "## Legacy corpus",
        "",
        f"{clause_id}: the files each writer wrote, as the implementation's loader read them.",
        "",
        "| writer | by config | revived | failed | failed cases |",
        "|---|---|---|---|---|",
    ]
    for writer, entry in result["legacy"].items():
        lines.append(
            f"| {writer} | {entry['config']} | {entry['revived']} | {entry['failed']} | "
            f"{_cell(', '.join(entry['failed_cases']))} |"
        )
    return lines


def _add_consumer(result, value):
    if result.consumer is None:
        result.consumer = {"checked": 0, "unsupported_count": 0, "unsupported": []}
    result.consumer["checked"] += int(value.get("checked", 0))
    entries = list(value.get("unsupported", []))
    result.consumer["unsupported_count"] += int(value.get("unsupported_count", len(entries)))
    result.consumer["unsupported"].extend(entries)


def consumer_summary(consumer):
    """One line: how many examples the converter could not handle, and its messages."""
    counts = {}
    for entry in consumer["unsupported"]:
        key = f"{entry.get('stage', '')}: {entry.get('message', '')}"
        counts[key] = counts.get(key, 0) + 1
    messages = "; ".join(f"{n}× {key}" for key, n in counts.items())
    return (
        f"{consumer['checked']} converted and checked, {consumer['unsupported_count']} "
        f"unsupported by the converter" + (f" ({messages})" if messages else "")
    )


def _skip_reason(report):
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = longrepr[2]
        return reason[len("Skipped: ") :] if reason.startswith("Skipped: ") else reason
    return str(longrepr)


def _version(module, *distributions):
    """The version of ``module`` as imported, else of the first distribution installed.

    The nightly job runs tf-nightly, keras-nightly and tf-keras-nightly: other distribution
    names for the same modules.
    """
    imported = sys.modules.get(module)
    if getattr(imported, "__version__", None):
        return imported.__version__
    for distribution in distributions:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return None


def report_document(state, config):
    from conformance.plugin import drawing

    return {
        "implementation": state.impl_spec,
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(state.started)),
        "duration_s": round(time.time() - state.started, 1),
        "versions": {
            "python": platform.python_version(),
            "tensorflow": _version("tensorflow", "tensorflow", "tf-nightly"),
            "keras": _version("keras", "keras", "keras-nightly"),
            "tf_keras": _version("tf_keras", "tf-keras", "tf-keras-nightly"),
            "hypothesis": _version("hypothesis", "hypothesis"),
        },
        "hypothesis": {
            "profile": drawing.suite_profile_name(config),
            "seed": config.getoption("hypothesis_seed", default=None),
        },
        "command": " ".join(sys.argv),
        "cross_worker": state.report.cross_worker,
        "clauses": state.report.as_dict(),
    }


def summary_line(document):
    """``"3 fail, 19 pass of 22 clauses (305 examples)"``."""
    counts = {}
    for result in document["clauses"].values():
        counts[result["status"]] = counts.get(result["status"], 0) + 1
    examples = sum(result["examples"] for result in document["clauses"].values())
    parts = ", ".join(f"{counts[s]} {s}" for s in STATUS_ORDER if s in counts)
    return f"{parts} of {len(document['clauses'])} clauses ({examples} examples)"


def _clause_command(document, clause_id):
    from conformance.command import shell, suite_command

    return shell(
        suite_command(
            document["implementation"],
            clauses=clause_id,
            profile=document["hypothesis"]["profile"],
        )
    )


def _cell(text):
    return str(text).replace("|", "/").replace("\n", " ") or "—"


def markdown(document):
    versions = ", ".join(f"{k} {v}" for k, v in document["versions"].items() if v)
    when = document.get("started")
    duration = document.get("duration_s")
    timing = f"; started {when}, {duration} s" if when else ""
    lines = [
        f"# Keras SavedModel conformance: `{document['implementation']}`",
        "",
        f"{versions}; Hypothesis profile `{document['hypothesis']['profile']}`{timing}.",
        "",
        f"**{summary_line(document)}**",
        "",
        "| clause | status | examples | message | spec | reproduce |",
        "|---|---|---|---|---|---|",
    ]
    for clause_id, result in document["clauses"].items():
        message, spec, script = "", "", None
        command = _clause_command(document, clause_id)
        if result["failures"]:
            last = result["failures"][-1]
            message = first_line(last.get("message", ""))
            spec = f"`{last.get('spec', '')}`"
            command = last.get("command", "") or command
            script = last.get("reproducer")
        elif result["status"] in ("not claimed", "skipped") and result["skip_reasons"]:
            message = "; ".join(result["skip_reasons"])
        elif result.get("consumer"):
            message = consumer_summary(result["consumer"])
        elif result["status"] == "xfail":
            message = "expected failure (see the xfails file)"
        reproduce = f"`{command}`" + (f"; script `{script}`" if script else "")
        lines.append(
            f"| {clause_id} | {result['status']} | {result['examples']} | {_cell(message)} | "
            f"{_cell(spec)} | {_cell(reproduce)} |"
        )
    lines += legacy_markdown(document)
    return "\n".join(lines) + "\n"


def write_reproducers(document, path):
    """The failures' scripts beside the report (``conformance.reproducers.beside``); a
    problem there is written into the report, and the report is still written."""
    from conformance.reproducers.beside import write_beside

    try:
        write_beside(document, path)
    except Exception as exc:  # noqa: BLE001  (the scripts are a convenience, the report is not)
        document["reproducers_error"] = f"{type(exc).__name__}: {first_line(exc)}"


def write_report(path, state, config):
    document = report_document(state, config)
    write_reproducers(document, path)
    text = markdown(document) if str(path).endswith(".md") else json.dumps(document, indent=2)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
