"""Datasets with loaders for their standard files: MNIST and Fashion-MNIST (IDX format)."""
from .download import DownloadError, download_url, md5sum
from .idx import IDXError, read_idx, write_idx
from .mnist import MNIST, DatasetNotFoundError, FashionMNIST

__all__ = ["MNIST", "FashionMNIST", "DatasetNotFoundError", "IDXError", "read_idx", "write_idx",
           "DownloadError", "download_url", "md5sum"]
