"""``python -m conformance history``: the suite on each release's own saver and loader.

For each TensorFlow version asked for, the version's cached environment (the one the legacy
corpus' writers use, ``conformance.tools.legacy_corpus``) runs the out-of-process worker with
the ``legacy_keras`` built-in: ``tf.keras`` up to 2.15, ``tf_keras`` from 2.16. The suite runs
here, in a subprocess per version (``pytest --pyargs conformance
--conformance-impl=python:ENV/bin/python:legacy_keras``), with the chosen profile and no
expectations file, so every cell is what that release does. The reports are kept as
``<reports-dir>/tf-<version>.json``; ``docs/history.md`` and ``docs/history.html`` are rendered
from them alone (``render_markdown``, ``render_html``), never written by hand.

A fleet splits the versions with ``--shard I/N`` (``$CONFORMANCE_HISTORY_SHARD``) over one
shared reports directory; each shard renders the page from the reports there so far, and
``--render-only`` renders it again from all of them.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from conformance.command import run_for_report
from conformance.tools import legacy_corpus

DEFAULT_MD = "docs/history.md"
DEFAULT_HTML = "docs/history.html"
DEFAULT_REPORTS = ".conformance-history"
TARGET = "legacy_keras"
# What the 2.21 column is checked against: the tf_keras adapter's expectations file, written
# for tf_keras 2.21 (its header says so).
EXPECTATIONS_IMPL = "tf_keras"
EXPECTATIONS_VERSION = "2.21"
SPEC_PREVIEW = 120
STATUSES = ("pass", "fail", "xpass", "xfail", "not claimed", "skipped", "not run", "error")


UsageError = legacy_corpus.UsageError  # a bad argument of the command (exit status 2)


def parse_versions(text):
    """The history's versions are the writers' (no nightly), oldest first."""
    return sorted(legacy_corpus.parse_versions(text, known=tuple(legacy_corpus.VERSIONS)),
                  key=version_key)


def parse_shard(text):
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise UsageError(f"--shard: expected I/N with 1 <= I <= N, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def parse_pythons(items):
    """``--python VERSION=PATH`` (repeatable): use that interpreter instead of the cached
    environment (a stub environment in tests, a fleet machine's own installs)."""
    out = {}
    for item in items or ():
        version, sep, path = item.partition("=")
        if not sep or not path:
            raise UsageError(f"--python: expected VERSION=PATH, got {item!r}")
        if version not in legacy_corpus.VERSIONS:
            raise UsageError(f"--python: unknown TensorFlow version {version!r}")
        if not os.access(path, os.X_OK):
            raise UsageError(f"--python: {path} is not an executable")
        out[version] = path
    return out


def version_key(version):
    return tuple(int(part) for part in version.split("."))


def shard_versions(versions, shard):
    index, count = shard
    return versions[index - 1::count]


def report_path(reports_dir, version):
    return Path(reports_dir) / f"tf-{version}.json"


# --- running -------------------------------------------------------------------------------


def suite_command(python, report, profile, workers, clauses=None):
    from conformance.command import suite_command as command

    return command(
        f"python:{python}:{TARGET}",
        report=str(report),
        profile=profile,
        workers=workers,
        clauses=clauses,
        python=True,
        quiet=True,
    )


_VERSIONS_SCRIPT = """
import json, platform
from importlib import metadata
out = {"python": platform.python_version()}
for key, names in (("tensorflow", ("tensorflow", "tf-nightly")), ("keras", ("keras",)),
                   ("tf_keras", ("tf-keras", "tf-keras-nightly"))):
    for name in names:
        try:
            out[key] = metadata.version(name)
            break
        except metadata.PackageNotFoundError:
            out[key] = None
print(json.dumps(out))
"""


def environment_versions(python):
    """The environment's python, tensorflow, keras and tf_keras versions, read from its
    package metadata (no TensorFlow import)."""
    proc = subprocess.run([str(python), "-c", _VERSIONS_SCRIPT], capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:
        return {}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_version(version, python, reports_dir, *, profile, workers, clauses=None, timeout=None):
    """Run the suite on one version; its report document (an error document when pytest
    wrote none), with ``tf_version`` and ``seconds`` added, written to the reports dir."""
    report = report_path(reports_dir, version)
    partial = report.with_suffix(".json.partial")
    log_path = Path(reports_dir) / f"tf-{version}.log"
    document = run_for_report(
        suite_command(python, partial, profile, workers, clauses), partial, log_path,
        timeout=timeout, prefix="conformance-history-",
    )  # fmt: skip
    partial.unlink(missing_ok=True)
    document["tf_version"] = version
    document["worker_versions"] = environment_versions(python)
    document["log"] = str(log_path)
    # Written whole, then renamed: a killed run leaves the previous report, not half of one.
    tmp = report.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=1), encoding="utf-8")
    os.replace(tmp, report)
    return document


