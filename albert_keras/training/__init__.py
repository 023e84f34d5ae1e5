"""Pretraining: the official LAMB/AdamW and schedule, strategies, exact-resume checkpoints and
`albert_keras.training.pretrain.pretrain` (the `albert-keras pretrain` command)."""
