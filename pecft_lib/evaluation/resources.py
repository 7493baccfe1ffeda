"""What a run costs and where it ran: trainable parameters, peak memory, versions, hardware."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import torch

TRACKED_PACKAGES = (
    "pecft_lib", "torch", "torchvision", "avalanche-lib", "timm", "transformers", "peft", "numpy",
)


def count_trainable_parameters(model: torch.nn.Module) -> int:
    """Number of scalar parameters with ``requires_grad=True``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class PeakMemory:
    """Peak memory of this process while the ``with`` block runs, in MiB.

    On a GPU device it is ``torch.cuda.max_memory_allocated`` (tensors only). On the CPU it is the
    resident-set high-water mark (``VmHWM``), reset at entry through ``/proc/self/clear_refs`` on Linux;
    where that is not possible it falls back to the process-lifetime maximum (``ru_maxrss``), which the
    record marks with ``peak_memory_kind``.
    """

    def __init__(self, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.mib: float | None = None
        self.kind = "cuda_max_allocated" if self.device.type == "cuda" else "cpu_rss_peak"

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        elif not _reset_rss_peak():
            self.kind = "cpu_rss_peak_since_process_start"
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.mib = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.mib = _rss_peak_mib()


def _reset_rss_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _rss_peak_mib() -> float:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


BF16_CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
"""The CPU features that decide what bfloat16 autocast gains on a CPU: AMX (Intel Sapphire Rapids and later)
multiplies bfloat16 tiles natively, AVX-512-BF16 has bfloat16 dot products, with AVX2 or AVX-512F alone
bfloat16 is converted to float32 for the arithmetic and usually runs slower than float32."""


def cpu_flags() -> list[str]:
    """Which of :data:`BF16_CPU_FLAGS` the CPU has (``/proc/cpuinfo``; an empty list where it is not readable)."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return []
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            present = set(line.split(":", 1)[1].split())
            return [flag for flag in BF16_CPU_FLAGS if flag in present]
    return []


def hardware() -> dict[str, object]:
    info: dict[str, object] = {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    }
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return info