def load_reports(reports_dir):
    """``{version: document}`` of every ``tf-<version>.json`` in the directory, oldest first."""
    out = {}
    for path in Path(reports_dir).glob("tf-*.json"):
        version = path.stem[len("tf-"):]
        if version in legacy_corpus.VERSIONS:
            out[version] = json.loads(path.read_text(encoding="utf-8"))
    return dict(sorted(out.items(), key=lambda kv: version_key(kv[0])))


# --- one page's data -----------------------------------------------------------------------


def _clause_ids(reports):
    from conformance.contract import CLAUSE_IDS

    seen = [c for c in CLAUSE_IDS if any(c in d.get("clauses", {}) for d in reports.values())]
    for document in reports.values():
        seen += [c for c in document.get("clauses", {}) if c not in seen]
    return seen


def _expected(document):
    """``{clause id: reason}``: the tf_keras expectations entries matching this run's tests."""
    from conformance.tools.matrix import xfail_reasons

    return xfail_reasons(EXPECTATIONS_IMPL, document)


def cells(reports):
    """``{clause id: {version: cell}}``; a cell is a dict with ``status`` and what the page
    shows of it (``examples``, ``message``, ``spec``, ``command``, ``reason``,
    ``expected``)."""
    table = {}
    for clause_id in _clause_ids(reports):
        row = table.setdefault(clause_id, {})
        for version, document in reports.items():
            if "error" in document:
                row[version] = {"status": "error", "message": document["error"]}
                continue
            result = document.get("clauses", {}).get(clause_id)
            if result is None:
                row[version] = {"status": "not run"}
                continue
            cell = {"status": result["status"], "examples": result.get("examples", 0)}
            if result["status"] == "fail" and result.get("failures"):
                failure = result["failures"][-1]
                cell.update(
                    message=" ".join(str(failure.get("message", "")).split())[:800],
                    spec=failure.get("spec", ""),
                    command=failure.get("command", ""),
                )
            elif result["status"] in ("not claimed", "skipped"):
                cell["reason"] = "; ".join(result.get("skip_reasons", []))
            row[version] = cell
    expected_version = EXPECTATIONS_VERSION if EXPECTATIONS_VERSION in reports else None
    if expected_version and "error" not in reports[expected_version]:
        for clause_id, reason in _expected(reports[expected_version]).items():
            if clause_id in table:
                table[clause_id][expected_version]["expected"] = reason
    return table


def changes(table, versions):
    """``[(clause id, older, newer, old status, new status)]`` between neighbouring versions
    whose cells both ran (pass or fail)."""
    out = []
    for clause_id, row in table.items():
        for older, newer in zip(versions, versions[1:]):
            a, b = row[older]["status"], row[newer]["status"]
            if a != b and {a, b} <= {"pass", "fail"}:
                out.append((clause_id, older, newer, a, b))
    return out


def counts(table, version):
    out = {}
    for row in table.values():
        status = row[version]["status"]
        out[status] = out.get(status, 0) + 1
    return out


def _versions_line(document):
    worker = document.get("worker_versions") or {}
    return ", ".join(f"{k} {v}" for k, v in worker.items() if v)


def _short(text, limit):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


def _md(text):
    return " ".join(str(text).split()).replace("|", "\\|")


