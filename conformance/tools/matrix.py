"""``python -m conformance matrix``: the suite on every built-in implementation, side by side.

For each implementation the suite runs in a subprocess (``pytest --pyargs conformance
--conformance-impl=NAME --conformance-report=NAME.json``, the chosen Hypothesis profile, the
implementation's versioned expectations file from ``conformance/expectations/`` when it has
one); then the differential checks (``conformance.tools.differential``) run on the corpus specs.
The Markdown written to ``docs/conformance-matrix.md`` is rendered from those JSON documents
alone (``render``), so it is never written by hand.
"""

import json
import re
import sys
import tempfile
from importlib import metadata
from pathlib import Path

DEFAULT_OUTPUT = "docs/conformance-matrix.md"
SPEC_PREVIEW = 160  # characters of a minimal spec shown in a table cell


def builtin_names():
    from conformance.api import BUILTIN

    return list(BUILTIN)


def expectations_file(impl_name):
    from conformance.expectations import EXPECTATIONS_DIR

    path = EXPECTATIONS_DIR / f"{impl_name}.txt"
    return path if path.exists() else None


def suite_command(impl_name, report_path, profile, workers, extra=()):
    from conformance.command import suite_command as command

    expectations = expectations_file(impl_name)
    return command(
        impl_name,
        report=report_path,
        profile=profile,
        workers=workers,
        xfails=expectations,
        python=True,
        quiet=True,
        extra=extra,
    )


def run_suite(impl_name, report_path, profile, workers, *, log_path, timeout=None):
    """Run the suite on one implementation; the report document (or an error document)."""
    from conformance.command import run_for_report

    document = run_for_report(
        suite_command(impl_name, report_path, profile, workers), report_path, log_path,
        timeout=timeout, prefix="conformance-matrix-",
    )  # fmt: skip
    document.setdefault("implementation", impl_name)
    return document


# --- rendering -----------------------------------------------------------------------------


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _esc(text):
    text = _ANSI.sub("", str(text))
    return " ".join(text.replace("|", "\\|").split())


def _versions(reports):
    for document in reports.values():
        if document.get("versions"):
            return document["versions"]
    out = {}
    for key, dist in (
        ("python", None),
        ("tensorflow", "tensorflow"),
        ("keras", "keras"),
        ("tf_keras", "tf-keras"),
    ):
        try:
            out[key] = metadata.version(dist) if dist else sys.version.split()[0]
        except metadata.PackageNotFoundError:
            out[key] = None
    return out


def xfail_reasons(impl_name, document):
    """``{clause id: reason}`` of the expected failures applied to that run."""
    path = expectations_file(impl_name)
    if path is None:
        return {}
    from conformance.expectations import read_xfails, same_test

    entries = read_xfails(str(path)).entries
    reasons = {}
    for clause_id, result in document.get("clauses", {}).items():
        for key, reason in entries.items():
            if key == clause_id or any(same_test(key, nodeid) for nodeid in result["tests"]):
                reasons.setdefault(clause_id, []).append(reason)
    return {clause_id: "; ".join(r) for clause_id, r in reasons.items()}


def not_claimed_reasons(impl_name):
    """``{clause id: reason}`` the implementation gives for the clauses it does not claim."""
    from conformance.api import resolve_implementation

    return dict(getattr(resolve_implementation(impl_name), "not_claimed", None) or {})


def _cell(clause_id, result, impl, footnotes, xfails, unclaimed):
    status = result["status"]
    if status == "fail":
        failure = result["failures"][-1] if result["failures"] else None
        if failure is None:
            return "**fail**"
        footnotes.append((impl, clause_id, failure))
        spec = failure.get("spec", "")
        preview = spec if len(spec) <= SPEC_PREVIEW else spec[:SPEC_PREVIEW] + "…"
        return f"**fail** [{len(footnotes)}]: `{_esc(preview)}`"
    if status == "xfail":
        return f"xfail (expected): {_esc(xfails.get(clause_id, 'see expectations'))}"
    if status == "xpass":
        return "**xpass** (expected failure passed)"
    if status == "pass":
        return f"pass ({result['examples']} ex.)"
    if status == "not claimed":
        reason = unclaimed.get(clause_id)
        return f"not claimed: {_esc(reason)}" if reason else "not claimed"
    if status == "skipped":
        return f"skipped: {_esc('; '.join(result.get('skip_reasons', [])))}"
    return status


