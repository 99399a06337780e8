"""Command line of the suite: corpus maintenance and fingerprints.

python -m conformance fingerprint-corpus --impl reference
python -m conformance corpus --write-specs        # draw the fixed corpus (once)
python -m conformance corpus --write-golden       # rewrite the golden fingerprints
python -m conformance matrix --profile ci         # docs/conformance-matrix.md
python -m conformance legacy-corpus --versions 2.12,2.21   # conformance/corpus/legacy/
python -m conformance reproduce REPORT.json       # one standalone script per failure
python -m conformance findings [--check]          # docs/findings.md, the findings as bug reports
python -m conformance history --versions 2.15,2.21 # docs/history.md, docs/history.html
"""

import argparse
import importlib
import json
import sys


def _quiet():
    from conformance.environment import quiet_tensorflow

    quiet_tensorflow()


def fingerprint_corpus(args):
    _quiet()
    from conformance import corpus
    from conformance.api import resolve_implementation

    impl = resolve_implementation(args.impl)
    result = {
        name: corpus.fingerprint_spec(impl, spec) for name, spec in corpus.supported_specs(impl)
    }
    print(json.dumps(result, sort_keys=True))


def corpus_command(args):
    _quiet()
    import strategies
    from conformance import corpus
    from conformance.api import resolve_implementation

    if args.write_specs:
        specs = strategies.sample_specs(args.count, seed=args.seed)
        document = {f"spec-{i:02d}": spec.to_dict() for i, spec in enumerate(specs)}
        corpus.CORPUS_DIR.mkdir(exist_ok=True)
        corpus.SPECS_FILE.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
        corpus._corpus_json.cache_clear()
        print(f"wrote {len(document)} specs to {corpus.SPECS_FILE}")
    if args.write_golden:
        for framework, impl_name in (("keras", "reference"), ("tf_keras", "tf_keras")):
            if args.framework not in (None, framework):
                continue
            impl = resolve_implementation(impl_name)
            goldens = {
                name: corpus.fingerprint_spec(impl, spec)
                for name, spec in corpus.corpus_specs()
            }
            path = corpus.golden_file(framework)
            path.write_text(json.dumps(goldens, indent=1, sort_keys=True) + "\n")
            print(f"wrote {len(goldens)} golden fingerprints to {path}")


def contract(args):
    from conformance.contract import contract_markdown

    print(contract_markdown(), end="")


def reproduce(args):
    _quiet()
    from conformance.tools import reproduce as reproduce_module

    try:
        return reproduce_module.main(args)
    except reproduce_module.ReproduceError as exc:
        print(f"reproduce: {exc}", file=sys.stderr)
        return 2


def _tool_main(module):
    # The tool's module is imported when it runs, so that `--help` stays fast.
    def run(args):
        return importlib.import_module(f"conformance.tools.{module}").main(args)

    return run


# name: (module in conformance/tools/ with add_arguments and main, help, description)
TOOLS = {
    "matrix": (
        "matrix",
        "run the suite on every built-in implementation plus the differential checks; "
        "write docs/conformance-matrix.md",
        None,
    ),
    "legacy-corpus": (
        "legacy_corpus",
        "write the legacy corpus: SavedModels written by TensorFlow 2.12-2.21 themselves",
        "In one cached virtual environment per TensorFlow version, save the corpus specs and "
        "real-world models with that version's Keras 2 (tf.keras up to 2.15, tf_keras from "
        "2.16) and record what the writer saw, into conformance/corpus/legacy/ (or --out).",
    ),
    "history": (
        "history",
        "the suite on each TensorFlow release's own saver and loader (2.12-2.21), out of "
        "process; write docs/history.md and docs/history.html",
        "Run the suite on tf.keras (2.12-2.15) and tf_keras (2.16-2.21), each in its cached "
        "environment, and render the clauses x versions page.",
    ),
    "reproduce": (
        "reproduce",
        "write one standalone Python script per failure of a report (or for a spec)",
        None,
    ),
    "findings": (
        "findings",
        "write docs/findings.md: every expected failure of tf_keras and keras_export as an "
        "upstream bug report (--check: exit 1 when the page is stale)",
        None,
    ),
}
RUNS = {"reproduce": reproduce}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m conformance")
    commands = parser.add_subparsers(dest="command", required=True)
    fp = commands.add_parser("fingerprint-corpus", help="print the corpus fingerprints as JSON")
    fp.add_argument("--impl", default="reference")
    fp.set_defaults(run=fingerprint_corpus)
    cp = commands.add_parser(
        "corpus",
        help="maintain the corpus and its golden fingerprints (this project's maintainers)",
        description="Rewrite conformance/corpus/: the fixed specs SIG-STABLE, the differential "
        "checks and the benchmarks use, and the golden fingerprints written by the reference "
        "(Keras 3) and by tf_keras' own saver. Rewriting goldens changes what SIG-STABLE "
        "accepts: do it only for a deliberate change of the format's output.",
    )
    cp.add_argument(
        "--write-specs", action="store_true", help="draw the corpus specs again (specs.json)"
    )
    cp.add_argument(
        "--write-golden",
        action="store_true",
        help="save every corpus spec and write golden-<framework>.json",
    )
    cp.add_argument("--count", type=int, default=24, help="how many specs (default 24)")
    cp.add_argument(
        "--framework",
        choices=("keras", "tf_keras"),
        default=None,
        help="rewrite only this framework's goldens (default both)",
    )
    cp.add_argument("--seed", type=int, default=20261125, help="Hypothesis seed of the draw")
    cp.set_defaults(run=corpus_command)
    ct = commands.add_parser("contract", help="print the contract document (CONTRACT.md)")
    ct.set_defaults(run=contract)
    for name, (module, help_text, description) in TOOLS.items():
        sub = commands.add_parser(name, help=help_text, description=description)
        importlib.import_module(f"conformance.tools.{module}").add_arguments(sub)
        sub.set_defaults(run=RUNS.get(name) or _tool_main(module))
    args = parser.parse_args(argv)
    return args.run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
