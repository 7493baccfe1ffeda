"""Test protocols of a trained prompt model (:mod:`pecft_lib.evaluation.protocols`): switching and restoring
the selection and the scope, accuracies against a direct computation, and the plugin that gives every
protocol its own accuracy matrix from one training run without changing that run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from pecft_lib.backbones import ViTBackbone
from pecft_lib.evaluation import STANDARD_PROTOCOLS, EvalProtocol, ProtocolEvaluator, run_strategy
from pecft_lib.evaluation.protocols import protocol_accuracy, using_protocol
from pecft_lib.methods.l2p import L2PConfig, L2PModel, L2POptimConfig, build_l2p
from pecft_lib.methods.prompting import majority_vote

from tiny_data import tiny_benchmark

CLASSES, EXPERIENCES = 6, 3
VOTE_ALL = EvalProtocol("vote", batchwise_selection=True)
MIXED_VOTE = EvalProtocol("vote, mixed", batchwise_selection=True, mixed_batches=True)


def tiny_model() -> L2PModel:
    torch.manual_seed(0)
    backbone = ViTBackbone(VisionTransformer(img_size=8, patch_size=4, in_chans=1, embed_dim=32, depth=2,
                                             num_heads=2, num_classes=0))
    torch.manual_seed(1)
    return L2PModel(backbone, CLASSES, L2PConfig(pool_size=6, prompt_length=2, top_k=2))


def tiny_strategy(model: L2PModel):
    optim = L2POptimConfig(lr=0.01, lr_reference_batch=None, batch_size=8, epochs=2, eval_batch_size=64)
    return build_l2p(model, optim, EXPERIENCES)


def direct_accuracy(model: L2PModel, benchmark, batch_size: int, vote: bool, seen: list[int] | None,
                    mixed_seed: int | None = None) -> np.ndarray:
    """Per experience, with selection, vote and masking written out by hand; batches hold one experience in
    order, or (``mixed_seed``) all experiences shuffled together with that seed."""
    model.eval()
    data = [[(sample[0], int(sample[1]), i) for sample in experience.dataset.eval()]
            for i, experience in enumerate(benchmark.test_stream)]
    if mixed_seed is None:
        batches = [d[start:start + batch_size] for d in data for start in range(0, len(d), batch_size)]
    else:
        flat = [sample for d in data for sample in d]
        order = torch.randperm(len(flat), generator=torch.Generator().manual_seed(mixed_seed)).tolist()
        flat = [flat[k] for k in order]
        batches = [flat[start:start + batch_size] for start in range(0, len(flat), batch_size)]
    hits = np.zeros(len(data))
    with torch.no_grad():
        for batch in batches:
            x = torch.stack([sample[0] for sample in batch])
            y = torch.tensor([sample[1] for sample in batch])
            ids = torch.topk(model.similarity(model.query(x)), model.config.top_k, dim=1).indices
            if vote:
                ids = majority_vote(ids, model.config.pool_size).expand(len(x), -1)
            prompts = model.prompts[ids].flatten(1, 2) + model.backbone.cls_position_embedding
            logits = model.head(model.backbone.encode(x, prompts, {}).prompts.mean(1))
            if seen is not None:
                mask = torch.full((CLASSES,), float("-inf"))
                mask[seen] = 0.0
                logits = logits + mask
            for (_, _, owner), hit in zip(batch, (logits.argmax(1) == y).tolist()):
                hits[owner] += hit
    return hits / np.array([len(d) for d in data])


def test_protocol_switches_selection_and_scope_and_puts_them_back():
    model = tiny_model()
    config = model.config
    with using_protocol(model, EvalProtocol("v", batchwise_selection=True, eval_scope="seen")):
        assert model.config.batchwise_selection and model.eval_scope == "seen"
        assert model.config.top_k == config.top_k
    assert model.config is config and model.eval_scope == "all"
    with pytest.raises(KeyError), using_protocol(model, VOTE_ALL):
        raise KeyError("inside")
    assert model.config is config and not model.config.batchwise_selection


def test_protocols_reject_what_a_model_cannot_do():
    with pytest.raises(ValueError, match="eval_scope"):
        EvalProtocol("x", eval_scope="current")
    with pytest.raises(TypeError, match="eval_scope"), using_protocol(torch.nn.Linear(2, 2), EvalProtocol("x")):
        pass
    model = tiny_model()
    model.config = None  # a prompt model without selection (CODA-Prompt) can only be tested per sample
    with pytest.raises(TypeError, match="batch-wise"), using_protocol(model, VOTE_ALL):
        pass
    with using_protocol(model, EvalProtocol("x", eval_scope="seen")):
        assert model.eval_scope == "seen"
    with pytest.raises(ValueError, match="distinct"):
        ProtocolEvaluator(tiny_benchmark(), [EvalProtocol("a"), EvalProtocol("a")])


@pytest.mark.parametrize("protocol", STANDARD_PROTOCOLS, ids=lambda p: p.name)
def test_protocol_accuracy_matches_a_direct_computation(protocol):
    model, benchmark = tiny_model(), tiny_benchmark()
    model.seen_classes = [0, 1, 2, 3]  # as after two experiences
    expected = direct_accuracy(model, benchmark, batch_size=7, vote=protocol.batchwise_selection,
                               seen=model.seen_classes if protocol.eval_scope == "seen" else None)
    measured = protocol_accuracy(model, benchmark, protocol, batch_size=7)
    np.testing.assert_allclose(measured, expected)
    np.testing.assert_allclose(protocol_accuracy(model, benchmark, protocol, batch_size=7, n_seen=2), expected[:2])


def test_mixed_batches_shuffle_the_experiences_together():
    model, benchmark = tiny_model(), tiny_benchmark()
    expected = direct_accuracy(model, benchmark, batch_size=7, vote=True, seen=None, mixed_seed=3)
    np.testing.assert_allclose(protocol_accuracy(model, benchmark, MIXED_VOTE, batch_size=7, seed=3), expected)


def test_protocol_accuracy_leaves_the_global_random_state_alone():
    model, benchmark = tiny_model(), tiny_benchmark()
    before = torch.get_rng_state()
    protocol_accuracy(model, benchmark, MIXED_VOTE, batch_size=7)
    assert torch.equal(torch.get_rng_state(), before)


def test_evaluator_gives_each_protocol_a_matrix_without_changing_the_run(single_thread):
    benchmark = tiny_benchmark()
    torch.manual_seed(0)
    plain = run_strategy(tiny_strategy(tiny_model()), benchmark, name="plain", evaluate_untrained=False)
    torch.manual_seed(0)
    strategy = tiny_strategy(tiny_model())
    evaluator = ProtocolEvaluator(benchmark, STANDARD_PROTOCOLS + (MIXED_VOTE,), batch_size=7).attach(strategy)
    with pytest.raises(RuntimeError, match="0 of 3"):
        evaluator.records()
    record = run_strategy(strategy, benchmark, name="with protocols", evaluate_untrained=False)
    np.testing.assert_array_equal(record.matrix, plain.matrix)  # the plugin does not change training

    records = {r.name: r for r in evaluator.records()}
    assert list(records) == [p.name for p in STANDARD_PROTOCOLS] + [MIXED_VOTE.name]
    seen = np.triu(np.ones((EXPERIENCES, EXPERIENCES), dtype=bool))
    for r in records.values():
        assert not np.isnan(r.matrix[seen]).any() and np.isnan(r.matrix[~seen]).all()
    # this library's protocol is the one run_strategy measures
    default = records["per-sample, all classes"]
    np.testing.assert_allclose(default.matrix[seen], record.matrix[seen])
    assert default.metrics["A_mean"] == pytest.approx(record.metrics["A_mean"])
    # after the last experience every class is seen: the scope changes Ā only, never the last column
    scoped = records["per-sample, seen classes"]
    np.testing.assert_array_equal(scoped.matrix[:, -1], default.matrix[:, -1])
    assert (scoped.matrix[seen] >= default.matrix[seen]).all()
    assert scoped.config["protocol"]["eval_scope"] == "seen" and scoped.config["test_batch_size"] == 7


def test_evaluator_needs_an_evaluation_after_every_experience(single_thread):
    benchmark = tiny_benchmark()
    strategy = tiny_strategy(tiny_model())
    ProtocolEvaluator(benchmark, [EvalProtocol("p")]).attach(strategy)
    strategy.train(benchmark.train_stream[0])
    strategy.train(benchmark.train_stream[1])
    with pytest.raises(RuntimeError, match="training experience 1 was followed by no strategy.eval"):
        strategy.eval(benchmark.test_stream)
