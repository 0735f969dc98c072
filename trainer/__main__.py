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

from ucn_gui import configure_threads

configure_threads()  # before the imports below load torch (OpenMP reads its wait policy once)

from ucn_gui import CheckpointError, ImageLoadError  # noqa: E402

from .checkpoints import ResumeError  # noqa: E402
from .config import ConfigError, check_inputs, parse_args  # noqa: E402
from .datasets import SceneError  # noqa: E402
from .distributed import setup, teardown  # noqa: E402
from .loop import Trainer  # noqa: E402

# Mistakes in what the command names: one line and exit code 2, never a traceback.
# (FileNotFoundError: a data set that finds no images or pair files where it was pointed.)
USER_ERRORS = (ConfigError, ResumeError, SceneError, CheckpointError, ImageLoadError, FileNotFoundError)


def _fail(message: str) -> int:
    print(f"python -m trainer: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = parse_args(argv)
    try:
        check_inputs(cfg)
    except ConfigError as exc:
        return _fail(str(exc))
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
        try:
            trainer = Trainer(cfg, ctx, command=f"{prefix} {shlex.join(argv)}".strip())
        except ResumeError as exc:
            return _fail(f"--resume {exc}")
        except CheckpointError as exc:  # the model --weights names
            return _fail(f"--weights {exc}")
        except USER_ERRORS as exc:
            return _fail(str(exc))
        trainer.fit()
    finally:
        teardown(ctx)
    return 0


if __name__ == "__main__":
    sys.exit(main())
