"""The model skeleton of the prompt methods: frozen backbone, prompt-free query, one head.

A forward pass of a :class:`PromptClassifier` is

1. ``q = query(x)`` — the prompt-free [CLS] features of the frozen backbone, without gradient (L2P's query
   function, Wang et al., CVPR 2022); the strategy may pass a cached ``q`` instead (:class:`~.cache.QueryCache`);
2. ``prompting = make_prompts(q)`` — **the method's hook**: turn the queries into prompt tokens
   (L2P: top-N of a pool), per-layer prefixes (DualPrompt, CODA-Prompt) and an auxiliary loss (L2P's
   key pull, DualPrompt's key match, CODA's orthogonality penalty);
3. ``output = backbone.encode(x, prompting.prompts, prompting.prefixes, n_outputs)`` — the last block
   computes only the ``n_outputs`` leading positions the head reads (:meth:`feature_positions`);
4. ``logits = head(features(output))`` — one linear head over *all* classes of the benchmark (as in all
   three references); :meth:`PromptClassifier.features` is the [CLS] pooling of the backbone unless the
   method overrides it (L2P reads the mean of the prompt outputs, as google-research/l2p does).

Extension points for a method (L2P here; DualPrompt and CODA-Prompt later):

* :meth:`PromptClassifier.make_prompts` (required) — returns a :class:`Prompting`;
* :meth:`PromptClassifier.features` — what the head reads, and :meth:`PromptClassifier.feature_positions`
  — how many leading output positions that is;
* :meth:`PromptClassifier.begin_experience` — per-task state (DualPrompt's E-prompt of the current task,
  CODA's new components); call ``super()`` so :attr:`PromptClassifier.seen_classes` stays up to date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
from torch import nn

from ...backbones import Backbone
from ...backbones.attention import Prefix
from ...backbones.base import EncoderOutput
from ...errors import UnknownNameError
from ..common import ContinualPEFTModel
from ..common.precision import in_float32

HEAD_INITS = ("trunc_normal", "zeros", "torch_default")
"""How the classification head is initialised (:class:`PromptClassifier`'s ``head_init``)."""
EVAL_SCOPES = ("all", "seen")
"""Which classes the test-time argmax runs over (:class:`PromptClassifier`'s ``eval_scope``): all classes of the
benchmark, or those seen so far."""


@dataclass
class Prompting:
    """What a method feeds into one forward pass of the backbone.

    Attributes:
        prompts: ``[B, P, D]`` tokens inserted after [CLS] (``None`` = none).
        prefixes: ``{layer: (keys, values)}`` concatenated to that layer's attention keys and values.
        aux_loss: a scalar added to the training loss by :class:`~.strategy.PromptStrategy` (``None`` = 0).
    """

    prompts: torch.Tensor | None = None
    prefixes: Mapping[int, Prefix] = field(default_factory=dict)
    aux_loss: torch.Tensor | None = None


class PromptClassifier(ContinualPEFTModel):
    """A frozen backbone, a method-specific prompting of it, and one linear head over ``n_classes``.

    Args:
        backbone: frozen here; it always runs in eval mode (the references use dropout and drop-path 0).
        n_classes: the benchmark's number of classes; the head is created once for all of them.
        head_init: ``"trunc_normal"`` (std 0.02, bias 0: timm's init, the PyTorch ports) or ``"zeros"``
            (the JAX code's zero kernel, so untrained classes have logit 0) or ``"torch_default"``
            (``nn.Linear``'s own uniform init, CODA-Prompt's head).
        eval_scope: which classes an evaluation-mode forward may predict: ``"all"`` classes of the
            benchmark (the L2P and DualPrompt references: untrained classes keep their initial logits) or
            the ``"seen"`` ones only (the CODA-Prompt reference, ``output[:, :valid_out_dim]``); the logits
            of the others are −∞.

    Attributes:
        aux_loss: the auxiliary loss of the latest forward pass (``None`` if the method has none).
        seen_classes: the classes of every experience started so far.
    """

    def __init__(self, backbone: Backbone, n_classes: int, head_init: str = "trunc_normal",
                 eval_scope: str = "all"):
        super().__init__()
        if head_init not in HEAD_INITS:
            raise UnknownNameError("head init", head_init, HEAD_INITS)
        if eval_scope not in EVAL_SCOPES:
            raise UnknownNameError("evaluation scope", eval_scope, EVAL_SCOPES)
        self.eval_scope = eval_scope
        self.backbone = backbone.freeze().eval()
        self.head = nn.Linear(backbone.embed_dim, n_classes)
        if head_init == "zeros":
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)
        elif head_init == "trunc_normal":
            nn.init.trunc_normal_(self.head.weight, std=0.02)
            nn.init.zeros_(self.head.bias)
        self.aux_loss: torch.Tensor | None = None
        self.seen_classes: list[int] = []

    def train(self, mode: bool = True) -> "PromptClassifier":
        super().train(mode)
        self.backbone.eval()
        return self

    def begin_experience(self, classes: Sequence[int]) -> None:
        """Record the new classes; the prompts, keys and head stay trainable in every experience."""
        self.seen_classes = sorted(set(self.seen_classes).union(int(c) for c in classes))

    def query(self, inputs: torch.Tensor) -> torch.Tensor:
        """q(x): final-norm pooled features of a prompt-free pass, without gradient (L2P's query function)."""
        return self.backbone.query_features(inputs)

    def make_prompts(self, query: torch.Tensor) -> Prompting:
        """The method's prompting of the backbone for queries ``[B, D]``."""
        raise NotImplementedError

    def full_precision_prompts(self, query: torch.Tensor) -> Prompting:
        """:meth:`make_prompts` with autocast off on a query in at least float32: under bfloat16 autocast
        (``precision: bf16``) the query–key similarities, the selection and the auxiliary losses are still
        float32, so that nearly tied keys are ranked as in float32."""
        return in_float32(self.make_prompts, query)

    def features(self, output: EncoderOutput) -> torch.Tensor:
        """What the head reads: the backbone's pooled features (the [CLS] token of a ViT)."""
        return self.backbone.pool(output)

    def feature_positions(self, num_prompts: int) -> int | None:
        """How many leading output positions :meth:`features` reads (``None`` = all): the backbone's last
        block computes only those (:meth:`Backbone.encode`'s ``n_outputs``)."""
        return self.backbone.pooled_outputs

    def forward(self, inputs: torch.Tensor, query: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, n_classes]``; ``query`` = precomputed q(x) (must equal :meth:`query` of ``inputs``).
        In evaluation mode with ``eval_scope="seen"`` the classes of no started experience get −∞."""
        prompting = self.full_precision_prompts(self.query(inputs) if query is None else query)
        self.aux_loss = prompting.aux_loss
        num_prompts = 0 if prompting.prompts is None else prompting.prompts.shape[1]
        output = self.backbone.encode(inputs, prompting.prompts, prompting.prefixes,
                                      n_outputs=self.feature_positions(num_prompts))
        logits = self.head(self.features(output))
        if not self.training and self.eval_scope == "seen":
            unseen = torch.ones(logits.shape[-1], dtype=torch.bool, device=logits.device)
            unseen[self.seen_classes] = False
            logits = logits.masked_fill(unseen, float("-inf"))
        return logits