def summary_line(impl, document):
    if "error" in document:
        return f"`{impl}`: suite did not run ({_esc(document['error'][:200])})"
    counts = {}
    for result in document["clauses"].values():
        counts[result["status"]] = counts.get(result["status"], 0) + 1
    order = ("pass", "fail", "xfail", "xpass", "not claimed", "skipped", "not run")
    parts = ", ".join(f"{counts[s]} {s}" for s in order if counts.get(s))
    examples = sum(result["examples"] for result in document["clauses"].values())
    return (
        f"`{impl}`: {parts} of {len(document['clauses'])} clauses "
        f"({examples} examples, {document.get('seconds', '?')} s)"
    )


def _cross_cell(cell):
    if "no_loader" in cell:
        return f"no loader: {_esc(cell['no_loader'][:120])}"
    if cell["total"] == 0:
        return "—"
    if cell["equal"] == cell["total"]:
        return f"ok {cell['equal']}/{cell['total']}"
    example = cell["example"] or {}
    return (
        f"**fails {cell['total'] - cell['equal']}/{cell['total']}**: "
        f"{example.get('spec')}: {_esc(str(example.get('detail'))[:220])}"
    )


def _field_cell(cell):
    if cell["equal"] == cell["total"]:
        return f"equal {cell['equal']}/{cell['total']}"
    example = cell["example"] or {}
    detail = example.get("detail")
    if isinstance(detail, dict):
        detail = f"{json.dumps(detail.get('a'))} vs {json.dumps(detail.get('b'))}"
    return (
        f"**differs {cell['total'] - cell['equal']}/{cell['total']}**, e.g. "
        f"{example.get('spec')}: {_esc(str(detail)[:200])}"
    )


