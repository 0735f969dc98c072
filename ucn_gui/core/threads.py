"""One thread setting for the whole process, made before torch is imported.

The entry points (the window, ucn-match, the speed benchmarks) call
:func:`configure_threads` first, before importing anything that imports torch:

* ``OMP_WAIT_POLICY=PASSIVE`` (unless already set): idle OpenMP threads sleep
  instead of spinning. On 2 cores with one kept busy by another process,
  matching the sample pair at 640 px took 6.9-8.7 s with spinning threads and
  4.1-4.3 s with passive ones (29.7 s against 4.4 s next to a training run).
  OpenMP reads the variable once, when torch loads it, hence "before torch".
* torch's intra-op threads and OpenCV's threads = the number of physical cores
  this process may run on, so the two pools (and hyper-threads) do not
  oversubscribe the CPU. ``UCN_THREADS``, else ``OMP_NUM_THREADS``, overrides it.
"""
from __future__ import annotations

import os
from pathlib import Path


def _env_count(name: str) -> int | None:
    """A positive thread count from the environment (OMP_NUM_THREADS may be a list: '4,2')."""
    raw = os.environ.get(name, "").split(",")[0].strip()
    try:
        n = int(raw)
    except ValueError:
        return None
    return n if n > 0 else None


def _allowed_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def physical_cores() -> int:
    """Physical cores among the CPUs this process may use (hyper-threads counted once)."""
    cpus = _allowed_cpus()
    cores = set()
    for cpu in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add((topo.joinpath("physical_package_id").read_text().strip(), topo.joinpath("core_id").read_text().strip()))
        except OSError:
            return len(cpus)  # no topology (not Linux, or hidden): count logical CPUs
    return max(len(cores), 1)


def thread_count() -> int:
    """UCN_THREADS, else OMP_NUM_THREADS, else the physical core count."""
    return _env_count("UCN_THREADS") or _env_count("OMP_NUM_THREADS") or physical_cores()


def configure_threads() -> int:
    """Set the wait policy and both thread pools; returns the thread count used.

    Call it before anything imports torch; later calls only reset the counts.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # too late for this process once torch is loaded
    n = thread_count()
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    try:
        import cv2
    except ImportError:
        pass
    else:
        cv2.setNumThreads(n)
    return n
