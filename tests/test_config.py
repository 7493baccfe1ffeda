"""Experiment configs: the two profiles of classic_cl.yaml and every validation error."""

from __future__ import annotations

import pytest
import torch

from pecft_lib import repro
from pecft_lib.benchmarks import BenchmarkConfig
from pecft_lib.config import available_configs, load_config
from pecft_lib.errors import ConfigError, UnknownNameError
from pecft_lib.methods.baselines import ClassicConfig, MLPConfig, TrainConfig, build_classic_strategy, make_mlp

TRAIN_KEYS = ["epochs", "batch_size", "lr", "momentum", "eval_batch_size", "device"]


def test_quick_profile():
    cfg = load_config("classic_cl", ClassicConfig, profile="quick")
    assert cfg.benchmark == BenchmarkConfig(name="split_fashion_mnist", n_experiences=5, seed=0)
    assert cfg.model == MLPConfig(hidden_size=256, hidden_layers=1, drop_rate=0.0)
    assert cfg.train == TrainConfig(epochs=2, batch_size=64, lr=0.01, momentum=0.9, eval_batch_size=1000,
                                    device="cpu")
    assert cfg.strategies == {"ewc": {"ewc_lambda": 1000.0}, "lwf": {"alpha": 1.0, "temperature": 2.0},
                              "replay": {"mem_size": 500}}


def test_paper_profile():
    cfg = load_config("classic_cl", ClassicConfig, profile="paper")
    assert cfg.model == MLPConfig(hidden_size=400, hidden_layers=2, drop_rate=0.0)
    assert cfg.train.epochs == 10 and cfg.train.batch_size == 128 and cfg.train.device == "cuda"
    assert cfg.strategies["replay"] == {"mem_size": 2000}
    assert isinstance(cfg.benchmark, BenchmarkConfig) and cfg.benchmark.name == "split_fashion_mnist"


def test_profile_defaults_to_the_environment(monkeypatch):
    monkeypatch.setenv("PECFT_PROFILE", "paper")
    assert load_config("classic_cl", ClassicConfig).train.device == "cuda"
    monkeypatch.delenv("PECFT_PROFILE")
    assert load_config("classic_cl", ClassicConfig).train.device == "cpu"


def test_overrides_apply_to_dotted_keys():
    cfg = load_config("classic_cl", ClassicConfig, profile="quick",
                      overrides={"train.epochs": 1, "benchmark.train_per_class": 50, "strategies.replay": {}})
    assert cfg.train.epochs == 1 and cfg.train.batch_size == 64
    assert cfg.benchmark.train_per_class == 50
    assert cfg.strategies["replay"] == {}
    # a fresh load is not affected by earlier overrides
    assert load_config("classic_cl", ClassicConfig, profile="quick").train.epochs == 2


def test_unknown_key_lists_the_valid_keys():
    with pytest.raises(ConfigError) as info:
        load_config("classic_cl", ClassicConfig, profile="quick", overrides={"train.epochz": 3})
    message = str(info.value)
    assert "epochz" in message and "[quick].train" in message
    valid = message.split("valid keys:")[1]
    for key in TRAIN_KEYS:
        assert key in valid


def test_unknown_top_level_key():
    with pytest.raises(ConfigError, match="unknown key.*optimizer.*valid keys: benchmark, model, train, strategies"):
        load_config("classic_cl", ClassicConfig, profile="quick", overrides={"optimizer": "adam"})


@pytest.mark.parametrize(
    "key, value, expected",
    [
        ("train.epochs", "three", "expected int"),
        ("train.lr", "0.1", "expected float"),
        ("train.device", 0, "expected str"),
        ("model.hidden_size", 25.6, "expected int"),
        ("benchmark.train_per_class", "all", "train_per_class"),
        ("strategies", ["ewc"], "expected a mapping"),
        ("train", 3, "expected a mapping"),
    ],
)
def test_wrong_type_names_the_key(key, value, expected):
    with pytest.raises(ConfigError) as info:
        load_config("classic_cl", ClassicConfig, profile="quick", overrides={key: value})
    message = str(info.value)
    assert key in message
    assert expected in message


