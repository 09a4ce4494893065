"""Sweeps: every checkpoint of a training run evaluated, on Slurm or locally; its trend and gate."""
