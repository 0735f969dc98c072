"""Which floating-point precision the network runs in, and the autocast context for it.

    prec = resolve_precision("auto", torch.device("cpu"))   # 'bf16' on CPUs with avx512_bf16 / AMX, else 'fp32'
    with autocast(prec, device):
        out = model(x)
    prec, notice = choose_precision("fp16", "cpu")         # ('bf16' or 'fp32', "fp16 runs on CUDA only; ...")

bf16 autocast (with channels_last) made ResUNetBN2F 2-4x faster on a CPU with native
bf16 and changed descriptors by at most 0.003; where the hardware emulates bf16 it
is slower than fp32, so 'auto' only picks it where it is native.
"""
from __future__ import annotations

import functools
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when the CPU reports avx512_bf16 or AMX-BF16 (Linux /proc/cpuinfo; False elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(requested: str, device: torch.device | str) -> str:
    """'auto' -> 'bf16' where it runs natively (CUDA with bf16, CPU with avx512_bf16/AMX), else 'fp32'."""
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; known: {', '.join(PRECISIONS)}")
    device = torch.device(device)
    if requested != "auto":
        if requested == "fp16" and device.type == "cpu":
            raise ValueError("fp16 runs on CUDA only; use bf16 or fp32 on the CPU")
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


def autocast(precision: str, device: torch.device | str) -> AbstractContextManager:
    """Autocast for a resolved precision ('fp32' gives a no-op context)."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=_DTYPES[precision])


def choose_precision(requested: str, device: torch.device | str) -> tuple[str, str | None]:
    """Like :func:`resolve_precision`, but a choice this device cannot run gives 'auto''s choice and a
    one-line notice instead of an error (a setting saved on a CUDA machine never stops a run).

    An unknown name is still a ValueError. bf16 on a CPU without native bf16 runs (emulated,
    slower than fp32) with a notice saying so.
    """
    device = torch.device(device)
    if requested == "fp16" and device.type == "cpu":
        chosen = resolve_precision("auto", device)
        return chosen, f"fp16 runs on CUDA only; using {chosen} on the CPU."
    chosen = resolve_precision(requested, device)
    if chosen == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        return chosen, "bf16 is emulated on this CPU (no avx512_bf16 or AMX) and slower than fp32."
    return chosen, None


def coarse_search_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """bf16 for the coarse pass of the CPU's nearest-neighbour search where bf16 is native and
    the network ran in bf16; None (fp32 throughout) otherwise. Results are exact either way."""
    device = torch.device(device)
    if precision == "bf16" and device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None
