"""``riskgate`` command line: ``margin``, ``bench`` (and the service commands)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from riskgate.domain.instruments import InstrumentError
from riskgate.domain.market import MarketDataError
from riskgate.domain.portfolio import PortfolioError, load_portfolio
from riskgate.engine.state import StateError
from riskgate.models.base import ModelParamsError

EXIT_BAD_INPUT = 2
INPUT_ERRORS = (PortfolioError, MarketDataError, InstrumentError, ModelParamsError, StateError)


def _cmd_margin(args: argparse.Namespace) -> int:
    from riskgate.report import compute_report, render_text

    portfolio = load_portfolio(args.file)
    report = compute_report(portfolio, args.model, args.params, args.rules_params)
    if args.json:
        json.dump(report, sys.stdout, indent=2, sort_keys=False)
        sys.stdout.write("\n")
    else:
        print(render_text(report))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from riskgate.bench import main as bench_main

    return bench_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="riskgate", description="Pre-trade portfolio-margin risk for crypto derivatives."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    margin = sub.add_parser(
        "margin",
        help="portfolio margin vs rules-based margin for a portfolio file",
        description="Compare portfolio margin with rules-based margin for a JSON or TOML "
        "portfolio file (format: README, 'riskgate margin').",
    )
    margin.add_argument("file", help="portfolio file (.json or .toml)")
    margin.add_argument("--model", choices=["deribit", "span"], default="deribit")
    margin.add_argument(
        "--params", metavar="FILE.toml", help="model parameters (default: packaged)"
    )
    margin.add_argument(
        "--rules-params",
        metavar="FILE.toml",
        help="rules-based margin parameters (default: packaged)",
    )
    margin.add_argument("--json", action="store_true", help="machine-readable output")
    margin.set_defaults(func=_cmd_margin)

    bench = sub.add_parser(
        "bench",
        help="benchmark: incremental what-if vs full revaluation, risk-array build time",
    )
    bench.add_argument("--legs", type=int, default=500, help="legs per account (default 500)")
    bench.add_argument("--orders", type=int, default=20000, help="what-ifs timed per model")
    bench.add_argument("--full-revals", type=int, default=200, help="full revaluations timed")
    bench.add_argument("--chain", type=int, default=1600, help="options in the chain build")
    bench.add_argument("--seed", type=int, default=7)
    bench.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except INPUT_ERRORS as exc:
        print(f"riskgate {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
