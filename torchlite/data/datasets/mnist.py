"""MNIST and Fashion-MNIST: 28x28 grey images in 10 classes, 60,000 for training and 10,000 for test.

Where the files are looked for, in order (the first folder holding the split's two files wins):
1. ``root`` (the argument), 2. ``$TORCHLITE_DATA``, 3. ``~/.cache/torchlite``,
4. the system dataset folder ``/usr/share/datasets``.
Each of these is a *root* that holds one folder per dataset: ``mnist/`` or ``fashion-mnist/``
(torchvision's layout ``MNIST/raw/`` and ``FashionMNIST/raw/`` is read too), containing the four
standard files, gzip-compressed (``.gz``) or not:
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``.
``download=True`` fetches the missing files (md5-checked) into ``root``, else ``$TORCHLITE_DATA``,
else ``~/.cache/torchlite``.

Samples: ``ds[i]`` is ``(image, label)`` with ``image`` float32 of shape (1, 28, 28) in [0, 1]
(what torchvision's ``ToTensor`` gives) and ``label`` an int. A ``transform`` receives the raw
uint8 (28, 28) array instead (what torchvision hands its transforms, as a PIL image) and its
result is returned as is; ``target_transform`` receives the int label.
Without transforms the DataLoader builds each batch with one fancy index (``get_batch``).
"""
import os

import numpy as np

from ..collate import default_collate
from ..dataset import Dataset
from .download import download_url, md5sum
from .idx import IDXError, read_idx

__all__ = ["MNIST", "FashionMNIST", "DatasetNotFoundError"]

#: Roots searched after ``root``, ``$TORCHLITE_DATA`` and ``~/.cache/torchlite``.
SYSTEM_ROOTS = ["/usr/share/datasets"]


class DatasetNotFoundError(FileNotFoundError):
    """The dataset files are in none of the searched folders (and were not downloaded)."""


def _cache_root():
    return os.path.join(os.path.expanduser("~"), ".cache", "torchlite")


def _to_float(images):
    """uint8 images -> float32 in [0, 1]; one definition, so single samples and batches agree bitwise."""
    return np.divide(images, np.float32(255), dtype=np.float32)


class MNIST(Dataset):
    """The MNIST handwritten digits (LeCun et al.).

    Args:
        root: folder holding ``mnist/`` (searched first; see the module docstring for the rest).
        train: the 60,000 training images if True, else the 10,000 test images.
        download: fetch the files from the mirrors if they are found nowhere.
        transform: callable applied to the raw uint8 (28, 28) image.
        target_transform: callable applied to the int label.

    Attributes:
        data: uint8 array (N, 28, 28). targets: int64 array (N,). classes: the class names.
        folder: the folder the files were read from.
    """

    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
    resources = [
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ]
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]
    #: Folder names under a root, first one used for downloads.
    folders = ["mnist", os.path.join("MNIST", "raw")]

    def __init__(self, root=None, train=True, download=False, transform=None, target_transform=None):
        self.root = None if root is None else os.fspath(root)
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        folder = self._find()
        if folder is None and download:
            self.download()
            folder = self._find()
        if folder is None:
            raise DatasetNotFoundError(self._not_found_message())
        self.folder = folder
        self.data, self.targets = self._load(folder)

    # ----------------------------------------------------------------- samples
    def __getitem__(self, index):
        img, target = self.data[index], int(self.targets[index])
        img = _to_float(img)[None] if self.transform is None else self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def get_batch(self, indices):
        """``[images (B, 1, 28, 28) float32, labels (B,) int64]`` with one fancy index each."""
        idx = np.asarray(indices, dtype=np.intp)
        if self.transform is not None or self.target_transform is not None:
            return default_collate([self[i] for i in idx])
        return [_to_float(self.data[idx])[:, None], self.targets[idx]]

    def __len__(self):
        return len(self.data)

    @property
    def class_to_idx(self):
        return {c: i for i, c in enumerate(self.classes)}

    def __repr__(self):
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Root location: {self.folder}", f"    Split: {'Train' if self.train else 'Test'}"]
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}")
        if self.target_transform is not None:
            lines.append(f"    Target transform: {self.target_transform!r}")
        return "\n".join(lines)

    # ----------------------------------------------------------------- finding and reading files
    def _split_files(self):
        prefix = "train" if self.train else "t10k"
        return [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]

    def _search_roots(self):
        """(root, how it was chosen) in search order."""
        roots = []
        if self.root is not None:
            roots.append((self.root, "root argument"))
        if os.environ.get("TORCHLITE_DATA"):
            roots.append((os.environ["TORCHLITE_DATA"], "$TORCHLITE_DATA"))
        roots.append((_cache_root(), "user cache"))
        roots += [(r, "system datasets") for r in SYSTEM_ROOTS]
        return roots

    def _find(self):
        for root, _ in self._search_roots():
            for sub in self.folders:
                folder = os.path.join(root, sub)
                if all(_existing(folder, name) for name in self._split_files()):
                    return folder
        return None

    def _load(self, folder):
        images_path, labels_path = (_existing(folder, name) for name in self._split_files())
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
            raise IDXError(f"{images_path}: expected uint8 images of shape (N, 28, 28), "
                           f"got {images.dtype} of shape {images.shape}")
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise IDXError(f"{labels_path}: expected uint8 labels of shape (N,), got {labels.dtype} of shape "
                           f"{labels.shape}")
        if len(images) != len(labels):
            raise IDXError(f"{folder}: {len(images)} images but {len(labels)} labels")
        if len(labels) and labels.max() >= len(self.classes):
            raise IDXError(f"{labels_path}: label {labels.max()} out of range for {len(self.classes)} classes")
        return images, labels.astype(np.int64)

    def _download_root(self):
        return self.root or os.environ.get("TORCHLITE_DATA") or _cache_root()

    def download(self):
        """Fetch the four files (skipping ones already there with the right md5) into the download root."""
        folder = os.path.join(self._download_root(), self.folders[0])
        for name, md5 in self.resources:
            path = os.path.join(folder, name)
            if os.path.exists(path) and md5sum(path) == md5:
                continue
            download_url([mirror + name for mirror in self.mirrors], path, md5=md5)
        return folder

    def _not_found_message(self):
        names = ", ".join(f"{n}[.gz]" for n in self._split_files())
        lines = [f"{type(self).__name__}: the {'train' if self.train else 'test'} files ({names}) were not found. "
                 "Looked in:"]
        for root, why in self._search_roots():
            lines += [f"  {os.path.join(root, sub)}  ({why})" for sub in self.folders]
        if not os.environ.get("TORCHLITE_DATA"):
            lines.append("  ($TORCHLITE_DATA is not set)")
        if self.root is not None and all(_existing(self.root, n) for n in self._split_files()):
            lines.append(f"The files are in {self.root} itself: pass its parent folder as root (root holds "
                         f"'{self.folders[0]}/').")
        lines.append(f"Get them with {type(self).__name__}(..., download=True), which saves them to "
                     f"{os.path.join(self._download_root(), self.folders[0])}, or copy the four files "
                     f"(.gz or uncompressed) into a '{self.folders[0]}/' folder under one of the roots above.")
        return "\n".join(lines)


def _existing(folder, name):
    """The path of ``name`` or ``name.gz`` in ``folder`` (uncompressed first), or None."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando): 28x28 grey images of clothing, same shapes and API as ``MNIST``."""

    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
               "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"]
    resources = [
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ]
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
    folders = ["fashion-mnist", os.path.join("FashionMNIST", "raw")]
