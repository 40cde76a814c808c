"""`Preprocessing.standardize` in torch, so the exported program takes encoded rows and scales them itself."""

from __future__ import annotations

import torch
from torch import nn

from archsearch.trainers.data import Preprocessing


class InputScaling(nn.Module):
    """Encoded (unscaled) rows in, the model input out, with the arithmetic of `Preprocessing.standardize`.

    "standard" stays in float32, as it always was. "quantile" works in float64, as numpy does: near the tails a
    probability in float32 (1 - 1e-7 rounds to 1 - 1.2e-7) would move norm.ppf by 0.03.
    """

    def __init__(self, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(preprocessing.mean, dtype=torch.float32))  # (n_inputs,)
        self.register_buffer("scale", torch.tensor(preprocessing.scale, dtype=torch.float32))  # (n_inputs,)
        self.clip = preprocessing.clip
        numeric = preprocessing.numeric_features
        self.quantile = preprocessing.scaling == "quantile" and len(numeric) > 0
        if self.quantile:
            quantiles = [preprocessing.quantiles[j] for j in numeric]
            self.register_buffer("numeric", torch.tensor(numeric, dtype=torch.int64))  # (n_numeric,)
            self.register_buffer("quantiles", torch.tensor(quantiles, dtype=torch.float64))  # (n_numeric, n_q)
            self.register_buffer("references", torch.linspace(0.0, 1.0, len(quantiles[0]), dtype=torch.float64))

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        scaled = (encoded - self.mean) / self.scale  # (batch, n_inputs)
        if self.quantile:
            values = encoded.index_select(1, self.numeric).double().T.contiguous()  # (n_numeric, batch)
            ranks = 0.5 * (self._interpolate(values, right=False) + self._interpolate(values, right=True))
            normal = torch.special.ndtri(ranks).T.to(scaled.dtype)  # (batch, n_numeric)
            scaled = scaled.index_copy(1, self.numeric, normal)
        if self.clip is not None:
            scaled = scaled.clamp(-self.clip, self.clip)
        return scaled

    def _interpolate(self, values: torch.Tensor, *, right: bool) -> torch.Tensor:
        """The twin of `data._interpolate`, for every numeric feature at once; values (n_numeric, batch)."""
        n = self.quantiles.shape[1]
        i = torch.searchsorted(self.quantiles, values, right=right).clamp(1, n - 1)  # (n_numeric, batch)
        low, high = self.quantiles.gather(1, i - 1), self.quantiles.gather(1, i)
        gap = high - low
        step = (values >= high) if right else (values > low)
        t = torch.where(gap > 0, (values - low) / torch.where(gap > 0, gap, torch.ones_like(gap)), step.double())
        ref_low, ref_high = self.references[i - 1], self.references[i]
        return ref_low + t.clamp(0.0, 1.0) * (ref_high - ref_low)
