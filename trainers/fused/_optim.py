"""Adam, AdamW and SGD (Nesterov momentum 0.9) for the slots of one flat (slots, parameters) tensor.

Each slot's row is updated by the very kernels `train_mlp`'s optimizers run
(`torch.optim.Adam/AdamW/SGD(fused=True)` call `torch._fused_adam_`, `_fused_adamw_` and `_fused_sgd_`):
they are elementwise, so a slot's update is the same number for number as on the unpadded network's
tensors, and a padded element (zero parameter, zero gradient, zero state) stays exactly zero. Slots with
the same optimizer and hyperparameters share one call. One fused pass per row took 1.6 ms a step where the
same arithmetic as stacked tensor operations took 22 ms (16 slots of 26,000 parameters, 1 thread, 2-core
CPU under load, 2026-12-03).

On CUDA the kernel calls are launches, one or two per slot and step whenever the slots' learning rates
differ (every slot of a search does, and a warm-up or schedule changes them every step), which is the
cost a GPU step is made of. There the update is written as stacked tensor operations over all rows at once
instead (`vectorized`), with each slot's learning rate, weight decay, optimizer kind and step count as
(capacity, 1) tensors: about twenty launches a step whatever the number of slots, the same formulas as
the fused kernels, equal to them to float rounding (tested on the CPU, where the per-row calls stay the
default because there the stacked passes over memory cost more than the calls).

A slot's row is touched by its own call only (and every stacked operation is elementwise along the slot
axis), so a NaN in one slot stays in that slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

BETAS = (0.9, 0.999)  # torch's Adam defaults, which train_mlp uses
EPS = 1e-8
MOMENTUM = 0.9
_KINDS = ("adam", "adamw", "sgd")  # the vectorized path's kind codes
_SGD = _KINDS.index("sgd")


@dataclass
class _SlotState:
    kind: str
    lr: float
    weight_decay: float
    step: torch.Tensor  # the Adam kernels read one step tensor per parameter tensor for the bias correction


def resized(tensor: torch.Tensor, rows: int, *, dim: int = 0, fill: float = 0.0) -> torch.Tensor:
    """`tensor` with `rows` entries along `dim`: its first ones (a copy, so a cut frees memory), then `fill`."""
    have = tensor.shape[dim]
    if rows <= have:
        return tensor.narrow(dim, 0, rows).clone()
    shape = list(tensor.shape)
    shape[dim] = rows - have
    return torch.cat([tensor, tensor.new_full(shape, fill)], dim=dim)


class StackedOptimizer:
    """Optimizer state for `capacity` slots of `n_params` scalars each; a slot is reset on refill."""

    def __init__(self, capacity: int, n_params: int, device: torch.device, *, vectorized: bool | None = None):
        self.m = torch.zeros(capacity, n_params, device=device)  # Adam's first moment, or SGD's momentum buffer
        self.v = torch.zeros(capacity, n_params, device=device)  # Adam's second moment
        self.device = device
        self.vectorized = device.type == "cuda" if vectorized is None else vectorized
        self._slots: list[_SlotState | None] = [None] * capacity
        self._calls: list[tuple[tuple[str, float, float], list[int]]] | None = None
        # The vectorized path's per-slot hyperparameters, kept on the host and copied over once a step
        # when they changed (a schedule changes the lrs every step: one copy, not one per slot).
        # A NumPy array: setting one entry costs a tenth of a microsecond, a tensor's a few (K per step).
        self._host = np.zeros((capacity, 4))  # lr, weight decay, kind code, occupied
        self._rows: torch.Tensor | None = None  # _host on the device, None when stale
        self._kinds: tuple[bool, bool] | None = None  # (any SGD slot, any Adam/AdamW slot); None when stale
        self._steps = torch.zeros(capacity, 1, device=device)  # Adam steps taken per slot

    def resize(self, rows: int) -> None:
        """Hold `rows` slots: the first ones keep their state, added ones are empty, cut ones must be empty."""
        self.m, self.v, self._steps = (resized(t, rows) for t in (self.m, self.v, self._steps))
        host = np.zeros((rows, self._host.shape[1]))
        kept = min(rows, len(self._host))
        host[:kept] = self._host[:kept]
        self._host = host
        self._slots = (self._slots + [None] * rows)[:rows]
        self._calls = None
        self._rows = self._kinds = None

    def reset(self, slot: int, kind: str, lr: float, weight_decay: float) -> None:
        """Start `slot` afresh (zero state, step 0) with its own optimizer kind and hyperparameters."""
        self.m[slot].zero_()
        self.v[slot].zero_()
        step = torch.zeros((), dtype=torch.float32, device=self.device)
        self._slots[slot] = _SlotState(kind, float(lr), float(weight_decay), step)
        self._calls = None
        self._steps[slot] = 0.0
        self._host[slot] = (float(lr), float(weight_decay), _KINDS.index(kind), 1.0)
        self._rows = self._kinds = None

    def set_lr(self, slot: int, lr: float) -> None:
        """Give `slot` a new learning rate from its next step on (a scheduled slot's lr changes every step)."""
        state = self._slots[slot]
        if state is not None and state.lr != lr:
            state.lr = float(lr)
            self._calls = None
            self._host[slot, 0] = float(lr)
            self._rows = None

    def clear(self, slot: int) -> None:
        """Empty `slot`: its row is no longer updated."""
        self.m[slot].zero_()
        self.v[slot].zero_()
        self._slots[slot] = None
        self._calls = None
        self._host[slot] = 0.0
        self._rows = self._kinds = None

    def step(self, params: torch.Tensor, grads: torch.Tensor) -> None:
        """Update the occupied rows of `params` (capacity, n_params) in place from `grads` of the same shape."""
        if self.vectorized:
            self._step_vectorized(params, grads)
            return
        if self._calls is None:
            groups: dict[tuple[str, float, float], list[int]] = {}
            for index, state in enumerate(self._slots):
                if state is not None:
                    groups.setdefault((state.kind, state.lr, state.weight_decay), []).append(index)
            self._calls = list(groups.items())
        with torch.no_grad():
            for (kind, lr, weight_decay), slots in self._calls:
                rows = [params[i] for i in slots]
                row_grads = [grads[i] for i in slots]
                if kind == "sgd":
                    # A zero buffer makes the first step's `0.9 * buf + grad` exactly torch's `buf = grad`.
                    torch._fused_sgd_(
                        rows,
                        row_grads,
                        [self.m[i] for i in slots],
                        weight_decay=weight_decay,
                        momentum=MOMENTUM,
                        lr=lr,
                        dampening=0.0,
                        nesterov=True,
                        maximize=False,
                        is_first_step=False,
                    )
                    continue
                steps = [self._slots[i].step for i in slots]
                torch._foreach_add_(steps, 1)  # as torch.optim does before its kernel, which reads the step
                kernel = torch._fused_adamw_ if kind == "adamw" else torch._fused_adam_
                kernel(
                    rows,
                    row_grads,
                    [self.m[i] for i in slots],
                    [self.v[i] for i in slots],
                    [],
                    steps,
                    lr=lr,
                    beta1=BETAS[0],
                    beta2=BETAS[1],
                    weight_decay=weight_decay,
                    eps=EPS,
                    amsgrad=False,
                    maximize=False,
                )

    def _step_vectorized(self, params: torch.Tensor, grads: torch.Tensor) -> None:
        """The fused kernels' formulas for every row at once (see the module docstring)."""
        if self._rows is None:
            # Non-blocking: from pageable memory CUDA stages the bytes at once, and a blocking copy would
            # make the host wait for the GPU at every step whose learning rates changed.
            self._rows = torch.from_numpy(self._host.astype(np.float32)).to(self.device, non_blocking=True)
        if self._kinds is None:
            codes = self._host[:, 2][self._host[:, 3] > 0]  # on the host: which kinds the occupied slots use
            self._kinds = bool((codes == _SGD).any()), bool((codes != _SGD).any())
        any_sgd, any_adam = self._kinds
        lr, decay, kind, occupied = (column.unsqueeze(1) for column in self._rows.unbind(dim=1))
        occupied, adamw, sgd = occupied > 0, kind == _KINDS.index("adamw"), kind == _SGD
        with torch.no_grad():
            # Adam and SGD add the decay to the gradient; AdamW shrinks the weights before the update.
            grads = grads + params * torch.where(adamw, 0.0, decay)
            params.mul_(1 - lr * torch.where(adamw, decay, 0.0))
            update = m = v = buffer = None
            if any_adam:
                self._steps.add_((occupied & ~sgd).float())
                # Rows without an Adam step yet (SGD, empty) divide by zero here; torch.where drops those values.
                correction1 = 1 - BETAS[0] ** self._steps
                correction2_sqrt = (1 - BETAS[1] ** self._steps).sqrt()
                m = BETAS[0] * self.m + (1 - BETAS[0]) * grads
                v = BETAS[1] * self.v + (1 - BETAS[1]) * grads * grads
                update = (lr / correction1) * m / (v.sqrt() / correction2_sqrt + EPS)
            if any_sgd:
                # Nesterov momentum: buf = momentum * buf + grad, then a step along grad + momentum * buf.
                buffer = MOMENTUM * self.m + grads
                sgd_update = lr * (grads + MOMENTUM * buffer)
                update = sgd_update if update is None else torch.where(sgd, sgd_update, update)
            if update is None:
                return  # no slot is occupied
            params.sub_(torch.where(occupied, update, 0.0))
            moment = m if buffer is None else buffer if m is None else torch.where(sgd, buffer, m)
            self.m.copy_(torch.where(occupied, moment, 0.0))
            if v is not None:
                self.v.copy_(torch.where(occupied & ~sgd, v, 0.0))
