"""``python -m trainer`` / ``ucn-train`` / ``torchrun --nproc_per_node N -m trainer``: train a UCN model.

    python -m trainer --dataset homography --data_dir photos/ --model ResUNetBN2F --model_n_out 32
    python -m trainer --batch_size 1 --iter_size 2 --data_dir_raw RAW --data_dir_processed PROCESSED \\
        --num_hn_samples_per_batch 40000 --model_n_out 96          # the seed's YFCC command
"""
from __future__ import annotations

import logging
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from ucn_gui.core.threads import configure_threads

configure_threads()  # before the imports below load torch (OpenMP reads its wait policy once)

from .config import parse_args  # noqa: E402
from .distributed import setup, teardown  # noqa: E402
from .loop import Trainer  # noqa: E402


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = parse_args(argv)
    ctx = setup(cfg.device)
    logging.basicConfig(
        level=logging.INFO if ctx.is_main else logging.WARNING,
        format=f"%(asctime)s [rank {ctx.rank}] %(message)s" if ctx.enabled else "%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
    )
    if ctx.enabled:
        prefix = f"torchrun --nproc_per_node {ctx.world_size} -m trainer"
    else:
        prefix = "ucn-train" if Path(sys.argv[0]).name == "ucn-train" else "python -m trainer"
    try:
        trainer = Trainer(cfg, ctx, command=f"{prefix} {shlex.join(argv)}".strip())
        trainer.fit()
    finally:
        teardown(ctx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
