"""The prototype (SimpleCIL) baseline, evaluation of the seen experiences only, and the comparison grid."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from pecft_lib.benchmarks import BenchmarkConfig
from pecft_lib.comparison import (
    ComparisonBenchmark,
    ComparisonConfig,
    grid_table,
    load_comparison,
    method_overrides,
    run_comparison,
    run_one,
    summary_table,
)
from pecft_lib.errors import ConfigError, UnknownNameError
from pecft_lib.evaluation import RunRecord, run_strategy
from pecft_lib.evaluation.aggregate import apart, final_accuracy, mean_curves, seed_spread_verdict
from pecft_lib.evaluation.plots import (
    plot_accuracy_curves_by_run,
    plot_accuracy_vs_cost,
    plot_mean_accuracy_curves,
    plot_task_matrix,
)
from pecft_lib.methods.baselines import BaselineConfig, prepare_baseline
from pecft_lib.methods.baselines.prototype import PrototypeClassifier
from pecft_lib.methods.finetuning import TuningConfig

from test_inflora import CLASSES, EXPERIENCES, tiny_benchmark, tiny_vit

PROTOTYPE = BaselineConfig(tuning=TuningConfig(method="linear_probe"), kind="prototype", epochs=1, batch_size=8)


class FeatureBackbone(nn.Module):
    """A "backbone" whose pooled feature is its input (and a dropout, to check the eval mode)."""

    embed_dim = 3

    def __init__(self):
        super().__init__()
        self.dropout = nn.Dropout(0.5)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.dropout(inputs)

    def freeze(self):
        return self


def test_prototypes_are_class_means_and_prediction_is_the_nearest_by_cosine():
    model = PrototypeClassifier(FeatureBackbone(), n_classes=3).train()
    assert not model.backbone.training  # no dropout in the features, even in train mode
    x = torch.tensor([[1.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 4.0, 1.0]])
    y = torch.tensor([0, 0, 1, 1])
    model.add_examples(x, y)
    torch.testing.assert_close(model.prototypes, torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.5], [0.0, 0.0, 0.0]]))
    logits = model.eval()(torch.tensor([[10.0, 1.0, 0.0], [0.1, 1.0, 0.0]]))
    assert logits[:, 2].isneginf().all()  # class 2 has no prototype yet
    torch.testing.assert_close(logits[0, 0], torch.tensor(10.0 / np.sqrt(101.0), dtype=torch.float32))
    assert logits.argmax(1).tolist() == [0, 1]
    # the scale of a feature does not matter, only its direction
    torch.testing.assert_close(model(torch.tensor([[5.0, 0.5, 0.0]])), model(torch.tensor([[10.0, 1.0, 0.0]])))


def test_prototype_baseline_trains_nothing_and_never_changes_old_prototypes():
    strategy, benchmark, _ = prepare_baseline(PROTOTYPE, tiny_benchmark(), name="Prototype", backbone=tiny_vit)
    record = run_strategy(strategy, benchmark, name="Prototype", evaluate_untrained=False)
    model = strategy.model
    assert record.trainable_parameters == [0] * EXPERIENCES
    assert model.counts.tolist() == [12] * CLASSES  # one pass: every training sample counted once
    # the classes of the first experience keep the prototype they had after it: no forgetting of the rows
    first = prepare_baseline(PROTOTYPE, tiny_benchmark(), name="Prototype", backbone=tiny_vit)[0]
    first.train(tiny_benchmark().train_stream[0])
    seen = first.model.counts > 0
    torch.testing.assert_close(first.model.prototypes[seen], model.prototypes[seen])
    # the benchmark is separable by its feature means: far above chance (1/6)
    assert record.metrics["A_last"] > 0.5
    assert np.isnan(record.matrix[1:, 0]).sum() == 0 and (record.matrix[1:, 0] == 0).all()  # unseen: 0


def test_prototype_config_errors():
    with pytest.raises(ConfigError, match="tuning: {method: linear_probe} and epochs: 1"):
        BaselineConfig(tuning=TuningConfig(method="full"), kind="prototype")
    with pytest.raises(ConfigError, match="epochs: 1"):
        BaselineConfig(tuning=TuningConfig(method="linear_probe"), kind="prototype", epochs=2)


def test_evaluating_only_seen_experiences_leaves_future_entries_unmeasured_and_the_rest_equal():
    # the prototype classifier, because its result does not depend on the data order (an evaluation pass draws
    # from torch's generator when its loader starts, so skipping some changes later shuffles)
    runs = {}
    for evaluate_future in (True, False):
        strategy, benchmark, _ = prepare_baseline(PROTOTYPE, tiny_benchmark(), name="P", backbone=tiny_vit)
        runs[evaluate_future] = run_strategy(strategy, benchmark, name="P", evaluate_untrained=False,
                                             evaluate_future=evaluate_future)
    full, seen = runs[True], runs[False]
    future = np.tril(np.ones((EXPERIENCES, EXPERIENCES), dtype=bool), k=-1)  # R[i, t] with i > t
    assert np.isnan(seen.matrix[future]).all() and not np.isnan(full.matrix[future]).any()
    np.testing.assert_array_equal(seen.matrix[~future], full.matrix[~future])
    for key in ("A_last", "A_mean", "forgetting_max", "forgetting_coda", "bwt"):
        assert seen.metrics[key] == pytest.approx(full.metrics[key])
    assert seen.metrics["fwt"] is None


# ------------------------------------------------------------------------------------------------ comparison


def test_the_quick_comparison_config_covers_five_methods_and_four_baselines_on_both_modalities():
    config = load_comparison("quick")
    assert set(config.benchmarks) == {"vision", "text"} and len(config.seeds) == 3
    for setup in config.benchmarks.values():
        assert set(setup.methods) == {"L2P", "DualPrompt", "CODA-Prompt", "InfLoRA", "O-LoRA"}
        assert set(setup.baselines) == {"SeqFT", "SeqLoRA", "Prototype", "Joint"}
        # every run is scored over all classes
        assert setup.overrides["CODA-Prompt"]["method.eval_scope"] == "all"


def tiny_setup(**changes) -> ComparisonBenchmark:
    setup = ComparisonBenchmark(
        backbone="pecft-vit-tiny",
        benchmark=BenchmarkConfig(name="split_fashion_mnist", n_experiences=2, train_per_class=3, test_per_class=2),
        methods={"L2P": "l2p:vision"},
        baselines={"Prototype": PROTOTYPE},
        epochs=1,
        batch_size=4,
    )
    return dataclasses.replace(setup, **changes)


def test_method_overrides_put_a_method_on_the_comparison_benchmark():
    setup = tiny_setup(overrides={"L2P": {"method.top_k": 3}})
    overrides = method_overrides(setup, "L2P", seed=7)
    assert overrides["benchmark"]["seed"] == 7 and overrides["benchmark"]["train_per_class"] == 3
    assert overrides["optim.epochs"] == 1 and overrides["optim.batch_size"] == 4
    assert overrides["method.top_k"] == 3 and overrides["backbone"] == "pecft-vit-tiny"
    assert "optim.epochs" not in method_overrides(tiny_setup(epochs=None), "L2P", seed=0)


def test_comparison_config_errors():
    with pytest.raises(ConfigError, match="names two runs"):
        tiny_setup(baselines={"L2P": PROTOTYPE})
    with pytest.raises(UnknownNameError, match="method to override"):
        tiny_setup(overrides={"DualPrompt": {}})
    with pytest.raises(ConfigError, match="at least one seed"):
        ComparisonConfig(seeds=[], benchmarks={})
    config = ComparisonConfig(seeds=[0], benchmarks={"vision": tiny_setup()})
    with pytest.raises(UnknownNameError, match="comparison benchmark"):
        run_comparison(config, "audio")
    with pytest.raises(UnknownNameError, match="run"):
        run_comparison(config, "vision", runs=["SeqFT"])


def test_run_comparison_runs_every_method_and_baseline_per_seed_on_the_seeds_benchmark():
    config = ComparisonConfig(seeds=[0, 1], benchmarks={"vision": tiny_setup()})
    records = run_comparison(config, "vision", profile="quick")
    assert [(r.name, r.config["seed"]) for r in records] == [("L2P", 0), ("Prototype", 0), ("L2P", 1),
                                                             ("Prototype", 1)]
    # the seed draws the benchmark: class orders differ between seeds, and equal between runs of one seed
    orders = [r.benchmark["class_order"] for r in records]
    assert orders[0] == orders[1] and orders[0] != orders[2]
    assert records[0].config["address"] == "l2p:vision/L2P"
    assert records[0].config["optim"]["epochs"] == 1 and records[0].config["optim"]["batch_size"] == 4
    for record in records:
        assert np.isnan(record.matrix[1, 0])  # experience 1 is not evaluated before it is trained
        assert record.initial_accuracy is None  # nor is the untrained model
    # a seed's benchmark is built once and shared by its runs: a run after another gives the same record as alone
    after_prototype = run_comparison(config, "vision", runs=["Prototype", "L2P"], seeds=[1], profile="quick")[1]
    np.testing.assert_array_equal(run_one(tiny_setup(), "L2P", 1, profile="quick").matrix, after_prototype.matrix)
    np.testing.assert_array_equal(records[2].matrix, after_prototype.matrix)
    table = summary_table(records)
    assert list(table.index) == ["L2P", "Prototype"] and (table["seeds"] == 2).all()
    assert table.loc["Prototype", "trainable params"] == 0 and table.loc["L2P", "trainable params"] > 0


def record(name: str, seed: int, a_last: float) -> RunRecord:
    """Two experiences: 0.9 on the first after stage 0, 0.4 on it after stage 1, and the second chosen so that
    A_last is ``a_last``."""
    matrix = np.array([[0.9, 0.4], [np.nan, 2 * a_last - 0.4]])
    return RunRecord.from_arrays(name, matrix, None, config={"seed": seed}, benchmark={},
                                 train_seconds=[1.0, 2.0], trainable_parameters=[10, 20])


def test_summary_table_reports_mean_and_population_std_over_seeds():
    records = [record("A", 0, 0.5), record("A", 1, 0.7), record("B", 0, 0.45)]
    table = summary_table(records, costs=True)
    assert table.loc["A", "A_last (%)"] == "60.0 ± 10.0"
    assert table.loc["B", "A_last (%)"] == "45.0 ± 0.0"
    assert table.loc["A", "trainable params"] == 20 and table.loc["A", "train time (s)"] == 3.0
    with pytest.raises(ValueError, match="two records for one seed"):
        summary_table([record("A", 0, 0.5), record("A", 0, 0.7)])
    mean, std = final_accuracy(records)["A"]
    assert mean == pytest.approx(0.6) and std == pytest.approx(0.1)
    curve_mean, curve_std = mean_curves(records)["A"]
    np.testing.assert_allclose(curve_mean, [0.9, 0.6])
    np.testing.assert_allclose(curve_std, [0.0, 0.1])


def test_seed_spread_verdict_says_which_differences_exceed_the_spread():
    assert apart((0.6, 0.1), (0.85, 0.1)) and not apart((0.6, 0.1), (0.75, 0.1))
    records = [record("A", 0, 0.5), record("A", 1, 0.7), record("B", 0, 0.45), record("C", 0, 0.68)]
    verdict = seed_spread_verdict(records, ["A", "B"])
    assert list(verdict.columns) == ["vs A", "vs B"] and list(verdict.index) == ["A", "B", "C"]
    assert verdict.loc["B", "vs A"] == "-15.0, apart"  # 45 ± 0 against 60 ± 10
    assert verdict.loc["C", "vs A"] == "+8.0, within the spread"
    assert verdict.loc["C", "vs B"] == "+23.0, apart" and verdict.loc["A", "vs A"] == ""
    with pytest.raises(ValueError, match="no records of the reference run.*'Z'"):
        seed_spread_verdict(records, ["Z"])


def test_comparison_plots_draw_one_point_per_run():
    records = [record("A", 0, 0.5), record("A", 1, 0.7), record("B", 0, 0.45)]
    ax = plot_accuracy_vs_cost(records, "parameters")
    assert len(ax.texts) == 2 and ax.get_xscale() == "symlog"
    assert plot_accuracy_vs_cost(records, "time").get_xscale() == "log"
    with pytest.raises(ValueError, match="'parameters' or 'time'"):
        plot_accuracy_vs_cost(records, "memory")
    assert len(plot_mean_accuracy_curves(records).get_lines()) == 2
    fig = plot_accuracy_curves_by_run(records, references=("B",), columns=3)
    panels = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in panels] == ["A", "B"]
    assert len(panels[0].get_lines()) == 2 and len(panels[1].get_lines()) == 1  # B is not its own reference
    ax = plot_task_matrix(np.array([[0.5, np.nan], [0.25, 0.75]]), row_names=["digits", "letters"])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1 digits", "2 letters"]
    assert [t.get_text() for t in ax.texts] == ["0.50", "0.25", "0.75"]  # the NaN cell stays blank


def test_the_paper_comparison_resolves_every_method_on_one_backbone_and_benchmark():
    config = load_comparison("paper")
    table = grid_table(config, "vision", "paper")
    assert list(table.index) == ["L2P", "DualPrompt", "CODA-Prompt", "InfLoRA", "SeqFT", "Prototype", "Joint"]
    assert (table["epochs"].iloc[:4] == 5).all() and (table["batch"].iloc[:4] == 16).all()
    assert table.loc["L2P", "what"] == "method l2p:cifar100/L2P"