def render(reports, differential=None, *, profile, command, notes=()):
    """The matrix as Markdown, from the suite's reports and the differential document."""
    from conformance.contract import CLAUSE_IDS
    from conformance.tools import differential as diff

    impls = list(reports)
    versions = _versions(reports)
    lines = [
        "# Conformance matrix: Keras SavedModel implementations",
        "",
        f"Generated by `{command}`; do not edit by hand.",
        "",
        f"- TensorFlow {versions.get('tensorflow')}, Keras {versions.get('keras')}, "
        f"tf_keras {versions.get('tf_keras')}, Python {versions.get('python')}",
        f"- Hypothesis profile: `{profile}`",
        *[f"- {note}" for note in notes],
        "",
        "## Summary",
        "",
        *[f"- {summary_line(impl, reports[impl])}" for impl in impls],
        "",
        "## Clauses × implementations",
        "",
        "Cells: pass (examples run) / **fail** with the minimal failing spec (full spec and "
        "reproduction below) / xfail: an expected failure recorded in "
        "`conformance/expectations/<implementation>.txt`, with its reason / not claimed, "
        "with the adapter's reason.",
        "",
        "| clause | " + " | ".join(f"`{impl}`" for impl in impls) + " |",
        "|---|" + "---|" * len(impls),
    ]
    footnotes = []
    xfails = {impl: xfail_reasons(impl, reports[impl]) for impl in impls}
    unclaimed = {impl: not_claimed_reasons(impl) for impl in impls}
    clause_ids = list(CLAUSE_IDS)
    for document in reports.values():
        for clause_id in document.get("clauses", {}):
            if clause_id not in clause_ids:
                clause_ids.append(clause_id)
    for clause_id in clause_ids:
        cells = []
        for impl in impls:
            result = reports[impl].get("clauses", {}).get(clause_id)
            if result is None:
                cells.append("not run")
            else:
                cells.append(
                    _cell(clause_id, result, impl, footnotes, xfails[impl], unclaimed[impl])
                )
        lines.append(f"| {clause_id} | " + " | ".join(cells) + " |")
    if footnotes:
        lines += ["", "### Failures (minimal specs)", ""]
        for number, (impl, clause_id, failure) in enumerate(footnotes, start=1):
            message = " ".join(str(failure.get("message", "")).split())[:600]
            lines += [
                f"{number}. `{impl}` · {clause_id} · `{failure.get('test', '')}`",
                f"   - message: {_esc(message)}",
                f"   - spec: `{failure.get('spec', '')}`",
                f"   - reproduce: `{failure.get('command', '')}`",
            ]
    lines += _legacy_section(reports)
    if differential is not None:
        summary = diff.summarize(differential)
        specs = len(differential.get("specs", {}))
        lines += [
            "",
            "## Saver × loader",
            "",
            f"What the row's implementation saved from each of {specs} corpus specs, loaded by "
            "the column's loader and called on the same inputs, against the saver's original "
            f"model (`conformance.expected.tolerances`). `{diff.SERVING_LOADER}` calls the "
            "`serving_default` signature; the other columns are the implementations' own "
            "loaders (keras_export's is `keras.layers.TFSMLayer`).",
            "",
        ]
        loaders = [diff.SERVING_LOADER, *differential["implementations"]]
        lines += [
            "| saver \\ loader | " + " | ".join(f"`{loader}`" for loader in loaders) + " |",
            "|---|" + "---|" * len(loaders),
        ]
        for saver in differential["implementations"]:
            row = summary["cross"].get(saver, {})
            cells = [_cross_cell(row[loader]) if loader in row else "—" for loader in loaders]
            lines.append(f"| `{saver}` | " + " | ".join(cells) + " |")
        pairs = list(summary["pairs"])
        if pairs:
            fields = [*diff.SIGNATURE_FIELDS, "serving outputs", "original models"]
            lines += [
                "",
                "## Serving signatures, pair by pair",
                "",
                "The same spec saved by both implementations: `serving_default` compared field "
                "by field (inputs and outputs in model order), and its outputs on the same "
                "inputs. `original models` compares the two in-memory models themselves: "
                "Keras 3 and tf_keras builds of one spec share their weights bitwise, so a "
                "difference there is the frameworks' layer semantics, not the savers'.",
                "",
                "| field | " + " | ".join(f"`{p.replace(' | ', '` × `')}`" for p in pairs) + " |",
                "|---|" + "---|" * len(pairs),
            ]
            for field in [*fields, "not compared"]:
                cells = [summary["pairs"][p].get(field) for p in pairs]
                if all(cell is None for cell in cells):
                    continue
                lines.append(
                    f"| {field} | "
                    + " | ".join("—" if c is None else _field_cell(c) for c in cells)
                    + " |"
                )
        kept = summary.get("kept", {})
        if kept:
            lines += [
                "",
                "## What the files keep",
                "",
                "Read through plain `tf.saved_model.load`, over the same specs.",
                "",
                "| | " + " | ".join(f"`{impl}`" for impl in kept) + " |",
                "|---|" + "---|" * len(kept),
            ]
            rows = sorted({row for impl in kept.values() for row in impl})
            for row in rows:
                lines.append(
                    f"| {row} | "
                    + " | ".join(_esc(kept[impl].get(row, "—")) for impl in kept)
                    + " |"
                )
    return "\n".join(lines) + "\n"


def _legacy_section(reports):
    """Writer version x loader: how each implementation's loader read the legacy corpus
    (LOAD-LEGACY's counts in its report), as loaded by config / revived / failed."""
    counts = {
        impl: result["legacy"]
        for impl, document in reports.items()
        for result in document.get("clauses", {}).values()
        if result.get("legacy")
    }
    if not counts:
        return []
    impls = list(counts)
    writers = sorted({w for c in counts.values() for w in c}, key=_writer_order)
    lines = [
        "",
        "## Legacy corpus",
        "",
        "LOAD-LEGACY's files (`conformance/corpus/legacy`), as each implementation's loader "
        "read the ones this profile loads: by config / revived / failed.",
        "",
        "| writer | " + " | ".join(f"`{impl}`" for impl in impls) + " |",
        "|---|" + "---|" * len(impls),
    ]
    for writer in writers:
        cells = []
        for impl in impls:
            entry = counts[impl].get(writer)
            if entry is None:
                cells.append("—")
                continue
            cell = f"{entry['config']} / {entry['revived']} / {entry['failed']}"
            if entry["failed_cases"]:
                cell += f" (failed: {', '.join(entry['failed_cases'])})"
            cells.append(_esc(cell))
        lines.append(f"| {writer} | " + " | ".join(cells) + " |")
    return lines


