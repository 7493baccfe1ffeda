"""Resumable runs (:mod:`pecft_lib.training`): checkpoints are written atomically, and a run interrupted
anywhere — an exception in process, or SIGKILL of its process — resumes to the same accuracy matrix and final
weights, bit for bit, as an uninterrupted run, for L2P, DualPrompt, CODA-Prompt, InfLoRA, O-LoRA and a Naive
baseline.

The tiny benchmark's training images get fresh noise at every read (a random augmentation), so a resume is
exact only if the data order *and* the random draws inside an epoch continue where they stopped.

Run as a script (``python tests/test_resume.py OUT_DIR``) this file is the process that the kill test starts
and kills.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from avalanche.training import Naive, Replay
from timm.models.vision_transformer import VisionTransformer

from pecft_lib.backbones import ViTBackbone
from pecft_lib.benchmarks.base import TensorClassificationDataset, make_class_incremental
from pecft_lib.errors import ConfigError
from pecft_lib.evaluation import RunRecord, make_evaluator, run_strategy
from pecft_lib.methods.coda_prompt import CodaPromptConfig, CodaPromptModel, CodaPromptOptimConfig, build_coda_prompt
from pecft_lib.methods.dualprompt import DualPromptConfig, DualPromptModel, DualPromptOptimConfig, build_dualprompt
from pecft_lib.methods.inflora import InfLoRAConfig, InfLoRAModel, InfLoRAOptimConfig, build_inflora
from pecft_lib.methods.l2p import L2PConfig, L2PModel, L2POptimConfig, build_l2p
from pecft_lib.methods.olora import OLoRAClassifier, OLoRAConfig, OLoRAOptimConfig, build_olora
from pecft_lib.methods.train_mask import TrainClassMaskPlugin
from pecft_lib.repro import seed_everything
from pecft_lib.training import (
    CheckpointError,
    RunFiles,
    atomic_save,
    capture_rng,
    load_checkpoint,
    restore_rng,
    run_resumable,
)
from pecft_lib.training import checkpoint as checkpoint_module

WIDTH, CLASSES, EXPERIENCES = 32, 6, 3
EVERY = 5  # checkpoint every 5 iterations; 3 iterations per epoch (2 with CODA's drop_last), 2 epochs


class NoisyImages(TensorClassificationDataset):
    """Adds Gaussian noise drawn from torch's global generator at every read: a random augmentation."""

    def __getitem__(self, index: int):
        image, label = super().__getitem__(index)
        return image + 0.1 * torch.randn_like(image), label


def tiny_benchmark():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(CLASSES).repeat_interleave(10)
    images = torch.randn(len(labels), 1, 8, 8, generator=generator) * 0.5 + labels.view(-1, 1, 1, 1).float() / 2
    return make_class_incremental("tiny", NoisyImages(images, labels), TensorClassificationDataset(images, labels),
                                  n_experiences=EXPERIENCES, class_order=list(range(CLASSES)),
                                  class_names=[str(c) for c in range(CLASSES)], info={})


def tiny_vit() -> ViTBackbone:
    return ViTBackbone(VisionTransformer(img_size=8, patch_size=4, in_chans=1, embed_dim=WIDTH, depth=2, num_heads=2,
                                         num_classes=0))


def build_l2p_run():
    seed_everything(0)
    model = L2PModel(tiny_vit(), CLASSES, L2PConfig(pool_size=6, prompt_length=2, top_k=2))
    optim = L2POptimConfig(lr=0.01, lr_reference_batch=None, batch_size=8, epochs=2, eval_batch_size=64,
                           cache_queries=True)
    return build_l2p(model, optim, EXPERIENCES), tiny_benchmark(), {"method": "l2p"}


def build_dualprompt_run():
    seed_everything(0)
    model = DualPromptModel(tiny_vit(), CLASSES, DualPromptConfig(pool_size=3, e_length=2, e_layers=[1], g_length=3,
                                                                  g_layers=[0]))
    optim = DualPromptOptimConfig(lr=0.01, lr_reference_batch=None, batch_size=8, epochs=2, eval_batch_size=64)
    return build_dualprompt(model, optim, EXPERIENCES), tiny_benchmark(), {"method": "dualprompt"}


