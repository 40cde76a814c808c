"""`archsearch sensitivity`: is a found network on a plateau, or at the edge of a cliff?

The centre (the best trial, a given trial, or several centres spread over the network sizes) and its
neighbours (one neuron more or less, a step wider or narrower, a layer removed or copied, ...) are each
trained with the same seeds and the centre's hyperparameters, and every neighbour is compared with its
centre seed by seed (`archsearch.stats`).

The runs are trials of the companion study ``<study>.sensitivity`` in the same storage, trained by the
worker pool like a search's trials. Study user attributes: ``archsearch_kind = "sensitivity"``,
``parent_study``, ``archsearch_config`` (the parent's, so workers load the same data), ``metric``,
``task``, ``data``, ``preprocessing`` and ``sensitivity_jobs`` (the distinct jobs it holds, the total
its workers run to). Each trial is enqueued with its job as user attributes (``job_id``,
``centre_trial``, ``kind``, ``change``, ``key``, ``layer``, ``delta_units``, ``seed``, ``widths``,
``dropouts``, ``activation``, ``embedding`` and ``embedding_dim`` for an embedded centre, ``depth``,
``n_params``, ``delta_params``, ``lr``, ``weight_decay``, ``batch_size``, ``optimizer``, ``lr_schedule``,
``label_smoothing``, ``normalization``) and records, once trained, the metrics a search trial records.

This module stays light, since the `archsearch` parser imports it; the analysis loads on first use.

Example:
    >>> from archsearch.sensitivity import run_sensitivity
    >>> result = run_sensitivity("sqlite:///archsearch.db", "digits", repeats=10)  # doctest: +SKIP
    >>> print(result.table())  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from archsearch.base import lazy_exports
from archsearch.storage_args import add_storage_arguments

_LAZY = {
    "DEFAULT_STEPS": "archsearch.sensitivity._run",
    "CentreResult": "archsearch.sensitivity._result",
    "NeighbourResult": "archsearch.sensitivity._result",
    "SensitivityError": "archsearch.sensitivity._run",
    "SensitivityResult": "archsearch.sensitivity._result",
    "run_sensitivity": "archsearch.sensitivity._run",
    "SENSITIVITY": "archsearch.sensitivity._jobs",
    "SensitivityKind": "archsearch.sensitivity._jobs",
    "SensitivityObjective": "archsearch.sensitivity._jobs",
}

__all__ = ["add_parser", *_LAZY]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``sensitivity`` command on the `archsearch` parser; its handler is `_cmd`.

    Example:
        >>> parser = argparse.ArgumentParser(prog="archsearch")
        >>> add_parser(parser.add_subparsers(dest="command")).prog
        'archsearch sensitivity'
    """
    parser = subparsers.add_parser(
        "sensitivity",
        help="train a trial's neighbours with paired seeds: which size changes matter",
        description=(
            "Train the best trial (or --trial N, or --centers K trials across sizes) and its neighbours, one size "
            "change away (for a linear trial: one hidden layer at several widths), with the same seeds, and report which "
            "changes are better, worse, equivalent within a margin, or inconclusive at this many seeds."
        ),
    )
    add_storage_arguments(parser, help="storage URL of the study")
    parser.add_argument("--study", required=True, help="study name")
    centre = parser.add_mutually_exclusive_group()
    centre.add_argument("--trial", type=int, help="centre trial number (default: the best trial)")
    centre.add_argument(
        "--centers",
        type=int,
        metavar="K",
        help="K centres spread over the sizes of the small and good networks, each with +-1 neuron, "
        "+- the largest fractional step and -1/+1 layer",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help="seeds per architecture (default: 8, or the fewest that let Holm-corrected tests reach significance)",
    )
    parser.add_argument(
        "--steps",
        type=_parse_steps,
        default=(1, 2, 0.1, 0.25, 0.5),
        help="width changes besides +-1 neuron: fractions of a layer's width, or neuron counts "
        "(default: 1,2,0.1,0.25,0.5)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        help="equivalence margin in metric units: a change shown to stay within +-margin is 'equivalent' "
        "(default: the centre's seed-to-seed sd)",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default: 1, in this process)")
    parser.add_argument(
        "--out-json",
        help="results as JSON (default: <study>-sensitivity.json in this folder, the study name made a safe file name)",
    )
    parser.add_argument(
        "--out-html", help="figures as one HTML page (default: <study>-sensitivity.html in this folder)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(handler=_cmd)
    return parser


def _parse_steps(text: str) -> tuple[float, ...]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated numbers such as 1,2,0.1,0.25,0.5; got {text!r}"
        ) from None
    return tuple(int(v) if v >= 1 and v.is_integer() else v for v in values)


def _cmd(args: argparse.Namespace) -> int:
    from archsearch.sensitivity._run import run_sensitivity

    with warnings.catch_warnings():
        # Said before training starts, so a user can stop and pick more repeats.
        warnings.showwarning = lambda message, *_: print(f"archsearch: warning: {message}", file=sys.stderr)
        result = run_sensitivity(
            args.storage,
            args.study,
            trial=args.trial,
            centers=args.centers,
            repeats=args.repeats,
            steps=args.steps,
            margin=args.margin,
            workers=args.workers,
            quiet=args.quiet,
        )
    print(result.table())
    from archsearch.storage import study_file_stem

    # Only --out-json / --out-html write elsewhere: a study name is free text, not a path.
    stem = study_file_stem(args.study)
    json_path = Path(args.out_json or f"{stem}-sensitivity.json")
    json_path.write_text(result.to_json(), encoding="utf-8")
    html_path = result.report().write_html(args.out_html or f"{stem}-sensitivity.html")
    print(
        f"Wrote {json_path} and {html_path}; the figures and the summary are also in study "
        f"{result.companion_study!r} for optuna-dashboard."
    )
    return 0
