"""Device names that cannot strand the user.

    name = check_device_name("cuda:1")       # DeviceNameError for 'gpu', 'foo', ...
    device, notice = choose_device("cuda")    # CPU plus a one-line notice when CUDA is missing

Accepted names: auto (CUDA when available), cpu, cuda, cuda:N. A CUDA choice on a
machine without that device runs on the CPU and says so, so that a saved choice
never stops the app from working.
"""
from __future__ import annotations

import re

ACCEPTED = ("auto", "cpu", "cuda", "cuda:N")
_NAME = re.compile(r"auto|cpu|cuda(:\d+)?")


class DeviceNameError(ValueError):
    """A device name outside auto, cpu, cuda, cuda:N."""


def check_device_name(name: str) -> str:
    """The name, normalised (lower case, no spaces), or DeviceNameError naming the accepted values."""
    normal = str(name).strip().lower()
    if not _NAME.fullmatch(normal):
        raise DeviceNameError(f"unknown device {name!r}; use one of: {', '.join(ACCEPTED)}")
    return normal


def choose_device(name: str):
    """(torch.device, notice or None). Unavailable CUDA devices give the CPU and a notice."""
    import torch

    normal = check_device_name(name)
    if normal == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu"), None
    if normal == "cpu":
        return torch.device("cpu"), None
    if not torch.cuda.is_available():
        return torch.device("cpu"), f"Device {normal} is not available (no CUDA device found); using the CPU."
    index = int(normal.partition(":")[2] or 0)
    count = torch.cuda.device_count()
    if index >= count:
        return torch.device("cpu"), f"Device {normal} is not available (CUDA devices here: {count}); using the CPU."
    return torch.device(normal), None
