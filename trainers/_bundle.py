"""An export's bundled program encoder (issue #24): the user's torch.export or TorchScript encoder copied beside
model.pt2, and a pipeline program of the same kind from raw inputs to model.pt2's output (encoder, then the
network). Both load with torch alone: `torch.export.load(...).module()` or `torch.jit.load(...)`.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archsearch.trainers._encoder import PROGRAM_SUFFIXES, load_program

__all__ = ["bundle_encoder", "bundled_files"]


class _Pipeline(nn.Module):
    """Raw inputs in; the encoder's vectors (batch, features) go to the exported network, whose output comes out."""

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(raw))


def bundled_files(encoder: str | Path) -> dict[str, str]:
    """`architecture.json`'s `encoder` entry: the program's kind, and the files the export writes for it."""
    kind = PROGRAM_SUFFIXES[Path(encoder).suffix.lower()]
    suffix = ".pt2" if kind == "torch.export" else ".pt"
    return {"kind": kind, "file": f"encoder{suffix}", "pipeline": f"pipeline{suffix}"}


def bundle_encoder(folder: Path, encoder: str | Path, deployed: nn.Module, n_inputs: int) -> None:
    """Copy the program `encoder` into `folder` and write the pipeline of it and `deployed` (eval mode)."""
    files = bundled_files(encoder)
    shutil.copyfile(encoder, folder / files["file"])
    module = load_program(encoder)
    if files["kind"] == "torch.export":
        batch = torch.export.Dim("batch", min=1)
        example = _example_input(torch.export.load(str(encoder)))
        program = torch.export.export(_Pipeline(module, deployed), (example,), dynamic_shapes=({0: batch},))
        torch.export.save(program, folder / files["pipeline"])
        return
    with warnings.catch_warnings():  # torch 2.10+ deprecates TorchScript; the user's encoder is one
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        # TorchScript cannot script the network's Python; traced on vectors, it has no branch left to lose.
        head = torch.jit.trace(deployed, torch.zeros(2, n_inputs))
        torch.jit.save(torch.jit.script(_Pipeline(module, head)), folder / files["pipeline"])


def _example_input(program: Any) -> torch.Tensor:
    """Zeros of the shape the program takes, with two rows (one would make torch.export fix the batch at 1)."""
    name = program.graph_signature.user_inputs[0]
    value = next(node.meta["val"] for node in program.graph.nodes if node.op == "placeholder" and node.name == name)
    return torch.zeros((2, *(int(d) for d in value.shape[1:])), dtype=value.dtype)
