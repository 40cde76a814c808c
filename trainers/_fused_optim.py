"""Adam, AdamW and SGD (Nesterov momentum 0.9) on one flat (slots, parameters) tensor, per-slot hyperparameters.

The arithmetic follows torch's fused kernels (`torch.optim.Adam/AdamW/SGD(fused=True)`) step for step,
so a slot's weights track `train_mlp`'s to float rounding: Adam adds `weight_decay * param` to the
gradient (L2), AdamW shrinks the parameter by `lr * weight_decay` first (decoupled), both with bias
correction from the slot's own step count; SGD adds L2 decay, keeps `buf = 0.9 * buf + grad` (a zero
buffer makes the first step `buf = grad`, as torch's clone) and steps along `grad + 0.9 * buf`.

Every operation is elementwise along the slot axis, so a NaN in one slot's row stays in that row.
"""

from __future__ import annotations

import torch

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8  # torch's Adam defaults, which train_mlp uses
MOMENTUM = 0.9
_KINDS = {"adam": 0, "adamw": 1, "sgd": 2}


class StackedOptimizer:
    """Optimizer state for `capacity` slots of `n_params` scalars each; a slot is reset on refill."""

    def __init__(self, capacity: int, n_params: int, device: torch.device):
        self.m = torch.zeros(capacity, n_params, device=device)  # Adam's first moment, or SGD's momentum buffer
        self.v = torch.zeros(capacity, n_params, device=device)  # Adam's second moment
        self.steps = [0] * capacity
        self.kinds = [0] * capacity
        self.lrs = [0.0] * capacity  # 0 for an empty slot, so its (zero) row never moves
        self.decays = [0.0] * capacity
        self.device = device
        self._scalars: dict[str, torch.Tensor] | None = None

    def reset(self, slot: int, kind: str, lr: float, weight_decay: float) -> None:
        """Start `slot` afresh (zero state, step 0) with its own optimizer kind and hyperparameters."""
        self.m[slot].zero_()
        self.v[slot].zero_()
        self.steps[slot] = 0
        self.kinds[slot], self.lrs[slot], self.decays[slot] = _KINDS[kind], float(lr), float(weight_decay)
        self._scalars = None

    def clear(self, slot: int) -> None:
        """Empty `slot`: zero state and a zero learning rate."""
        self.reset(slot, "adam", 0.0, 0.0)

    def step(self, params: torch.Tensor, grads: torch.Tensor) -> None:
        """Update `params` (capacity, n_params) in place from `grads` of the same shape."""
        self.steps = [s + 1 for s in self.steps]
        s = self._per_slot()
        # Bias corrections in float64 from the integer step, as the fused kernels compute them on the host.
        steps = torch.tensor(self.steps, dtype=torch.float64)
        correction1 = 1 - BETA1**steps  # (capacity,)
        correction2_sqrt = (1 - BETA2**steps).sqrt()
        step_size = (s["lr64"] / correction1).to(torch.float32).to(self.device).unsqueeze(1)
        correction2_sqrt = correction2_sqrt.to(torch.float32).to(self.device).unsqueeze(1)
        with torch.no_grad():
            if s["any_adamw"]:
                params.mul_(1 - s["decoupled"])
            if s["any_l2"]:
                grads = grads + params * s["l2"]
            if s["any_adam"]:
                m = self.m.clone() if s["any_sgd"] else self.m  # SGD slots keep their buffer in self.m
                m.mul_(BETA1).add_(grads, alpha=1 - BETA1)
                self.v.mul_(BETA2).addcmul_(grads, grads, value=1 - BETA2)
                update = (m * step_size).div_(self.v.sqrt().div_(correction2_sqrt).add_(EPS))
            if s["any_sgd"]:
                buf = self.m.mul(MOMENTUM).add_(grads)
                sgd_update = grads.add(buf, alpha=MOMENTUM).mul_(s["lr"])
                if s["any_adam"]:
                    update = torch.where(s["is_sgd"], sgd_update, update)
                    self.m.copy_(torch.where(s["is_sgd"], buf, m))
                else:
                    update = sgd_update
                    self.m.copy_(buf)
            params.sub_(update)

    def _per_slot(self) -> dict[str, torch.Tensor]:
        """The (capacity, 1) hyperparameter columns, rebuilt only when a slot changed."""
        if self._scalars is None:
            lr = torch.tensor(self.lrs, dtype=torch.float64)
            decay = torch.tensor(self.decays, dtype=torch.float64)
            kinds = torch.tensor(self.kinds)
            is_adamw, is_sgd = kinds == _KINDS["adamw"], kinds == _KINDS["sgd"]

            def column(values: torch.Tensor) -> torch.Tensor:
                return values.to(torch.float32).to(self.device).unsqueeze(1)

            self._scalars = {
                "lr64": lr,
                "lr": column(lr),
                "decoupled": column(lr * decay * is_adamw),
                "l2": column(decay * ~is_adamw),
                "is_sgd": is_sgd.to(self.device).unsqueeze(1),
                "any_adamw": bool((is_adamw & (decay > 0)).any()),
                "any_l2": bool((~is_adamw & (decay > 0)).any()),
                "any_adam": bool((~is_sgd).any()),
                "any_sgd": bool(is_sgd.any()),
            }
        return self._scalars
