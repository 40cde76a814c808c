"""`archsearch explain`: what the exported model responds to, and what would change its answer.

Integrated Gradients (Captum, from a stated baseline) and permutation importance (Captum's FeaturePermutation,
as the drop of the study's own metric) per original column, one-hot blocks summed back into their column; per
class for classification; for an ensemble, of the members combined as the export combines them, with the rank
agreement (Spearman) across members. Prototypes (gradient ascent on the input toward a class) and a counterfactual
(the smallest change that flips one row's decision, checked by the exported program). The torch side is
`archsearch.trainers.explain`; this module stays light, since the `archsearch` parser imports it.

Example:
    >>> import archsearch
    >>> found = archsearch.explain("digits-model", storage="sqlite:///archsearch.db")  # doctest: +SKIP
    >>> print("\\n".join(found.summary_lines()))  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import sys

from archsearch.base import lazy_exports
from archsearch.storage_args import add_storage_arguments

_LAZY = {
    "Explanation": "archsearch.explanations._api",
    "explain": "archsearch.explanations._api",
    "ExplainError": "archsearch.explanations._resolve",
}

__all__ = ["add_parser", *_LAZY]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


def _row(text: str) -> int | dict:
    """--row: a test row's index, or the row as a JSON object of column to value."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(
            f"--row must be a test row's index or a JSON object. Got {text!r} instead."
        ) from e
    if isinstance(value, bool) or not isinstance(value, (int, dict)):
        raise argparse.ArgumentTypeError(f"--row must be a test row's index or a JSON object. Got {text!r} instead.")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``explain`` command on the `archsearch` parser.

    Example:
        >>> parser = argparse.ArgumentParser(prog="archsearch")
        >>> add_parser(parser.add_subparsers(dest="command")).prog
        'archsearch explain'
    """
    parser = subparsers.add_parser(
        "explain",
        help="attributions, prototypes and a counterfactual of an exported model, on the held-out test rows",
    )
    parser.add_argument("--model", help="exported folder (default: the study's best trial, its stored weights)")
    add_storage_arguments(parser, help="storage URL of the study (its data, and where the result is stored)")
    parser.set_defaults(storage_required=False)
    parser.add_argument("--study", help="study name (default: the one the model folder names)")
    parser.add_argument("--out", default="explanation.json", help="JSON file to write (default: explanation.json)")
    parser.add_argument("--max-rows", type=int, help="explain on the first N test rows (default: all)")
    parser.add_argument(
        "--row", type=_row, default=0, help="counterfactual row: test row index or JSON object (default: 0)"
    )
    parser.add_argument("--allow-change", help="comma-separated columns the counterfactual may change (default: all)")
    parser.add_argument("--target-class", help="class the counterfactual should reach (default: any other)")
    parser.add_argument("--delta", type=float, help="regression: how far the counterfactual moves the prediction")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's; 1 is faster on a busy machine)")
    parser.add_argument("--no-prototypes", dest="prototypes", action="store_false", help="skip the prototypes")
    parser.add_argument("--no-store", dest="store", action="store_false", help="do not store the result in the study")
    parser.set_defaults(handler=_cmd)
    return parser


def _cmd(args: argparse.Namespace) -> int:
    from archsearch.explanations._api import explain

    allow = None if args.allow_change is None else [c.strip() for c in args.allow_change.split(",") if c.strip()]
    found = explain(
        args.model,
        storage=args.storage,
        study=args.study,
        max_rows=args.max_rows,
        row=args.row,
        allow_change=allow,
        target_class=args.target_class,
        delta=args.delta,
        prototypes=args.prototypes,
        threads=args.threads,
        out=args.out,
        store=args.store,
    )
    for line in found.summary_lines():
        print(line)
    print(f"Explanation written to {args.out}", file=sys.stderr)
    return 0
