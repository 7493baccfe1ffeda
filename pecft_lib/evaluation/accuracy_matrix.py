"""The accuracy matrix as an Avalanche plugin metric.

Added to an :class:`avalanche.training.plugins.EvaluationPlugin`, it fills ``R[i, t]`` (accuracy on
experience ``i`` after training stage ``t``) from the strategy's own evaluation passes, so no training or
evaluation loop is re-implemented here: the strategy trains, ``strategy.eval(test_stream)`` evaluates,
and this metric listens.

Evaluations before the first training stage fill :attr:`AccuracyMatrix.initial` (the untrained model's
accuracy ``b_i``, needed for forward transfer).
"""

from __future__ import annotations

import numpy as np
from avalanche.evaluation.metric_definitions import PluginMetric
from avalanche.evaluation.metric_results import MetricValue
from avalanche.evaluation.metrics import Accuracy

__all__ = ["AccuracyMatrix"]


class AccuracyMatrix(PluginMetric[np.ndarray]):
    """Collects ``R[i, t]`` for ``n_experiences`` experiences; see the module docstring."""

    def __init__(self, n_experiences: int):
        super().__init__()
        self.n_experiences = n_experiences
        self._accuracy = Accuracy()
        self.reset()

    def reset(self) -> None:
        self.matrix = np.full((self.n_experiences, self.n_experiences), np.nan)
        self.initial = np.full(self.n_experiences, np.nan)
        self.stage = -1  # index of the last finished training stage; -1 = untrained

    def result(self) -> np.ndarray:
        return self.matrix.copy()

    def after_training_exp(self, strategy) -> None:
        self.stage += 1
        if self.stage >= self.n_experiences:
            raise RuntimeError(
                f"AccuracyMatrix was built for {self.n_experiences} experiences but the strategy trained a "
                f"stage {self.stage + 1}; build a new evaluator per run"
            )

    def before_eval_exp(self, strategy) -> None:
        self._accuracy.reset()

    def after_eval_iteration(self, strategy) -> None:
        self._accuracy.update(strategy.mb_output, strategy.mb_y)

    def after_eval_exp(self, strategy) -> list[MetricValue]:
        i = strategy.experience.current_experience
        value = self._accuracy.result()
        if self.stage < 0:
            self.initial[i] = value
            name = f"Accuracy_Untrained/Exp{i:03d}"
        else:
            self.matrix[i, self.stage] = value
            name = f"Accuracy_Matrix/Exp{i:03d}/Stage{self.stage:03d}"
        return [MetricValue(self, name, value, strategy.clock.train_iterations)]

    def __str__(self) -> str:
        return "AccuracyMatrix"