def _cell_md(cell):
    status = cell["status"]
    if status == "pass":
        text = f"pass ({cell['examples']} ex.)"
    elif status == "fail":
        text = f"**fail**: `{_md(_short(cell.get('spec', ''), SPEC_PREVIEW))}`" if cell.get(
            "spec") else "**fail**"
    elif status in ("not claimed", "skipped"):
        text = status
    elif status == "error":
        text = "**error**"
    else:
        text = status
    if cell.get("expected"):
        text += " · in tf_keras.txt"
    return text


def header_lines(reports, command):
    profile = {d.get("hypothesis", {}).get("profile") for d in reports.values()} - {None}
    return [
        "<!-- Generated by `python -m conformance history`; do not edit by hand. -->",
        "",
        "# The suite across TensorFlow releases",
        "",
        "Each column is one release's own Keras SavedModel saver and loader — `tf.keras` of "
        "TensorFlow 2.12–2.15 (Keras 2), the `tf_keras` package from 2.16 — run in that "
        "release's own virtual environment through the out-of-process worker "
        "(`--conformance-impl=python:ENV/bin/python:legacy_keras`, docs/out-of-process.md), "
        "with no expectations file: every cell is what that release does. "
        f"Profile: {', '.join(sorted(profile)) or 'unknown'}. Made by `{command}`.",
        "",
        f"The {EXPECTATIONS_VERSION} column also marks the clauses that the tf_keras "
        "adapter's expectations file (`conformance/expectations/tf_keras.txt`, written for "
        f"tf_keras {EXPECTATIONS_VERSION} in this interpreter) lists, with its reason.",
        "",
    ]


def render_markdown(reports, *, command="python -m conformance history"):
    versions = list(reports)
    table = cells(reports)
    lines = header_lines(reports, command)
    lines += ["| version | saver and loader | versions | pass | fail | not claimed | time |",
              "|---|---|---|---|---|---|---|"]
    for version, document in reports.items():
        c = counts(table, version)
        library = "tf.keras" if version_key(version) < (2, 16) else "tf_keras"
        lines.append(
            f"| {version} | {library} | {_md(_versions_line(document)) or '—'} | "
            f"{c.get('pass', 0)} | {c.get('fail', 0)} | {c.get('not claimed', 0)} | "
            f"{document.get('seconds', '—')} s |"
        )
    lines += ["", "## Clauses × versions", "",
              "| clause | " + " | ".join(versions) + " |",
              "|---|" + "---|" * len(versions)]
    for clause_id, row in table.items():
        lines.append(f"| {clause_id} | " + " | ".join(_cell_md(row[v]) for v in versions)
                     + " |")
    moved = changes(table, versions)
    lines += ["", "## What changed between neighbouring releases", ""]
    if moved:
        for clause_id, older, newer, a, b in moved:
            lines.append(f"- {clause_id}: {older} {a} → {newer} {b}")
    else:
        lines.append("No clause changed between neighbouring releases that both ran it.")
    failures = [(c, v, row[v]) for c, row in table.items() for v in versions
                if row[v]["status"] in ("fail", "error")]
    if failures:
        lines += ["", "## Failures", ""]
        for clause_id, version, cell in failures:
            lines.append(f"- **{version} · {clause_id}**: {_md(cell.get('message', ''))}")
            if cell.get("spec"):
                lines.append(f"  - spec: `{_md(cell['spec'])}`")
            if cell.get("command"):
                lines.append(f"  - reproduce: `{_md(cell['command'])}`")
    expected = [(c, row[EXPECTATIONS_VERSION]) for c, row in table.items()
                if EXPECTATIONS_VERSION in row and row[EXPECTATIONS_VERSION].get("expected")]
    if expected:
        lines += ["", f"## tf_keras {EXPECTATIONS_VERSION}: the expectations file as it stands",
                  ""]
        for clause_id, cell in expected:
            lines.append(f"- {clause_id} ({cell['status']} here): {_md(cell['expected'])}")
    return "\n".join(lines) + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.5em; vertical-align: top; }
