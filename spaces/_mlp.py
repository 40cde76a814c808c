"""The MLP search space: ranges in, one :class:`Candidate` per Optuna trial out."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from archsearch.base import is_int, is_sequence
from archsearch.spaces._candidate import (
    ACTIVATIONS,
    EMBEDDING_DIM,
    EMBEDDINGS,
    HEADS,
    LR_SCHEDULES,
    NORMALIZATIONS,
    OPTIMIZERS,
    Candidate,
    Hyperparameters,
    NetSpec,
)
from archsearch.spaces._validation import (
    InvalidSpaceError,
    check_bool,
    check_choices,
    check_float,
    check_float_range,
    check_int,
    check_int_range,
    check_keys,
    check_name,
    error,
    listing,
)

if TYPE_CHECKING:
    from optuna.trial import BaseTrial


SHAPES = ("free", "uniform", "funnel")
# Bounds that catch typos (an extra zero) long before memory does; an MLP this deep or wide is no MLP search.
MAX_LAYERS = 64
MAX_WIDTH = 65536
MAX_BATCH_SIZE = 2**20  # a full batch of a million rows
MAX_EMBEDDING_DIM = 1024
FUNNELS = ("geometric", "linear")
LABEL_SMOOTHING_STEP = 0.01  # a grid, so that 0.0 (no smoothing) is reachable exactly
# A new study's first trial after the linear model and the user's baselines (`recipe_baseline`): the
# network and recipe that trained best by hand on digits, breast_cancer and phoneme (BENCHMARKS.md
# "Training recipe defaults": 3 x 256 ReLU, AdamW at 1e-3, batch 128, cosine, batch norm; label smoothing
# 0.1 helped on all three), each value moved to the nearest one the space allows.
RECIPE_BASELINE: dict[str, Any] = {
    "width": 256,
    "n_layers": 3,
    "dropout": 0.0,
    "activation": "relu",
    "lr": 1e-3,
    "use_weight_decay": False,
    "batch_size": 128,
    "optimizer": "adamw",
    "lr_schedule": "cosine",
    "label_smoothing": 0.1,
    "normalization": "batch",
    "embedding": "none",  # as measured by hand; the search tries "pl" on other trials
}


@dataclass(frozen=True)
class MLPSpace:
    """Ranges for the architecture and training hyperparameters of an MLP.

    Every field is validated at construction; lists are stored as tuples. A range with ``low == high``
    is still suggested to Optuna (as a single-value distribution), so ``trial.params`` always holds the
    whole candidate and :meth:`fixed_params` can always pin it. Only a feature switched off adds no
    parameter: ``dropout=(0.0, 0.0)`` (no Dropout layers), ``weight_decay=(0.0, 0.0)``,
    ``lr_schedule=("constant",)``, ``label_smoothing=(0.0, 0.0)`` and ``normalization=("none",)``. So
    trials of studies made before the last three existed hold none of their parameters, and replaying
    their params through a space with those values gives the candidate they trained.

    Parameters sampled, in this order (``i < n_layers``):

    - ``n_layers`` (int, in ``layers``).
    - ``width_i`` for shape ``"free"``; only ``width_0`` for ``"uniform"`` and ``"funnel"``, plus
      ``funnel_ratio`` for ``"funnel"`` with 2 layers or more. A funnel's layer ``i`` has width
      ``w0 * r**i`` (``"geometric"``) or ``w0 * (1 - (1 - r) * i / (n_layers - 1))`` (``"linear"``,
      the last layer is ``w0 * r``), rounded, and never below ``width[0]`` (nor above ``w0``).
    - ``dropout_i`` on a grid of ``dropout_step``, so ``dropout[0]`` (0.0: no Dropout) is reachable.
    - ``activation``, only for 1 layer or more; a linear model records ``activation[0]``.
    - ``embedding``, only for 1 layer or more and unless ``embedding`` is ``("none",)``; then
      ``embedding_dim`` when the trial's embedding is not ``"none"``. Depth 0 is always the plain linear
      model, so that the depth-0 trials stay the linear baseline every report compares against (an embedded
      depth-0 model is a different, non-linear family).
    - ``lr`` (log scale).
    - ``use_weight_decay`` (``False``/``True``) when ``weight_decay[0] == 0 < weight_decay[1]``, then
      ``weight_decay`` (log scale, from ``weight_decay_min``) if true; ``weight_decay`` alone (log
      scale) when ``weight_decay[0] > 0``.
    - ``batch_size``, ``optimizer`` (categorical).
    - ``lr_schedule`` (categorical), unless it is ``("constant",)``.
    - ``label_smoothing`` on a grid of :data:`LABEL_SMOOTHING_STEP`, unless it is ``(0.0, 0.0)``.
      The trainer applies it to classification only (see ``archsearch`` ``train_settings``).
    - ``normalization`` (categorical), only for 1 layer or more, unless it is ``("none",)``.

    Args:
        layers: Range of the number of hidden layers, inclusive; 0 is a linear (softmax) model.
        width: Range of the hidden widths, inclusive.
        width_log: Sample widths on a log scale.
        width_step: Width grid step; above 1 only with ``width_log=False`` (Optuna cannot combine both).
        shape: One of :data:`SHAPES`: independent widths, one shared width, or a shrinking funnel.
        funnel: One of :data:`FUNNELS`, how a funnel shrinks.
        funnel_ratio: Range of the ratio ``r`` between a funnel's last and first width (linear) or
            between neighbours (geometric), in ``(0, 1]``.
        dropout: Range of each layer's dropout, in ``[0, 1)``.
        dropout_step: Grid step of ``dropout``; must divide its span.
        activation: Activation choices, from :data:`ACTIVATIONS`.
        embedding: Numeric-feature embedding choices, from :data:`EMBEDDINGS` (a single name fixes it);
            ``("none",)`` switches embeddings off.
        embedding_dim: Choices of values per embedded feature (a single int fixes it).
        lr: Learning rate range, > 0.
        weight_decay: Weight decay range, >= 0; a zero lower end makes "no weight decay" a choice.
        weight_decay_min: Smallest non-zero weight decay when ``weight_decay[0]`` is 0.
        batch_size: Batch size choices.
        optimizer: Optimizer choices, from :data:`OPTIMIZERS`.
        lr_schedule: Learning-rate schedule choices, from :data:`LR_SCHEDULES`: ``"constant"``,
            ``"cosine"`` (cosine decay to 0) or ``"onecycle"`` (linear decay to 0), each after the
            ``[train]`` warm-up, over the whole epoch budget.
        label_smoothing: Range of the cross-entropy label smoothing, in ``[0, 0.5)``; its span must be
            a multiple of :data:`LABEL_SMOOTHING_STEP`.
        normalization: Norm layer choices after each hidden ``Linear``, from :data:`NORMALIZATIONS`.
        baselines: Hidden widths of architectures to try first (see :meth:`fixed_params`); each must fit
            ``layers`` and, for shape ``"uniform"``, have equal widths.
        recipe_baseline: Try :data:`RECIPE_BASELINE` (moved into the space, see :meth:`recipe_params`)
            early in a new study, after the linear model and ``baselines``: the sampler then starts from
            a network known to train well instead of only from random ones. When ``embedding`` offers
            ``"pl"``, the same recipe with that embedding is tried next.

    Example:
        >>> import optuna
        >>> space = MLPSpace(layers=(1, 2), width=(32, 128), shape="funnel")
        >>> study = optuna.create_study()
        >>> study.enqueue_trial(space.fixed_params([64, 32]))
        >>> space.sample(study.ask()).architecture.widths[0]
        64
    """

    layers: tuple[int, int] = (0, 3)
    width: tuple[int, int] = (16, 512)
    width_log: bool = True
    width_step: int = 1
    shape: str = "free"
    funnel: str = "geometric"
    funnel_ratio: tuple[float, float] = (0.25, 0.9)
    dropout: tuple[float, float] = (0.0, 0.5)
    dropout_step: float = 0.05
    activation: tuple[str, ...] = ("relu", "gelu", "tanh", "silu")
    # Searched by default: on the quality benchmark's 9 tables, 4 seeds, the default search with ["none", "pl"]
    # tested better than with "none" alone in 23 of 36 table-seed pairs and worse in 8 (BENCHMARKS.md section 6).
    embedding: tuple[str, ...] = ("none", "pl")
    embedding_dim: tuple[int, ...] = (EMBEDDING_DIM,)
    lr: tuple[float, float] = (1e-4, 3e-2)
    weight_decay: tuple[float, float] = (0.0, 1e-3)
    weight_decay_min: float = 1e-6
    batch_size: tuple[int, ...] = (64, 128, 256)
    optimizer: tuple[str, ...] = ("adam", "adamw")
    # Chosen from BENCHMARKS.md "Training recipe defaults"; the values meaning "off" are in the docstring.
    lr_schedule: tuple[str, ...] = ("constant", "cosine")
    label_smoothing: tuple[float, float] = (0.0, 0.2)
    normalization: tuple[str, ...] = ("none", "batch", "layer")
    baselines: tuple[tuple[int, ...], ...] = ()
    recipe_baseline: bool = True
    # Choices of the data's feature blocks to read, e.g. (("vgg",), ("xception",), ("vgg", "xception")): "one
    # backbone or both" searched as the categorical parameter `blocks` ("vgg+xception"). Empty: every input.
    blocks: tuple[tuple[str, ...], ...] = ()
    # Output heads of a classifier, searched when more than one; "one_vs_rest" is kept out of the default
    # until it pays (BENCHMARKS.md, issue #24).
    head: tuple[str, ...] = ("softmax",)
    # Budgets on the network's size (archsearch.spaces.net_size): a sampled candidate over either is not trained.
    max_params: int | None = None
    max_flops: int | None = None

    def __post_init__(self) -> None:
        o = "[space]"  # the section the user writes, not this class
        # Frozen dataclass: normalised values are written back through object.__setattr__.
        set_ = functools.partial(object.__setattr__, self)
        self._check_architecture(o, set_)
        self._check_training(o, set_)
        self._check_baselines(o, set_)
        self._check_budgets(o)

    def _check_architecture(self, o: str, set_: Callable[[str, Any], None]) -> None:
        """Layers, widths, shape, dropout, activation and embedding."""
        set_("layers", check_int_range(o, "layers", self.layers, low=0, high=MAX_LAYERS))
        set_("width", check_int_range(o, "width", self.width, low=1, high=MAX_WIDTH))
        set_("width_log", check_bool(o, "width_log", self.width_log))
        set_("width_step", check_int(o, "width_step", self.width_step, low=1))
        if self.width_step > 1 and self.width_log:
            rule = "1 when width_log is true (Optuna cannot combine step and log; set width_log to false)"
            raise error(o, "width_step", rule, self.width_step)
        span = self.width[1] - self.width[0]
        if span % self.width_step:
            raise error(o, "width_step", f"a divisor of width[1] - width[0] = {span}", self.width_step)
        check_name(o, "shape", self.shape, SHAPES)
        check_name(o, "funnel", self.funnel, FUNNELS)
        set_(
            "funnel_ratio",
            check_float_range(
                o, "funnel_ratio", self.funnel_ratio, "0 < low <= high <= 1", lambda lo, hi: 0 < lo <= hi <= 1
            ),
        )
        set_(
            "dropout",
            check_float_range(o, "dropout", self.dropout, "0 <= low <= high < 1", lambda lo, hi: 0 <= lo <= hi < 1),
        )
        set_("dropout_step", check_float(o, "dropout_step", self.dropout_step, "a float > 0", lambda v: v > 0))
        # Same test as Optuna's own, which otherwise moves the upper end down with only a warning.
        low, high = (Decimal(str(end)) for end in self.dropout)
        if (high - low) % Decimal(str(self.dropout_step)):
            rule = f"a float that divides dropout[1] - dropout[0] = {high - low}"
            raise error(o, "dropout_step", rule, self.dropout_step)
        set_(
            "activation",
            check_choices(
                o, "activation", self.activation, f"names from {listing(ACTIVATIONS)}", ACTIVATIONS.__contains__
            ),
        )
        # A single value fixes the choice, as `embedding = "pl"` reads in a config.
        embedding = (self.embedding,) if isinstance(self.embedding, str) else self.embedding
        set_(
            "embedding",
            check_choices(o, "embedding", embedding, f"names from {listing(EMBEDDINGS)}", EMBEDDINGS.__contains__),
        )
        dims = (self.embedding_dim,) if is_int(self.embedding_dim) else self.embedding_dim
        dims = check_choices(
            o,
            "embedding_dim",
            dims,
            f"ints in the range [1, {MAX_EMBEDDING_DIM:,}]",
            lambda v: is_int(v) and 1 <= v <= MAX_EMBEDDING_DIM,
        )
        set_("embedding_dim", tuple(int(d) for d in dims))

    def _check_training(self, o: str, set_: Callable[[str, Any], None]) -> None:
        """Learning rate, weight decay, batch size, optimizer and the recipe (schedule, smoothing, norm layer)."""
        set_("lr", check_float_range(o, "lr", self.lr, "0 < low <= high", lambda lo, hi: 0 < lo <= hi))
        set_(
            "weight_decay",
            check_float_range(o, "weight_decay", self.weight_decay, "0 <= low <= high", lambda lo, hi: 0 <= lo <= hi),
        )
        # weight_decay_min only bounds the log range when 0 is a separate choice; it must fit under the top.
        wd_low, wd_high = self.weight_decay
        if wd_low == 0 < wd_high:
            rule = f"a float in (0, weight_decay[1]] = (0, {wd_high})"
        else:
            rule, wd_high = "a float > 0", float("inf")
        set_(
            "weight_decay_min",
            check_float(o, "weight_decay_min", self.weight_decay_min, rule, lambda v: 0 < v <= wd_high),
        )
        batch_sizes = check_choices(
            o,
            "batch_size",
            self.batch_size,
            f"ints in the range [1, {MAX_BATCH_SIZE:,}]",
            lambda v: is_int(v) and 1 <= v <= MAX_BATCH_SIZE,
        )
        set_("batch_size", tuple(int(b) for b in batch_sizes))
        set_(
            "optimizer",
            check_choices(o, "optimizer", self.optimizer, f"names from {listing(OPTIMIZERS)}", OPTIMIZERS.__contains__),
        )
        set_(
            "lr_schedule",
            check_choices(
                o, "lr_schedule", self.lr_schedule, f"names from {listing(LR_SCHEDULES)}", LR_SCHEDULES.__contains__
            ),
        )
        set_(
            "label_smoothing",
            check_float_range(
                o, "label_smoothing", self.label_smoothing, "0 <= low <= high < 0.5", lambda lo, hi: 0 <= lo <= hi < 0.5
            ),
        )
        low, high = (Decimal(str(end)) for end in self.label_smoothing)
        if (high - low) % Decimal(str(LABEL_SMOOTHING_STEP)):
            rule = f"a pair of floats (low, high) whose span is a multiple of {LABEL_SMOOTHING_STEP}"
            raise error(o, "label_smoothing", rule, self.label_smoothing)
        set_(
            "normalization",
            check_choices(
                o,
                "normalization",
                self.normalization,
                f"names from {listing(NORMALIZATIONS)}",
                NORMALIZATIONS.__contains__,
            ),
        )

    def _check_baselines(self, o: str, set_: Callable[[str, Any], None]) -> None:
        """The enqueued baseline width lists, inside the width range."""
        if not is_sequence(self.baselines):
            raise error(o, "baselines", "a list of width lists", self.baselines)
        set_(
            "baselines",
            tuple(self._check_widths(o, f"baselines[{k}]", widths) for k, widths in enumerate(self.baselines)),
        )
        if not isinstance(self.recipe_baseline, bool):
            raise error(o, "recipe_baseline", "true or false", self.recipe_baseline)
        set_("blocks", _check_block_choices(o, self.blocks))
        head = (self.head,) if isinstance(self.head, str) else self.head
        set_("head", check_choices(o, "head", head, f"names from {listing(HEADS)}", HEADS.__contains__))
        # A baseline outside the width range would be a trial the sampler can never learn from or revisit.
        low, high = self.width
        for k, widths in enumerate(self.baselines):
            if any(not low <= w <= high for w in widths):
                raise error(
                    o, f"baselines[{k}]", f"a list of widths in the 'width' range [{low}, {high}]", list(widths)
                )

    def sample(self, trial: BaseTrial, *, task: str | None = None) -> Candidate:
        """Suggest the parameters listed in the class docstring and return the candidate they describe.

        Args:
            trial: An Optuna trial, or anything with its ``suggest_int``, ``suggest_float`` and
                ``suggest_categorical`` methods.
            task: ``"regression"`` leaves ``label_smoothing`` unsuggested (it has no meaning there, and a
                dimension that changes nothing only dilutes the sampler's model); None suggests every key.
        """
        n_layers = trial.suggest_int("n_layers", *self.layers)
        widths = self._sample_widths(trial, n_layers)
        if self.dropout == (0.0, 0.0):
            dropouts = (0.0,) * n_layers
        else:
            dropouts = tuple(
                trial.suggest_float(f"dropout_{i}", *self.dropout, step=self.dropout_step) for i in range(n_layers)
            )
        # A linear model has no activation to search; recording the first keeps NetSpec valid.
        activation = self.activation[0]
        if n_layers:
            activation = trial.suggest_categorical("activation", self.activation)
        embedding, embedding_dim = "none", self.embedding_dim[0]
        if n_layers and self.embedding != ("none",):
            embedding = trial.suggest_categorical("embedding", self.embedding)
            if embedding != "none":
                embedding_dim = trial.suggest_categorical("embedding_dim", self.embedding_dim)
        # Suggested in this order since before the spec held the norm layer: the sampler's draws stay as they were.
        hyperparameters = dict(
            lr=trial.suggest_float("lr", *self.lr, log=True),
            weight_decay=self._sample_weight_decay(trial),
            batch_size=trial.suggest_categorical("batch_size", self.batch_size),
            optimizer=trial.suggest_categorical("optimizer", self.optimizer),
            **self._sample_recipe(trial, n_layers, task),
        )
        # Last, so that the draws of every other parameter are those of a space without blocks.
        blocks = ()
        if self.blocks:
            blocks = tuple(trial.suggest_categorical("blocks", ["+".join(b) for b in self.blocks]).split("+"))
        head = self.head[0]
        if len(self.head) > 1:
            head = trial.suggest_categorical("head", self.head)
        architecture = NetSpec(
            widths=widths,
            dropouts=dropouts,
            activation=activation,
            normalization=hyperparameters.pop("normalization", "none"),
            embedding=embedding,
            embedding_dim=embedding_dim,
            blocks=blocks,
            head=head,
        )
        return Candidate(architecture=architecture, hyperparameters=Hyperparameters(**hyperparameters))

    def fixed_params(self, widths: Sequence[int], **overrides: Any) -> dict[str, Any]:
        """Return the params that make :meth:`sample` build these hidden widths, for ``enqueue_trial``.

        Parameters not given are sampled as usual. For shape ``"free"`` this pins ``n_layers`` and every
        ``width_i``; for ``"uniform"`` and ``"funnel"`` only ``n_layers`` and ``width_0``, so a funnel's
        later widths follow its sampled ``funnel_ratio`` unless that is given in ``overrides``.

        Args:
            widths: Hidden widths, input side first; ``[]`` for the linear model.
            **overrides: Further parameters by their sampled name, e.g. ``lr=1e-3``, ``dropout_0=0.0``,
                ``use_weight_decay=False``.

        Raises:
            InvalidSpaceError: If the widths cannot be built by this space (depth outside ``layers``,
                unequal widths for shape ``"uniform"``), or an override is not a parameter this space
                samples for these widths, or its value is not valid for it.

        Example:
            >>> MLPSpace().fixed_params([])
            {'n_layers': 0}
        """
        owner = "MLPSpace.fixed_params"
        widths = self._check_widths(owner, "widths", widths)
        if "n_layers" in overrides or any(name.startswith("width_") for name in overrides):
            raise InvalidSpaceError(
                f"{owner} takes the architecture from 'widths' only; drop the 'n_layers' and 'width_*' "
                f"overrides. Got {sorted(overrides)}."
            )
        n_width_params = len(widths) if self.shape == "free" else min(len(widths), 1)
        params: dict[str, Any] = {"n_layers": len(widths)}
        params.update((f"width_{i}", widths[i]) for i in range(n_width_params))
        params.update(overrides)
        # Running sample() on the params proves they reproduce the widths and validates the overrides.
        probe = _ParamProbe(params, owner)
        self.sample(probe)
        unused = [name for name in overrides if name not in probe.suggested]
        if unused:
            raise InvalidSpaceError(
                f"The override {unused[0]!r} of {owner} is not sampled by this space for widths "
                f"{list(widths)}; the sampled parameters are: {', '.join(probe.suggested)}."
            )
        return params

    def _check_budgets(self, owner: str) -> None:
        for budget in ("max_params", "max_flops"):
            if getattr(self, budget) is not None:
                object.__setattr__(self, budget, check_int(owner, budget, getattr(self, budget), low=1))

    def smallest_net(self) -> NetSpec:
        """The architecture of fewest parameters and FLOPs the space can sample (what a budget must allow).

        Depth 0 is the plain linear model; otherwise the fewest layers at the narrowest width, with no
        embedding and no norm layer where the space allows none (else the smallest it has).
        """
        depth = self.layers[0]
        embedding = (
            "none" if depth == 0 or "none" in self.embedding else min(self.embedding, key=("pl", "periodic").index)
        )
        normalization = "none" if depth == 0 or "none" in self.normalization else "layer"
        if normalization == "layer" and "layer" not in self.normalization:
            normalization = "batch"
        return NetSpec(
            widths=(self.width[0],) * depth,
            dropouts=(0.0,) * depth,
            activation=self.activation[0],
            normalization=normalization,
            embedding=embedding,
            embedding_dim=min(self.embedding_dim),
        )

    def is_compatible_with(self, other: MLPSpace) -> list[str]:
        """Return the fields that differ in a way that makes ``other``'s stored trials incompatible.

        Every field but ``baselines``, ``recipe_baseline`` (which only choose the first trials) and the budgets
        (which only refuse candidates before they train)
        changes what a trial's parameters mean, so the answer is the other differing fields; an empty list
        means compatible. ``embedding_dim`` counts only where a space can sample an embedding.
        """
        # Without an embedding on either side, its values per feature change nothing.
        unused = ("embedding_dim",) if self.embedding == other.embedding == ("none",) else ()
        return [
            field.name
            for field in dataclasses.fields(self)
            if field.name not in ("baselines", "recipe_baseline", "max_params", "max_flops", *unused)
            and getattr(self, field.name) != getattr(other, field.name)
        ]

    def replay(self, params: Mapping[str, Any], number: int = 0) -> Candidate:
        """The candidate a stored trial's ``params`` describe (export, refit and sensitivity replay them).

        A regression trial has no ``label_smoothing`` parameter (see :meth:`sample`), so params without
        it replay with smoothing off.

        Example:
            >>> MLPSpace().replay({"n_layers": 0, "lr": 1e-3, "use_weight_decay": False, "batch_size": 64,
            ...     "optimizer": "adam", "lr_schedule": "constant"}).hyperparameters.label_smoothing
            0.0
        """
        from optuna.trial import FixedTrial

        task = None if "label_smoothing" in params else "regression"
        return self.sample(FixedTrial(dict(params), number), task=task)

    def recipe_params(self, *, task: str | None = None, embedding: str | None = None) -> dict[str, Any]:
        """Every parameter of :data:`RECIPE_BASELINE`'s trial in this space, for ``enqueue_trial``.

        A number outside its range is clipped to it (widths, depth, dropout, lr, label smoothing), a
        choice the space lacks becomes the space's first (activation, optimizer, schedule, norm; the
        batch size nearest 128), and a funnel's ratio is its upper end (the widest funnel). ``embedding``
        replaces the recipe's own ("none"), under the same rule.

        Example:
            >>> params = MLPSpace(layers=(0, 2), width=(16, 128)).recipe_params()
            >>> params["n_layers"], params["width_0"], params["width_1"], params["lr_schedule"]
            (2, 128, 128, 'cosine')
        """
        probe = _RecipeProbe(self, {} if embedding is None else {"embedding": embedding})
        self.sample(probe, task=task)
        return probe.answers

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (tuples become lists), the inverse of :meth:`from_dict`."""
        return {field.name: _to_lists(getattr(self, field.name)) for field in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MLPSpace:
        """Build from a ``[space]`` config table; missing keys take defaults, unknown keys raise.

        Raises:
            InvalidSpaceError: On an unknown key or an invalid value.
        """
        check_keys("[space]", data, tuple(field.name for field in dataclasses.fields(cls)))
        return cls(**data)

    def _check_widths(self, owner: str, name: str, widths: Any) -> tuple[int, ...]:
        if not (is_sequence(widths) and all(is_int(w) and w >= 1 for w in widths)):
            raise error(owner, name, "a list of ints >= 1", widths)
        low, high = self.layers
        if not low <= len(widths) <= high:
            raise error(owner, name, f"a list of {low} to {high} widths (the 'layers' range)", widths)
        if self.shape == "uniform" and len(set(widths)) > 1:
            raise error(owner, name, "a list of equal widths when shape is 'uniform'", widths)
        return tuple(int(w) for w in widths)

    def _sample_widths(self, trial: BaseTrial, n_layers: int) -> tuple[int, ...]:
        def suggest(i: int) -> int:
            return trial.suggest_int(f"width_{i}", *self.width, step=self.width_step, log=self.width_log)

        if n_layers == 0:
            return ()
        if self.shape == "free":
            return tuple(suggest(i) for i in range(n_layers))
        first = suggest(0)
        if self.shape == "uniform" or n_layers == 1:
            return (first,) * n_layers
        ratio = trial.suggest_float("funnel_ratio", *self.funnel_ratio)
        if self.funnel == "geometric":
            scales = [ratio**i for i in range(n_layers)]
        else:
            scales = [1 - (1 - ratio) * i / (n_layers - 1) for i in range(n_layers)]
        # The user's lower width bound holds for every layer; min() covers an enqueued first width below it.
        floor = min(first, self.width[0])
        return tuple(max(floor, round(first * scale)) for scale in scales)

    def _sample_weight_decay(self, trial: BaseTrial) -> float:
        low, high = self.weight_decay
        if high == 0:
            return 0.0
        if low == 0:
            # A log scale cannot reach 0, so "no weight decay" is its own choice.
            if not trial.suggest_categorical("use_weight_decay", (False, True)):
                return 0.0
            low = self.weight_decay_min
        return trial.suggest_float("weight_decay", low, high, log=True)

    def _sample_recipe(self, trial: BaseTrial, n_layers: int, task: str | None) -> dict[str, Any]:
        """The training recipe; a value that is switched off is not suggested (see the class docstring)."""
        recipe: dict[str, Any] = {}
        if self.lr_schedule != ("constant",):
            recipe["lr_schedule"] = trial.suggest_categorical("lr_schedule", self.lr_schedule)
        if self.label_smoothing != (0.0, 0.0) and task != "regression":
            recipe["label_smoothing"] = trial.suggest_float(
                "label_smoothing", *self.label_smoothing, step=LABEL_SMOOTHING_STEP
            )
        # A linear model has no hidden layer to normalize.
        if n_layers and self.normalization != ("none",):
            recipe["normalization"] = trial.suggest_categorical("normalization", self.normalization)
        return recipe


class _ParamProbe:
    """A stand-in trial that answers from fixed params (else the lowest value) and records the names asked."""

    def __init__(self, params: Mapping[str, Any], owner: str) -> None:
        self._params = params
        self._owner = owner
        self.suggested: list[str] = []

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        self.suggested.append(name)
        return self._params.get(name, low)

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        self.suggested.append(name)
        return self._params.get(name, low)

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self.suggested.append(name)
        value = self._params.get(name, choices[0])
        # Optuna warns on an out-of-range number but fails on an unknown choice: catch it here instead.
        if value not in choices:
            raise error(self._owner, name, f"one of {listing(tuple(choices))}", value)
        return value


class _RecipeProbe:
    """A stand-in trial that answers every suggestion from RECIPE_BASELINE, moved into the space's ranges."""

    def __init__(self, space: MLPSpace, overrides: dict[str, Any]) -> None:
        self.space = space
        self.overrides = overrides
        self.answers: dict[str, Any] = {}

    def _want(self, name: str) -> Any:
        if name in self.overrides:
            return self.overrides[name]
        if name.startswith("width_"):
            return RECIPE_BASELINE["width"]
        if name.startswith("dropout_"):
            return RECIPE_BASELINE["dropout"]
        return RECIPE_BASELINE.get(name)

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        want = self._want(name)
        value = low if want is None else min(max(int(want), low), high)
        self.answers[name] = value
        return value

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        want = self._want(name)
        if name == "funnel_ratio":
            want = high
        value = low if want is None else min(max(float(want), low), high)
        if step is not None and want is not None:
            # On the grid from low, as Optuna's distribution requires.
            value = min(low + round((value - low) / step) * step, high)
            value = float(Decimal(str(value)).quantize(Decimal(str(step))))
        self.answers[name] = value
        return value

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        want = self._want(name)
        if name == "batch_size":
            value = min(choices, key=lambda b: (abs(b - RECIPE_BASELINE["batch_size"]), b))
        else:
            value = want if want in choices else choices[0]
        self.answers[name] = value
        return value


def _check_block_choices(owner: str, value: Any) -> tuple[tuple[str, ...], ...]:
    rule = 'a list of distinct lists of block names, e.g. [["vgg"], ["xception"], ["vgg", "xception"]]'
    if not is_sequence(value) or not all(
        is_sequence(c) and c and all(isinstance(n, str) and n and "+" not in n for n in c) and len(set(c)) == len(c)
        for c in value
    ):
        raise error(owner, "blocks", rule, value)
    choices = tuple(tuple(c) for c in value)
    if len({frozenset(c) for c in choices}) != len(choices):
        raise error(owner, "blocks", rule, [list(c) for c in value])
    return choices


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, tuple) else value