def build_coda_run():
    seed_everything(0)
    model = CodaPromptModel(tiny_vit(), CLASSES, EXPERIENCES,
                            CodaPromptConfig(n_components=6, prompt_length=4, layers=[0, 1]))
    optim = CodaPromptOptimConfig(lr=0.01, batch_size=8, epochs=2, eval_batch_size=64)
    return build_coda_prompt(model, optim, EXPERIENCES), tiny_benchmark(), {"method": "coda_prompt"}


def build_inflora_run():
    seed_everything(0)
    model = InfLoRAModel(tiny_vit(), CLASSES, InfLoRAConfig(rank=3))
    optim = InfLoRAOptimConfig(lr=0.01, epochs=2, batch_size=8, eval_batch_size=64)
    return build_inflora(model, optim, EXPERIENCES), tiny_benchmark(), {"method": "inflora"}


def build_olora_run():
    seed_everything(0)
    model = OLoRAClassifier(tiny_vit(), CLASSES, OLoRAConfig(rank=2, alpha=8.0, dropout=0.1))
    optim = OLoRAOptimConfig(lr=0.01, epochs=2, batch_size=8, eval_batch_size=64)
    return build_olora(model, optim, EXPERIENCES), tiny_benchmark(), {"method": "olora"}


class LinearClassifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.2), torch.nn.Linear(64, CLASSES))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.layer(inputs)


def build_naive_run(strategy_class=Naive, **kwargs):
    """A baseline: one Adam whose state carries over from experience to experience."""
    seed_everything(0)
    model = LinearClassifier()
    strategy = strategy_class(model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
                              criterion=torch.nn.CrossEntropyLoss(),
                              train_mb_size=8, train_epochs=2, eval_mb_size=64,
                              evaluator=make_evaluator(EXPERIENCES), plugins=[TrainClassMaskPlugin()], **kwargs)
    return strategy, tiny_benchmark(), {"method": "naive"}


BUILDS = {"l2p": build_l2p_run, "dualprompt": build_dualprompt_run, "coda_prompt": build_coda_run,
          "inflora": build_inflora_run, "olora": build_olora_run, "naive": build_naive_run}


class Interrupted(Exception):
    """Stands for the process being killed."""


def interrupted(build, at_forward: int):
    """``build`` whose model raises :class:`Interrupted` in its ``at_forward``-th training forward pass."""

    def interrupted_build():
        strategy, benchmark, config = build()
        calls = itertools.count(1)

        def hook(module, args):
            if module.training and next(calls) == at_forward:
                raise Interrupted

        strategy.model.register_forward_pre_hook(hook)
        return strategy, benchmark, config

    return interrupted_build


def run(build, out: Path, checkpoint_every: int | None = EVERY, **kwargs) -> RunRecord:
    return run_resumable(build, out, name="tiny", checkpoint_every=checkpoint_every, **kwargs)


def assert_same_run(out: Path, reference_out: Path) -> None:
    """Same accuracy matrix, same final weights (the trained ones saved, the frozen ones fingerprinted)."""
    record, reference = RunRecord.load(RunFiles(out).record), RunRecord.load(RunFiles(reference_out).record)
    assert record.accuracy_matrix == reference.accuracy_matrix
    final = load_checkpoint(RunFiles(out).checkpoint)
    reference_final = load_checkpoint(RunFiles(reference_out).checkpoint)
    assert final["frozen"] == reference_final["frozen"]
    weights, reference_weights = final["model"], reference_final["model"]
    assert weights.keys() == reference_weights.keys()
    for key, value in reference_weights.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(weights[key], value), key
        else:
            assert weights[key] == value, key


# ------------------------------------------------------------------------------------------ exact resume


