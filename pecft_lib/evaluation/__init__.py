"""Evaluation: accuracy matrix, continual-learning metrics, cost measurements, result records, plots."""

from . import metrics
from .accuracy_matrix import AccuracyMatrix
from .batch_leakage import accuracy_per_experience
from .protocols import STANDARD_PROTOCOLS, EvalProtocol, ProtocolEvaluator
from .record import RunRecord, summarize
from .resources import PeakMemory, count_trainable_parameters
from .runner import make_evaluator, run_strategy
from .table import metrics_table, single_task_table
from .task_aware import task_aware_accuracy

__all__ = [
    "AccuracyMatrix",
    "EvalProtocol", "ProtocolEvaluator", "STANDARD_PROTOCOLS",
    "accuracy_per_experience",
    "PeakMemory",
    "RunRecord",
    "count_trainable_parameters",
    "make_evaluator",
    "metrics",
    "metrics_table",
    "run_strategy",
    "single_task_table",
    "summarize",
    "task_aware_accuracy",
]
