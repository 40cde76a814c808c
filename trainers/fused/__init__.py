"""The fused engine: many MLPs trained at once, slots stepped together with batched matrix products, each
refilled as its run ends.

Its rooms: `_group.py` (what slots share, what one slot trains, where a network should go), `_population.py`
(the slots' lives), `_layout.py` (a slot's row of the stacked parameters), `_forward.py` (the forward pass of
all slots), `_training.py` (per-slot loss and clipping) and `_optim.py` (the stacked optimizer); the
building blocks both engines share are `archsearch.trainers.engine`.

A `Population` holds up to `capacity` slots of one `FusedGroup`. Every layer's weights are stacked as
(rows, in, width) in one flat (rows, n_params) tensor, and one training step is a handful of batched
products over all rows, so small networks stop paying Python and kernel launch costs per trial. Rows are
allocated as slots are first used (doubling, up to `capacity`): an empty row costs a step its arithmetic.

What varies per slot (fused) and what partitions slots into groups:
- Per slot: hidden widths (padded to the group's `max_width`: a padded unit's weights and bias start at
  zero, so its output is act(0) = 0 for every activation we offer, it passes nothing on and gets exactly zero
  gradient, and every optimizer leaves a zero parameter with zero gradient at zero; the slot's trained
  weights therefore equal an unpadded network's, without a mask to multiply by), depth (up to
  `max_depth`; a shallower slot passes its last hidden layer through the deeper layers unchanged, and
  those layers' weights stay zero), dropout per layer, learning rate, weight decay, optimizer (adam, adamw,
  sgd), seed (initial weights and batch order), epochs, patience, metric, keep_last, and the recipe:
  lr_schedule and warmup (each slot on its own step counter), label_smoothing and grad_clip (each slot's
  own gradient norm).
- Per group: activation, batch size (the steps of an epoch line up), device, bf16, class_weight,
  normalization (a LayerNorm takes its statistics over the slot's real units only; a BatchNorm keeps
  each slot's running statistics; a padded unit's norm weight and bias are zero, so it stays zero) and
  the numeric-feature embedding with its size (the first layer's inputs line up; each slot has its own
  embedding weights, stacked as (rows, n_numeric, ...); a "pl" embedding's per-feature Linear and the
  first hidden Linear are applied as one folded product, see `_folded_first_layer`), besides the data itself.

With dropout 0 on CPU a slot's trajectory equals `train_mlp`'s with the same values to float rounding
(same initial weights and batch order from the slot's seed, same loss, the torch fused optimizers' math;
see `_fused_optim`), except that with batch norm under Adam/AdamW the Linear bias before each norm gets
rounding-noise gradients that Adam scales to full steps in either engine, so those biases and the running
means agree in effect only. Dropout masks come from the population's own generator (`seed`), not from
`settings.seed`, so with dropout a slot matches `train_mlp` in distribution, not number for number.

Every operation is either elementwise along the slot axis or a per-slot product, so a NaN in one slot
stays in it, and adding or finishing one slot (growing the rows or not) leaves the other slots' numbers
unchanged with dropout 0; with dropout the masks are drawn over all rows, so the other slots' masks change.
"""

from archsearch.trainers.fused._group import (
    FusedGroup,
    SlotSpec,
    fused_unsupported_reason,
    network_macs,
    padded_macs,
    padding_acceptable,
    padding_is_free,
    size_bucket,
)
from archsearch.trainers.fused._optim import StackedOptimizer
from archsearch.trainers.fused._population import Population, train_fused

__all__ = [
    "FusedGroup",
    "Population",
    "SlotSpec",
    "StackedOptimizer",
    "fused_unsupported_reason",
    "network_macs",
    "padded_macs",
    "padding_acceptable",
    "padding_is_free",
    "size_bucket",
    "train_fused",
]