def test_uninterrupted_run_is_run_strategy_plus_files(tmp_path, single_thread):
    strategy, benchmark, config = build_l2p_run()
    expected = run_strategy(strategy, benchmark, name="tiny", config=config, evaluate_untrained=False)
    record = run(build_l2p_run, tmp_path)
    np.testing.assert_array_equal(record.matrix, expected.matrix)
    files = RunFiles(tmp_path)
    assert RunRecord.load(files.record).accuracy_matrix == record.accuracy_matrix
    assert RunRecord.load(files.progress).status == "finished" and files.finished.is_file()
    assert record.extra["checkpoints"]["written"] == 18 // EVERY + EXPERIENCES
    assert record.extra["checkpoints"]["bytes"] == files.checkpoint.stat().st_size
    checkpoint = load_checkpoint(files.checkpoint)
    assert checkpoint["position"] == {"stage": EXPERIENCES, "epoch": None, "iteration": None}
    backbone = {f"backbone.{key}" for key in strategy.model.backbone.state_dict()}
    assert set(checkpoint["frozen"]) == backbone  # the frozen backbone is left out, fingerprinted
    assert set(checkpoint["model"]) == set(strategy.model.state_dict()) - backbone


@pytest.mark.parametrize("method", list(BUILDS))
def test_run_interrupted_mid_experience_resumes_bit_identically(method, tmp_path, single_thread):
    build = BUILDS[method]
    run(build, tmp_path / "reference")
    with pytest.raises(Interrupted):
        run(interrupted(build, at_forward=12), tmp_path / "run")
    position = load_checkpoint(RunFiles(tmp_path / "run").checkpoint)["position"]
    assert position["epoch"] is not None and position["iteration"] >= 1  # the checkpoint is mid-experience
    run(build, tmp_path / "run", resume=True)
    assert_same_run(tmp_path / "run", tmp_path / "reference")


@pytest.mark.parametrize("method", ["inflora", "naive"])
def test_run_interrupted_twice_resumes_bit_identically(method, tmp_path, single_thread):
    """First killed between experiences (only end-of-experience checkpoints), then mid-epoch of the resumed run:
    InfLoRA's memories and the Naive baseline's optimizer state cross an experience boundary."""
    build = BUILDS[method]
    run(build, tmp_path / "reference")
    with pytest.raises(Interrupted):
        run(interrupted(build, at_forward=7), tmp_path / "run", checkpoint_every=None)
    assert load_checkpoint(RunFiles(tmp_path / "run").checkpoint)["position"] == {"stage": 1, "epoch": None,
                                                                                  "iteration": None}
    with pytest.raises(Interrupted):
        run(interrupted(build, at_forward=5), tmp_path / "run", resume=True)
    run(build, tmp_path / "run", resume=True)
    assert_same_run(tmp_path / "run", tmp_path / "reference")


def test_killed_process_resumes_bit_identically(tmp_path, single_thread):
    """SIGKILL a run's process in the middle of its second experience; resume the run here."""
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    child = subprocess.Popen([sys.executable, __file__, str(out)], env=env)
    try:
        deadline = time.monotonic() + 300
        while True:
            assert child.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no mid-experience checkpoint within 5 minutes"
            if RunFiles(out).checkpoint.exists():  # atomic writes: always a whole checkpoint
                position = load_checkpoint(RunFiles(out).checkpoint)["position"]
                if position["stage"] == 1 and position["epoch"] is not None:
                    break
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not RunFiles(out).record.exists()
    run(build_l2p_run, out, checkpoint_every=2, resume=True)
    run(build_l2p_run, tmp_path / "reference", checkpoint_every=2)
    assert_same_run(out, tmp_path / "reference")


def _slow_l2p_run():
    """:func:`build_l2p_run` at 0.1 s per training step, so the parent sees checkpoints in time to kill."""
    strategy, benchmark, config = build_l2p_run()
    strategy.model.register_forward_pre_hook(lambda module, args: time.sleep(0.1 if module.training else 0))
    return strategy, benchmark, config


def _child(out: str) -> None:
    """The process that :func:`test_killed_process_resumes_bit_identically` kills."""
    torch.set_num_threads(1)
    run(_slow_l2p_run, Path(out), checkpoint_every=2)


# ------------------------------------------------------------------------------------ runs and folders


