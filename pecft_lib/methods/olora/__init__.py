"""O-LoRA (Wang et al. 2023, "Orthogonal Subspace Learning for Language Model Continual Learning"): one LoRA
adapter per task, all summed at inference, trained under a penalty on the overlap of its down-projection with the
previous tasks' (official code: cmnfriend/O-LoRA, commit 07117e1)."""

from .analysis import down_overlap
from .adapters import ModuleFactors, adapter_name, add_task_adapter, lora_layers, target_modules, task_factors
from .config import (
    ORTHOGONALITY_FORMS,
    OLoRAClassifierConfig,
    OLoRAConfig,
    OLoRAExperiments,
    OLoRAGenerativeConfig,
    OptimConfig,
    inclora,
)
from .generative import (
    OLoRASeq2Seq,
    encode_examples,
    exact_match,
    load_t5_tokenizer,
    normalize_answer,
    run_olora_generative,
)
from .loss import PenaltyRecord, l2_loss, olora_penalties, orthogonality_loss
from .model import OLoRAClassifier
from .strategy import OLoRA, build_olora_strategy, prepare_olora, run_olora

__all__ = [
    "ModuleFactors", "OLoRA", "OLoRAClassifier", "OLoRAClassifierConfig", "OLoRAConfig", "OLoRAExperiments",
    "OLoRAGenerativeConfig", "OLoRASeq2Seq", "ORTHOGONALITY_FORMS", "OptimConfig", "PenaltyRecord", "adapter_name",
    "add_task_adapter", "build_olora_strategy", "down_overlap", "encode_examples", "exact_match", "inclora", "l2_loss",
    "load_t5_tokenizer", "lora_layers", "normalize_answer", "olora_penalties", "orthogonality_loss", "prepare_olora",
    "run_olora",
    "run_olora_generative", "target_modules", "task_factors",
]
