"""Optimizers and learning-rate schedulers (``torchlite.optim``)."""