def _writer_order(name):
    return tuple(int(p) if p.isdigit() else 0 for p in name.split("-")[-1].split("."))


# --- the command ---------------------------------------------------------------------------


def main(args):
    impls = args.impls.split(",") if args.impls else builtin_names()
    unknown = [impl for impl in impls if impl not in builtin_names()]
    if unknown:
        print(f"unknown implementation(s) {unknown}; built-in: {builtin_names()}", file=sys.stderr)
        return 2
    reports_dir = Path(args.reports_dir or tempfile.mkdtemp(prefix="conformance-matrix-"))
    reports_dir.mkdir(parents=True, exist_ok=True)
    reports = {}
    notes = list(args.note or [])
    for impl in impls:
        report_path = reports_dir / f"{impl}.json"
        if args.skip_suites and not report_path.exists():
            reports[impl] = {"implementation": impl, "error": "not run (--skip-suites)"}
            continue
        if (args.reuse or args.skip_suites) and report_path.exists():
            with open(report_path, encoding="utf-8") as f:
                reports[impl] = json.load(f)
            notes.append(f"`{impl}`: suite report reused from an earlier run of this command")
            continue
        print(f"[matrix] suite on {impl} (profile {args.profile}, -n {args.workers})", flush=True)
        reports[impl] = run_suite(
            impl, str(report_path), args.profile, args.workers,
            log_path=reports_dir / f"{impl}.log", timeout=args.timeout,
        )  # fmt: skip
        with open(report_path, "w", encoding="utf-8") as f:
            json.dump(reports[impl], f, indent=1)
        print(f"[matrix]   {summary_line(impl, reports[impl])}", flush=True)
    differential = None
    if args.differential_specs != 0:
        differential_path = reports_dir / "differential.json"
        if args.reuse and differential_path.exists():
            differential = json.loads(differential_path.read_text())
            notes.append("differential checks reused from an earlier run of this command")
        else:
            from conformance import corpus
            from conformance.tools import differential as diff

            specs = corpus.corpus_specs()
            if args.differential_specs > 0:
                specs = specs[: args.differential_specs]
            print(f"[matrix] differential checks on {len(specs)} corpus specs", flush=True)
            differential = diff.run(
                impls, specs, progress=lambda name: print(f"[matrix]   {name}", flush=True)
            )
            differential_path.write_text(json.dumps(differential, indent=1, default=str))
    command = "python -m conformance matrix " + " ".join(
        part
        for part in (
            f"--profile {args.profile}",
            f"--impls {','.join(impls)}" if args.impls else "",
            f"-n {args.workers}",
            f"--differential-specs {args.differential_specs}"
            if args.differential_specs >= 0
            else "",
        )
        if part
    )
    text = render(reports, differential, profile=args.profile, command=command, notes=notes)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"[matrix] wrote {output} (reports in {reports_dir})")
    for impl in impls:
        print(summary_line(impl, reports[impl]))
    return 0


def add_arguments(parser):
    parser.add_argument("--profile", default="ci", help="Hypothesis profile (default ci)")
    parser.add_argument(
        "--impls", default=None, help="comma-separated built-in names (default: all built-ins)"
    )
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help=f"default {DEFAULT_OUTPUT}")
    parser.add_argument(
        "-n", "--workers", default="0", help="pytest-xdist workers per suite run (default 0)"
    )
    parser.add_argument(
        "--differential-specs",
        type=int,
        default=-1,
        help="corpus specs for the differential checks (-1: all, 0: skip them)",
    )
    parser.add_argument(
        "--reports-dir", default=None, help="keep the JSON reports and logs here (default: temp)"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse the reports already in --reports-dir instead of rerunning (said in the header)",
    )
    parser.add_argument(
        "--note", action="append", help="a line for the header (repeatable), e.g. why this profile"
    )
    parser.add_argument(
        "--skip-suites",
        action="store_true",
        help="run only the differential checks; the suite columns come from --reports-dir",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds allowed per suite run (default none)"
    )
