"""Resumable training runs: atomic checkpoints and an exact resume of an interrupted run::

    from pecft_lib.methods import l2p
    from pecft_lib.training import run_resumable

    build = lambda: l2p.prepare_l2p(cfg)               # a fresh (strategy, benchmark, record config)
    record = run_resumable(build, "runs/l2p", name="L2P", checkpoint_every=200)
    # killed? the same call with resume=True continues from runs/l2p/checkpoint.pt, with the same result
    record = run_resumable(build, "runs/l2p", name="L2P", checkpoint_every=200, resume=True)

``python -m pecft_lib.training.overhead`` measures what a checkpoint costs (seconds, size).
"""

from .checkpoint import CheckpointError, atomic_save, load_checkpoint, remove_stale_temporaries
from .resume import FORMAT_VERSION, Position, RunFiles, check_resumable, run_resumable
from .rng import capture_rng, restore_rng
from .state import load_strategy_state, register_strategy_state, strategy_state

__all__ = [
    "CheckpointError", "FORMAT_VERSION", "Position", "RunFiles", "atomic_save", "capture_rng", "check_resumable",
    "load_checkpoint", "load_strategy_state", "register_strategy_state", "remove_stale_temporaries",
    "restore_rng", "run_resumable", "strategy_state",
]
