"""A network's size from its architecture (archsearch.spaces.net_size) against the network the trainer builds,
and the latency the search measures (archsearch.trainers.measure_latency)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from archsearch.spaces import NetSpec, net_size
from archsearch.trainers import count_parameters, measure_latency
from archsearch.trainers._select import build_input, build_network
from archsearch.trainers.data import DataSpec, Preprocessing, load_data
from archsearch.trainers.engine import build_embedding, build_mlp

N_INPUTS, N_OUTPUTS = 7, 3
NUMERIC = [0, 2, 3, 5]

NETS = [
    NetSpec((), (), "relu"),
    NetSpec((32, 16), (0.1, 0.0), "relu"),
    NetSpec((8, 8, 4), (0.0, 0.0, 0.2), "gelu", normalization="batch"),
    NetSpec((12,), (0.0,), "silu", normalization="layer", embedding="pl", embedding_dim=5),
    NetSpec((6, 9), (0.0, 0.0), "tanh", normalization="batch", embedding="periodic", embedding_dim=4),
]


def _built(net: NetSpec) -> torch.nn.Module:
    rows = torch.randn(40, N_INPUTS).numpy()
    embedder = build_embedding(net.embedding, net.embedding_dim, N_INPUTS, NUMERIC, train_rows=rows)
    return build_mlp(
        N_INPUTS,
        net.widths,
        net.dropouts,
        net.activation,
        N_OUTPUTS,
        embedding=embedder,
        normalization=net.normalization,
    ).eval()


@pytest.mark.parametrize("net", NETS, ids=lambda n: f"{n.widths}-{n.normalization}-{n.embedding}")
def test_size_counts_what_the_state_dict_ships_and_the_flop_counter_counts(net: NetSpec) -> None:
    size = net_size(net, N_INPUTS, N_OUTPUTS, n_numeric=len(NUMERIC))
    model = _built(net)
    assert size.params == sum(t.numel() for t in model.state_dict().values())
    assert size.trainable == count_parameters(model)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.randn(1, N_INPUTS))
    assert size.flops == counter.get_total_flops()


def test_size_agrees_with_n_params_without_norm_layers() -> None:
    net = NetSpec((32, 16), (0.1, 0.0), "relu", embedding="pl", embedding_dim=4)
    assert net_size(net, 9, 2, n_numeric=5).trainable == net.n_params(9, 2, n_numeric=5)


def _mixed_table(tmp_path: Path) -> Preprocessing:
    """The preprocessing of a table whose encoded features are NUMERIC and one-hot columns, N_INPUTS in all."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "n0": rng.normal(size=60),
            "c1": rng.choice(["a", "b"], size=60),
            "n2": rng.normal(size=60),
            "n3": rng.normal(size=60),
            "c4": rng.choice(["u", "v"], size=60),
            "target": np.arange(60) % N_OUTPUTS,
        }
    )
    frame.to_csv(tmp_path / "mixed.csv", index=False)
    preprocessing = load_data(DataSpec(dataset=None, path=str(tmp_path / "mixed.csv"))).preprocessing
    assert len(preprocessing.encoded_names) == N_INPUTS and preprocessing.numeric_features == (0, 3, 4)
    return preprocessing


def test_latency_is_a_median_of_timed_forward_calls(tmp_path: Path) -> None:
    net = NETS[3]
    preprocessing = _mixed_table(tmp_path)
    rows = torch.randn(40, N_INPUTS).numpy()
    model = build_network(net, preprocessing, N_OUTPUTS, train_rows=rows)
    latency = measure_latency(
        net, preprocessing, N_OUTPUTS, model.state_dict(), num_threads=1, batch=64, min_run_time=0.01
    )
    assert 0 < latency.ms < 1000 and 0 < latency.batch_ms < 1000
    assert (latency.batch, latency.threads, latency.device) == (64, 1, "cpu")


def test_latency_refuses_weights_of_another_architecture(tmp_path: Path) -> None:
    preprocessing = _mixed_table(tmp_path)
    other = build_network(NETS[1], preprocessing, N_OUTPUTS).state_dict()
    with pytest.raises(RuntimeError, match="state_dict"):
        measure_latency(NETS[2], preprocessing, N_OUTPUTS, other, min_run_time=0.01)


@pytest.mark.parametrize("embedding", ["none", "pl"])
def test_a_network_on_one_block_is_sized_and_timed_at_that_blocks_width(tmp_path: Path, embedding: str) -> None:
    """Check that a network reading block a (6 of 12 features) is counted on 6 inputs, as the trainer builds it,
    and that its latency loads its trained weights (it failed on a block before: built on all 12)."""
    x = np.random.default_rng(0).normal(size=(120, 12)).astype(np.float32)
    np.savez(tmp_path / "two.npz", X=x, y=np.arange(120) % 3)
    data = load_data(DataSpec(dataset=None, path=str(tmp_path / "two.npz"), blocks={"a": [0, 6], "b": [6, 12]}))
    preprocessing = data.preprocessing
    net = NetSpec((8,), (0.0,), "relu", embedding=embedding, embedding_dim=4, blocks=("a",))
    embedder = build_input(net.embedding, net.embedding_dim, net.blocks, preprocessing, train_rows=data.x_train)
    model = build_mlp(12, net.widths, net.dropouts, net.activation, 3, embedding=embedder)
    n_inputs, n_numeric = preprocessing.input_counts(net.blocks)
    assert (n_inputs, n_numeric) == (6, 6)
    size = net_size(net, n_inputs, 3, n_numeric=n_numeric)
    assert size.params == sum(t.numel() for t in model.state_dict().values())
    assert size.params < net_size(net, 12, 3, n_numeric=12).params  # the count at the whole width overstates it
    latency = measure_latency(net, preprocessing, 3, model.state_dict(), min_run_time=0.01)
    assert latency.ms > 0
