"""One trained prompt model, several test protocols: the accuracy matrix of each, from a single training run.

Two test-time choices change the numbers a prompt method reports without changing what it learned
(google-research/l2p, commit dd8836e, and GT-RIPL/CODA-Prompt, commit 6417d4f, differ in both):

* **prompt selection** — per sample, or the batch's majority vote (L2P's and DualPrompt's
  ``batchwise_prompt``). With the references' single-experience test loaders the vote hands every image the
  prompts its task-mates prefer: the task identity leaks in through the batch (google-research/l2p#28);
* **evaluation scope** — the argmax over *all* classes of the benchmark (L2P and DualPrompt references) or
  over the classes *seen* so far (CODA-Prompt's reference): the latter cannot predict a class that does not
  exist yet.

:class:`ProtocolEvaluator` is an Avalanche plugin. After every training experience it evaluates the model on
the test sets of the experiences seen so far under each :class:`EvalProtocol`, so each protocol gets its own
accuracy matrix ``R[i, t]`` (``i <= t``) and therefore its own ``A_last`` *and* mean incremental accuracy ``Ā``,
while the model is trained once. It evaluates at the end of the first ``strategy.eval`` that follows a
training experience (:func:`~pecft_lib.evaluation.run_strategy` makes that call), so its time counts as
evaluation, not training, in the run's record; and it runs under a forked random-number generator, so
attaching it does not change the training run.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from avalanche.core import SupervisedPlugin

from ..benchmarks import ContinualBenchmark
from .batch_leakage import accuracy_per_experience
from .record import RunRecord

__all__ = ["EvalProtocol", "ProtocolEvaluator", "STANDARD_PROTOCOLS", "protocol_accuracy", "using_protocol"]

EVAL_SCOPES = ("all", "seen")  # the values of PromptClassifier.eval_scope


@dataclass(frozen=True)
class EvalProtocol:
    """How a trained prompt model is tested.

    Attributes:
        name: label of the protocol in records, tables and plots.
        batchwise_selection: ``True`` — the batch's majority vote over prompt ids is given to every sample;
            ``False`` — every sample selects its own prompts (this library's default).
        eval_scope: ``"all"`` classes of the benchmark or only the ``"seen"`` ones (unseen logits −∞).
        mixed_batches: ``False`` — one test loader per experience, so a batch holds one experience (the
            references); ``True`` — the test sets of the experiences seen so far shuffled together.
    """

    name: str
    batchwise_selection: bool = False
    eval_scope: str = "all"
    mixed_batches: bool = False

    def __post_init__(self) -> None:
        if self.eval_scope not in EVAL_SCOPES:
            raise ValueError(f"eval_scope must be one of {EVAL_SCOPES}, got {self.eval_scope!r}")


STANDARD_PROTOCOLS = (
    EvalProtocol("per-sample, all classes"),
    EvalProtocol("per-sample, seen classes", eval_scope="seen"),
    EvalProtocol("batch vote, all classes", batchwise_selection=True),
    EvalProtocol("batch vote, seen classes", batchwise_selection=True, eval_scope="seen"),
)
"""{per-sample selection, batch vote} × {all classes, seen classes}, single-experience test batches; the
first one is the protocol of this book."""


@contextmanager
def using_protocol(model: torch.nn.Module, protocol: EvalProtocol) -> Iterator[torch.nn.Module]:
    """Switch ``model``'s selection and evaluation scope to ``protocol`` inside the ``with`` block, then put
    its own settings back.

    The model needs an ``eval_scope`` attribute (every :class:`~pecft_lib.methods.prompting.PromptClassifier`)
    and, for a protocol with a vote, a dataclass ``config`` with a ``batchwise_selection`` field (L2P,
    DualPrompt). A model without that field selects per sample (or not at all, CODA-Prompt) and accepts
    per-sample protocols only.
    """
    if not hasattr(model, "eval_scope"):
        raise TypeError(f"{type(model).__name__} has no eval_scope; protocols apply to prompt models "
                        "(pecft_lib.methods.prompting.PromptClassifier)")
    config = getattr(model, "config", None)
    can_vote = dataclasses.is_dataclass(config) and any(
        f.name == "batchwise_selection" for f in dataclasses.fields(config))
    if protocol.batchwise_selection and not can_vote:
        raise TypeError(f"protocol {protocol.name!r} asks for batch-wise selection, but {type(model).__name__} "
                        "has no config.batchwise_selection to switch on (only L2P and DualPrompt vote)")
    scope = model.eval_scope
    model.eval_scope = protocol.eval_scope
    if can_vote:
        model.config = dataclasses.replace(config, batchwise_selection=protocol.batchwise_selection)
    try:
        yield model
    finally:
        model.eval_scope = scope
        if can_vote:
            model.config = config


@dataclass
class _SeenTestStream:
    """The part of a benchmark :func:`accuracy_per_experience` reads: its test stream (here a prefix)."""

    test_stream: list


def protocol_accuracy(
    model: torch.nn.Module,
    benchmark: ContinualBenchmark,
    protocol: EvalProtocol,
    batch_size: int,
    n_seen: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Accuracy of ``model`` on the test sets of the first ``n_seen`` experiences (all if ``None``) under
    ``protocol``; mixed batches mix those experiences only. The global random state is left untouched."""
    n_seen = benchmark.n_experiences if n_seen is None else n_seen
    if not 1 <= n_seen <= benchmark.n_experiences:
        raise ValueError(f"n_seen must be between 1 and {benchmark.n_experiences}, got {n_seen}")
    seen = _SeenTestStream(list(benchmark.test_stream)[:n_seen])
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), using_protocol(model, protocol):
        return accuracy_per_experience(model, seen, batch_size, mixed=protocol.mixed_batches, seed=seed)