th { background: #eee; position: sticky; top: 0; }
td.pass { background: #c8e6c9; }
td.fail, td.error, td.xpass { background: #ffcdd2; }
td.xfail { background: #ffe0b2; }
td.not-claimed, td.skipped, td.not-run { background: #eceff1; color: #555; }
td.expected { outline: 2px dashed #e65100; outline-offset: -3px; }
details pre { white-space: pre-wrap; max-width: 40em; font-size: 0.9em; }
"""


def _cell_html(version, cell):
    status = cell["status"]
    classes = [status.replace(" ", "-")] + (["expected"] if cell.get("expected") else [])
    hover = [status]
    body = html.escape(status)
    if status == "pass":
        body = f"pass ({cell['examples']})"
    detail = []
    if cell.get("message"):
        hover.append(cell["message"])
        detail.append(f"message: {cell['message']}")
    if cell.get("spec"):
        hover.append(f"spec: {_short(cell['spec'], 600)}")
        detail.append(f"spec: {cell['spec']}")
    if cell.get("command"):
        detail.append(f"reproduce: {cell['command']}")
    if cell.get("reason"):
        hover.append(cell["reason"])
        detail.append(cell["reason"])
    if cell.get("expected"):
        hover.append(f"tf_keras.txt: {cell['expected']}")
        detail.append(f"in conformance/expectations/tf_keras.txt: {cell['expected']}")
    if detail:
        body = (f"<details><summary>{html.escape(body)}</summary><pre>"
                + html.escape("\n\n".join(detail)) + "</pre></details>")
    return (f'<td class="{" ".join(classes)}" data-version="{html.escape(version)}" '
            f'data-status="{html.escape(status)}" title="{html.escape(" | ".join(hover))}">'
            f"{body}</td>")


def render_html(reports, *, command="python -m conformance history"):
    """One self-contained page (inline CSS, no script): readable from the file system."""
    versions = list(reports)
    table = cells(reports)
    intro = [line for line in header_lines(reports, command)[2:] if line]
    out = [
        "<!DOCTYPE html>",
        "<!-- Generated by `python -m conformance history`; do not edit by hand. -->",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Keras SavedModel conformance across TensorFlow releases</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(intro[0].lstrip('# '))}</h1>",
        *(f"<p>{html.escape(p)}</p>" for p in intro[1:]),
        "<p>Click a cell for its failure message, minimal spec and reproduce command; hover "
        "for a summary. Green: pass; red: fail or error; grey: not claimed, skipped or not "
        "run; a dashed outline: listed in tf_keras.txt.</p>",
        '<table id="history"><thead><tr><th>clause</th>'
        + "".join(f"<th>{html.escape(v)}</th>" for v in versions)
        + "</tr></thead><tbody>",
    ]
    for clause_id, row in table.items():
        out.append(f'<tr data-clause="{html.escape(clause_id)}"><th>{html.escape(clause_id)}'
                   "</th>" + "".join(_cell_html(v, row[v]) for v in versions) + "</tr>")
    out.append("</tbody></table>")
    moved = changes(table, versions)
    out.append("<h2>What changed between neighbouring releases</h2><ul>")
    out += [f"<li>{html.escape(f'{c}: {o} {a} → {n} {b}')}</li>" for c, o, n, a, b in moved]
    if not moved:
        out.append("<li>No clause changed between neighbouring releases that both ran it."
                   "</li>")
    out.append("</ul></body></html>")
    return "\n".join(out) + "\n"


def write_atomically(path, text):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --- the command ---------------------------------------------------------------------------


def add_arguments(parser):
    parser.add_argument(
        "--versions", default=",".join(legacy_corpus.VERSIONS),
        help="comma-separated TensorFlow versions (default all: "
        f"{','.join(legacy_corpus.VERSIONS)})",
    )
    parser.add_argument("--profile", default="ci", help="Hypothesis profile (default ci)")
    parser.add_argument("-n", "--workers", default="0",
                        help="pytest-xdist workers per version's run (default 0)")
    parser.add_argument("--clauses", default=None,
                        help="comma-separated clause ids or patterns (default: all)")
    parser.add_argument("--venvs", default=None,
                        help="where the versions' environments are cached (default "
                        "$CONFORMANCE_LEGACY_VENVS or ~/.cache/keras-savedmodel-conformance"
                        "/venvs)")
    parser.add_argument("--python", action="append", metavar="VERSION=PATH",
                        help="run VERSION with this interpreter instead of its cached "
                        "environment (repeatable)")
    parser.add_argument("--reports-dir", default=DEFAULT_REPORTS,
                        help=f"the per-version JSON reports and logs (default {DEFAULT_REPORTS})")
    parser.add_argument("--reuse", action="store_true",
                        help="keep a version's report already in --reports-dir instead of "
                        "rerunning it")
    parser.add_argument("--shard", default=os.environ.get("CONFORMANCE_HISTORY_SHARD") or None,
                        metavar="I/N",
                        help="run only every N-th of the versions, starting at the I-th (a "
                        "fleet: one reports dir, then --render-only)")
    parser.add_argument("--render-only", action="store_true",
                        help="run nothing: render the pages from the reports in --reports-dir")
    parser.add_argument("--output", default=DEFAULT_MD, help=f"default {DEFAULT_MD}")
    parser.add_argument("--html", default=DEFAULT_HTML, help=f"default {DEFAULT_HTML}")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds allowed per version's run (default none)")


def _command_line(args, versions):
    parts = ["python -m conformance history", f"--versions {','.join(versions)}",
             f"--profile {args.profile}", f"-n {args.workers}"]
    if args.clauses:
        parts.append(f"--clauses {args.clauses}")
    return " ".join(parts)


def main(args):
    try:
        versions = parse_versions(args.versions)
        pythons = parse_pythons(args.python)
        shard = parse_shard(args.shard) if args.shard else None
        if args.clauses:
            from conformance.contract import parse_clause_list

            parse_clause_list(args.clauses)
    except (UsageError, ValueError) as exc:
        print(f"python -m conformance history: error: {exc}", file=sys.stderr)
        return 2
    reports_dir = Path(args.reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    if not args.render_only:
        mine = shard_versions(versions, shard) if shard else versions
        root = legacy_corpus.venv_root(args.venvs)
        for number, version in enumerate(mine, start=1):
            prefix = f"[history {number}/{len(mine)}] tf-{version}"
            if args.reuse and report_path(reports_dir, version).exists():
                print(f"{prefix}: reusing {report_path(reports_dir, version)}", flush=True)
                continue
            try:
                python = pythons.get(version) or legacy_corpus.ensure_venv(
                    version, root, log=lambda line: print(line, flush=True))
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                print(f"{prefix}: FAILED to make its environment: {exc}", file=sys.stderr)
                failed.append(version)
                continue
            print(f"{prefix}: running the suite ({args.profile}) with {python}", flush=True)
            document = run_version(version, python, reports_dir, profile=args.profile,
                                   workers=args.workers, clauses=args.clauses,
                                   timeout=args.timeout)
            if "error" in document:
                print(f"{prefix}: ERROR {document['error'][:400]}", file=sys.stderr)
                failed.append(version)
            else:
                c = counts(cells({version: document}), version)
                print(f"{prefix}: " + ", ".join(f"{n} {s}" for s, n in sorted(c.items()))
                      + f" ({document['seconds']} s)", flush=True)
    # A shard renders what the shared reports directory holds so far: the last one to finish
    # renders every version.
    reports = {v: d for v, d in load_reports(reports_dir).items() if v in versions}
    missing = [v for v in versions if v not in reports]
    if missing and reports:
        print(f"[history] no report yet for {', '.join(missing)}: left out of the page")
    if not reports:
        print(f"python -m conformance history: error: no reports for {', '.join(versions)} in "
              f"{reports_dir}", file=sys.stderr)
        return 2
    command = _command_line(args, list(reports))
    write_atomically(args.output, render_markdown(reports, command=command))
    write_atomically(args.html, render_html(reports, command=command))
    print(f"[history] wrote {args.output} and {args.html} ({len(reports)} versions; reports "
          f"in {reports_dir})")
    return 1 if failed else 0
