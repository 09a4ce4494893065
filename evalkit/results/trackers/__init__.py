"""Trackers (MLflow, Weights & Biases): evaluation figures logged at each checkpoint's training step."""
