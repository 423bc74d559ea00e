"""Datasets, samplers and DataLoader (``torchlite.data``)."""
