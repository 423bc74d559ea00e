"""Utilities on parameters: gradient clipping, flattening (``torchlite.nn.utils``)."""
