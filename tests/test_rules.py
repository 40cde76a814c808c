"""One rule, one place: the names that spaces/, search/config.py and trainers/ each accept are the same.

spaces/ may not import trainers/ (it stays free of torch), so a few name lists exist twice; this test is
what keeps the copies equal.
"""

from __future__ import annotations

import pytest

import archsearch.spaces as spaces
import archsearch.trainers as trainers
from archsearch.config import ConfigError, TrainConfig
from archsearch.trainers import names


def test_spaces_offer_exactly_what_the_trainer_builds() -> None:
    """Check that every activation, optimizer, schedule, norm layer and embedding of the space is one the trainer knows."""
    assert spaces.ACTIVATIONS == names.ACTIVATIONS
    assert spaces.OPTIMIZERS == names.OPTIMIZERS
    assert spaces.LR_SCHEDULES == names.LR_SCHEDULES
    assert spaces.NORMALIZATIONS == names.NORMALIZATIONS
    assert spaces.EMBEDDINGS == names.EMBEDDINGS


def test_trainer_modules_use_the_shared_names() -> None:
    """Check that the model builder's activations are the names module's, so the two cannot drift."""
    from archsearch.trainers._model import ACTIVATIONS as modules

    assert tuple(modules) == names.ACTIVATIONS


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_config_and_trainer_accept_the_same_devices(device: str) -> None:
    """Check that a device name the config accepts is one TrainSettings accepts, and vice versa."""
    assert names.is_device_name(device)
    assert TrainConfig(device=device).device == device
    assert trainers.TrainSettings(device=device).device == device


@pytest.mark.parametrize("device", ["gpu", "cuda:", "cuda:x", "CPU", "mps", ""])
def test_config_and_trainer_refuse_the_same_devices(device: str) -> None:
    """Check that a device name refused by one is refused by both, each naming the rule."""
    assert not names.is_device_name(device)
    with pytest.raises(
        ConfigError, match=r"The 'device' parameter of \[train\] must be one of 'auto', 'cpu', 'cuda' or 'cuda:N'"
    ):
        TrainConfig(device=device)
    with pytest.raises(
        ValueError, match=r"The 'device' parameter of TrainSettings must be one of 'auto', 'cpu', 'cuda' or 'cuda:N'"
    ):
        trainers.TrainSettings(device=device)
