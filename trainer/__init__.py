"""Train UCN models with the hardest-contrastive loss: ``python -m trainer`` (or ``ucn-train``).

    # any folder(s) of photos, self-supervised by random homographies
    python -m trainer --dataset homography --data_dir photos/a photos/b --val_data_dir photos/val \\
        --model ResUNetBN2F --model_n_out 32 --optimizer adam --out_dir runs/mine
    # YFCC100M as the seed trains (after python -m trainer.prepare_yfcc --source RAW --target PROCESSED)
    python -m trainer --batch_size 1 --iter_size 2 --data_dir_raw RAW --data_dir_processed PROCESSED \\
        --num_hn_samples_per_batch 40000 --model_n_out 96
    # data-parallel, one process per GPU (or gloo on CPUs)
    torchrun --nproc_per_node 2 -m trainer ...

A run writes to ``--out_dir``: checkpoint.pth (latest), best_val_checkpoint.pth,
best.safetensors + best.json (app-ready, with a model card), final.safetensors,
train.csv / val.csv, tensorboard/, training.png. ``--resume DIR_OR_FILE`` continues.

Modules: config (flags), datasets/ (homography, yfcc, batching), prepare_yfcc,
loss (hardest-contrastive), validate (hit / reciprocity ratios), loop (Trainer),
checkpoints, logs, distributed, geometry (epipolar labels).
"""