class ProtocolEvaluator(SupervisedPlugin):
    """Evaluates the strategy's model under several protocols after every training experience.

    Attach it to a built strategy (:meth:`attach`) or pass it in the strategy's ``plugins``, train with
    :func:`~pecft_lib.evaluation.run_strategy` (or call ``strategy.eval`` after every experience), then
    :meth:`records` gives one :class:`RunRecord` per protocol (entries ``i > t`` are not measured).

    Args:
        benchmark: the benchmark the strategy is trained on.
        protocols: the protocols to evaluate; their names must be distinct.
        batch_size: test batch size (the vote's effect depends on it).
        seed: shuffle of mixed batches.
    """

    def __init__(self, benchmark: ContinualBenchmark, protocols: Sequence[EvalProtocol] = STANDARD_PROTOCOLS,
                 batch_size: int = 50, seed: int = 0):
        super().__init__()
        names = [p.name for p in protocols]
        if not protocols or len(set(names)) != len(names):
            raise ValueError(f"give at least one protocol, with distinct names; got {names}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.benchmark = benchmark
        self.protocols = tuple(protocols)
        self.batch_size = batch_size
        self.seed = seed
        self.trained = 0  # training stages finished
        self.evaluated = 0  # training stages whose protocols were evaluated
        n = benchmark.n_experiences
        self.matrices = {p.name: np.full((n, n), np.nan) for p in self.protocols}

    def attach(self, strategy: Any) -> "ProtocolEvaluator":
        """Add this plugin to an already built strategy (Avalanche calls the callbacks of everything in
        ``strategy.plugins``) and return it."""
        strategy.plugins.append(self)
        return self

    def after_training_exp(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        if self.trained >= self.benchmark.n_experiences:
            raise RuntimeError(f"the benchmark has {self.benchmark.n_experiences} experiences but the strategy "
                               f"trained a stage {self.trained + 1}; use a new ProtocolEvaluator per run")
        self.trained += 1

    def after_eval(self, strategy: Any, *args: Any, **kwargs: Any) -> None:
        """Evaluate every protocol once per training stage, at the first evaluation after it."""
        stage = self.trained - 1
        if stage < 0 or self.evaluated > stage:
            return
        if self.evaluated < stage:
            raise RuntimeError(f"training experience {self.evaluated + 1} was followed by no strategy.eval, so its "
                               "protocols were not evaluated; call strategy.eval after every experience "
                               "(run_strategy does)")
        for protocol in self.protocols:
            column = protocol_accuracy(strategy.model, self.benchmark, protocol, self.batch_size,
                                       n_seen=stage + 1, seed=self.seed)
            self.matrices[protocol.name][: stage + 1, stage] = column
        self.evaluated = stage + 1

    def records(self) -> list[RunRecord]:
        """One record per protocol, named after it, with the metrics of its accuracy matrix."""
        if self.evaluated != self.benchmark.n_experiences:
            raise RuntimeError(
                f"protocols were evaluated after {self.evaluated} of {self.benchmark.n_experiences} training "
                "experiences; records need all of them: train the whole stream and call strategy.eval after "
                "each experience (run_strategy does both)")
        return [
            RunRecord.from_arrays(
                protocol.name, self.matrices[protocol.name], None,
                config={"protocol": dataclasses.asdict(protocol), "test_batch_size": self.batch_size},
                benchmark=self.benchmark.describe(),
            )
            for protocol in self.protocols
        ]
