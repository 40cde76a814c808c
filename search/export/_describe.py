"""What `archsearch export` prints of a written folder: the shipped model, the rows it saw, its test metric."""

from __future__ import annotations

from pathlib import Path

__all__ = ["describe_export"]


def describe_export(folder: str | Path) -> str:
    """What the export CLI prints: the shipped model, the rows it saw, and its test metric (single vs ensemble)."""
    from archsearch.trainers import load_model

    model = load_model(folder)
    architecture = model.architecture
    meta = architecture["metadata"]
    metric, rows = meta["metric"], meta["training_rows"]
    ensemble = meta.get("ensemble")
    what = f"trial {meta['trial']}" if ensemble is None else f"an ensemble of {ensemble['size']} {ensemble['of']}"
    greedy = meta.get("greedy_ensemble")
    held_out = f"the {rows['n_test_rows']:,} test rows were held out."
    if greedy is not None and ensemble is not None:  # its splits say which member saw which rows
        trained_on = f"Trained on {rows['n_rows']:,} rows: {rows['splits']}; {held_out}"
    else:
        how = "refit" if meta["refit"] else "the search's weights"
        trained_on = f"Trained on {rows['n_rows']:,} rows ({rows['splits']}, {how}); {held_out}"
    lines = [
        f"Exported {what} to {folder}: architecture.json, model.pt (state dict), model.pt2 (torch.export program)",
        trained_on,
    ]
    lines += _encoder_lines(architecture)
    size = meta.get("size")
    if size is not None and size["params"] is not None:
        counted = "" if size["members"] == 1 else f", all {size['members']} members counted"
        latency = (
            "" if size["latency_ms"] is None else f", {size['latency_ms']:.3g} ms per row at batch 1 (as measured)"
        )
        budget = size.get("budget")
        met = "" if not budget else "; within the budget " + ", ".join(f"{k} {v:,}" for k, v in budget.items())
        # The state dict's every value (norm statistics included), more than the search's trainable count.
        shipped = f"{size['params']:,} values in the weights (norm statistics included)"
        lines.append(f"Size: {shipped}, {size['flops']:,} FLOPs per row{latency}{counted}{met}.")
    if greedy is not None and "skipped" in greedy:
        lines.append(f"Greedy ensemble selection skipped: {greedy['skipped']}.")
    elif greedy is not None:
        val = f"val_{metric}"
        lines.append(
            f"Greedy ensemble selection over {greedy['candidates']} stored trials kept {greedy['members']} "
            f"(validation {metric} {greedy[val]:.4f}, trial {meta['trial']} alone {greedy['best_' + val]:.4f}; "
            f"n = {greedy['n_val_rows']:,} validation rows, which chose the members and so flatter them)."
        )
        if greedy.get("unreadable_trials"):
            left_out = ", ".join(map(str, greedy["unreadable_trials"]))
            lines.append(f"Left out of the selection, their stored weights unreadable: trials {left_out}.")
    target_range = architecture["preprocessing"].get("target_range")
    if target_range is not None:
        lines.append(
            f"Predictions are clamped to [{target_range[0]:.6g}, {target_range[1]:.6g}], the range of the "
            f"{rows['n_rows']:,} training targets."
        )
    if model.calibration is not None:
        lines.append(model.calibration.describe())
    key = f"test_{metric}"
    if ensemble is None:
        lines.append(f"Test {metric} {meta['test_metrics'][key]:.4f} (n = {rows['n_test_rows']:,} test rows)")
    else:
        lines.append(
            f"Test {metric}: best single {meta['single_test_metrics'][key]:.4f}, ensemble of {ensemble['size']} "
            f"{meta['test_metrics'][key]:.4f} (n = {rows['n_test_rows']:,} test rows)"
        )
    return "\n".join(lines)


def _encoder_lines(architecture: dict) -> list[str]:
    """What the model takes: raw inputs through the bundled encoder, or the vectors of an encoder it lacks."""
    encoder = architecture["metadata"].get("encoder")
    if encoder is None:
        return []
    from archsearch.trainers import PROGRAM_FILE

    files = architecture.get("encoder")
    if files is not None:
        return [
            f"Encoder bundled: {files['file']} (a copy of {encoder['name']!r}); {files['pipeline']} takes raw inputs "
            f"(encoder, then network), {PROGRAM_FILE} and predict the encoded vectors, predict_raw raw inputs."
        ]
    return [
        f"The model takes the vectors of the encoder {encoder['name']!r} (fingerprint {encoder['fingerprint']}), "
        "not raw rows: encode new rows with it first (a Python function is not bundled)."
    ]