def test_resume_refuses_another_configuration_and_overwriting(tmp_path, single_thread):
    with pytest.raises(Interrupted):
        run(interrupted(build_l2p_run, at_forward=7), tmp_path)
    with pytest.raises(CheckpointError, match="unfinished run"):
        run(build_l2p_run, tmp_path)

    def other_config():
        strategy, benchmark, config = build_l2p_run()
        return strategy, benchmark, {**config, "seed": 1}

    with pytest.raises(CheckpointError, match="another configuration"):
        run(other_config, tmp_path, resume=True)

    def other_backbone():
        strategy, benchmark, config = build_l2p_run()
        with torch.no_grad():
            strategy.model.backbone.vit.cls_token.add_(1.0)  # e.g. another pretrained file
        return strategy, benchmark, config

    with pytest.raises(CheckpointError, match="frozen weights .* other values"):
        run(other_backbone, tmp_path, resume=True)
    record = run(build_l2p_run, tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="finished run"):
        run(build_l2p_run, tmp_path)

    def unused():
        raise AssertionError("a finished run is not built again")

    assert run(unused, tmp_path, resume=True).accuracy_matrix == record.accuracy_matrix


def test_resume_without_checkpoint_starts_the_run(tmp_path, single_thread):
    assert run(build_l2p_run, tmp_path, resume=True).status == "finished"


def test_stateful_strategies_and_bad_intervals_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="ReplayPlugin"):
        run(lambda: build_naive_run(Replay, mem_size=10), tmp_path)
    with pytest.raises(ConfigError, match="checkpoint_every"):
        run(build_naive_run, tmp_path, checkpoint_every=0)


def test_random_state_round_trip():
    snapshot = capture_rng()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    restore_rng(snapshot)
    assert torch.equal(torch.rand(3), expected[0])
    np.testing.assert_array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


# ---------------------------------------------------------------------------------------- atomic writes


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    atomic_save({"step": torch.tensor(1)}, path)
    real_save = torch.save

    def crash_half_way(obj, handle):
        real_save(obj, handle)
        handle.truncate(handle.tell() // 2)  # half of the new file is on disk...
        raise OSError("disk full")  # ...when the writer dies

    monkeypatch.setattr(checkpoint_module.torch, "save", crash_half_way)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"step": torch.tensor(2), "more": torch.zeros(1000)}, path)
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_atomic_files_get_the_mode_of_a_file_made_by_open(tmp_path):
    """``mkstemp`` makes 0600 files; results must stay readable as any file the user's umask allows."""
    umask = os.umask(0o027)
    try:
        atomic_save({"step": torch.tensor(1)}, tmp_path / "checkpoint.pt")
        record = RunRecord.from_arrays("tiny", np.eye(2), None, config={}, benchmark={}).save(tmp_path / "record.json")
        (tmp_path / "plain").write_text("")
    finally:
        os.umask(umask)
    modes = {path.name: path.stat().st_mode & 0o777 for path in tmp_path.iterdir()}
    assert modes == {"checkpoint.pt": 0o640, "record.json": 0o640, "plain": 0o640}, modes
    assert RunRecord.load(record).accuracy_matrix == [[1.0, 0.0], [0.0, 1.0]]


def test_a_killed_writer_leaves_only_an_ignored_temporary(tmp_path, single_thread):
    with pytest.raises(Interrupted):
        run(interrupted(build_l2p_run, at_forward=7), tmp_path)
    files = RunFiles(tmp_path)
    stale = tmp_path / f".{files.checkpoint.name}.x1y2.tmp"  # what SIGKILL during atomic_save leaves
    stale.write_bytes(files.checkpoint.read_bytes()[:100])
    assert load_checkpoint(files.checkpoint)["position"]["stage"] == 1
    run(build_l2p_run, tmp_path, resume=True)
    assert not stale.exists()


def test_unreadable_checkpoints_raise_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    path = tmp_path / "checkpoint.pt"
    atomic_save({"weights": torch.zeros(100)}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)
    atomic_save([1, 2], path)
    with pytest.raises(CheckpointError, match="not a checkpoint dictionary"):
        load_checkpoint(path)


if __name__ == "__main__":
    _child(sys.argv[1])