def test_int_is_accepted_for_float_fields():
    cfg = load_config("classic_cl", ClassicConfig, profile="quick", overrides={"train.lr": 1, "train.momentum": 0})
    assert cfg.train.lr == 1.0 and type(cfg.train.lr) is float
    assert cfg.train.momentum == 0.0 and type(cfg.train.momentum) is float


@pytest.mark.parametrize("key", ["train.epochs", "model.hidden_layers", "benchmark.seed"])
def test_bool_is_rejected_for_int_fields(key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.") + ": expected int, got bool"):
        load_config("classic_cl", ClassicConfig, profile="quick", overrides={key: True})


def test_bool_is_rejected_for_float_fields():
    with pytest.raises(ConfigError, match=r"train\.lr"):
        load_config("classic_cl", ClassicConfig, profile="quick", overrides={"train.lr": True})


def test_optional_int_accepts_none_and_ints():
    cfg = load_config("classic_cl", ClassicConfig, profile="quick",
                      overrides={"benchmark.train_per_class": None, "benchmark.test_per_class": 7})
    assert cfg.benchmark.train_per_class is None and cfg.benchmark.test_per_class == 7


def test_missing_required_key():
    with pytest.raises(ConfigError, match="missing key.*name"):
        load_config("classic_cl", ClassicConfig, profile="quick", overrides={"benchmark": {"seed": 1}})


def test_unknown_config_name():
    with pytest.raises(UnknownNameError) as info:
        load_config("classic_cI", ClassicConfig, profile="quick")
    assert "'classic_cI'" in str(info.value) and "classic_cl" in str(info.value)
    assert "classic_cl" in available_configs()


def test_unknown_profile():
    with pytest.raises(UnknownNameError) as info:
        load_config("classic_cl", ClassicConfig, profile="fast")
    assert "'fast'" in str(info.value)
    assert info.value.choices == ["paper", "quick"]


def test_bogus_profile_in_the_environment(monkeypatch):
    monkeypatch.setenv("PECFT_PROFILE", "bogus")
    with pytest.raises(UnknownNameError, match="'bogus'.*paper, quick") as info:
        repro.current_profile()
    assert "PECFT_PROFILE" in str(info.value)
    with pytest.raises(UnknownNameError, match="bogus"):
        load_config("classic_cl", ClassicConfig)


def test_current_profile_default(monkeypatch):
    monkeypatch.delenv("PECFT_PROFILE", raising=False)
    assert repro.current_profile() == "quick"
    assert repro.current_profile(default="paper") == "paper"
    monkeypatch.setenv("PECFT_PROFILE", "paper")
    assert repro.current_profile() == "paper"


def test_unknown_strategy_in_strategies():
    with pytest.raises(UnknownNameError) as info:
        load_config("classic_cl", ClassicConfig, profile="quick", overrides={"strategies.replayy": {"mem_size": 1}})
    message = str(info.value)
    assert "'replayy'" in message
    for name in ("ewc", "joint", "lwf", "naive", "replay"):
        assert name in message.split("valid choices:")[1]


def test_unknown_strategy_name_in_build():
    cfg = load_config("classic_cl", ClassicConfig, profile="quick")
    with pytest.raises(UnknownNameError, match="'gem'"):
        build_classic_strategy("gem", make_mlp(cfg.model, 10), cfg, 5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is visible, so device='cuda' is valid here")
def test_cuda_device_without_a_gpu_is_a_config_error():
    cfg = load_config("classic_cl", ClassicConfig, profile="quick", overrides={"train.device": "cuda"})
    with pytest.raises(ConfigError) as info:
        build_classic_strategy("naive", make_mlp(cfg.model, 10), cfg, 5)
    message = str(info.value)
    assert "train.device='cuda'" in message and "PECFT_PROFILE=quick" in message


def test_quick_config_builds_every_strategy_on_the_cpu():
    cfg = load_config("classic_cl", ClassicConfig, profile="quick")
    for name in ("naive", "joint", "ewc", "lwf", "replay"):
        strategy = build_classic_strategy(name, make_mlp(cfg.model, 10), cfg, 5)
        assert strategy.train_epochs == 2 and strategy.train_mb_size == 64
        assert str(strategy.device) == "cpu"
