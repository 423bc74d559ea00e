"""Classify a 28x28 image with a checkpoint of mnist_fnn.py, mnist_cnn.py or mnist_rnn.py; prints the top 3.

    python examples/predict.py run.npz --index 0      # image 0 of the test set (its true label is shown)
    python examples/predict.py run.npz digit.png      # a PNG of your own (needs Pillow)

The checkpoint's saved run settings tell which example wrote it and rebuild its model.

A PNG is read as grey; one that is not 28x28 is resized. MNIST digits are light on a dark
background, so an image that is mostly light (a dark digit on white paper) is inverted first.
"""
import argparse
import os
import sys

import numpy as np

import mnist_cnn
import mnist_fnn
import mnist_rnn
from _common import DATASETS, REPO_DATA
from mnist_fnn import torchlite


def rebuild(settings):
    """(model, prepare) for the example whose run settings these are; prepare maps (N, 28, 28) to its input."""
    if settings.get("model") in ("lstm", "gru"):
        return mnist_rnn.RowReader(settings["model"], settings["hidden"], settings["layers"]), mnist_rnn.rows
    if settings.get("model") in ("cnn", "lenet"):
        model = mnist_cnn.build_model(settings["model"], settings["channels"], settings["hidden"], settings["dropout"])
        return model, lambda x: mnist_cnn.normalize(x.reshape(len(x), 1, 28, 28))
    return mnist_fnn.build_model(settings["hidden"], settings["dropout"]), lambda x: x.reshape(len(x), -1)


def load_png(path):
    """A PNG as float32 (28, 28) in [0, 1], light digit on dark background."""
    try:
        from PIL import Image
    except ImportError:
        sys.exit("predict: reading a PNG needs Pillow: pip install pillow (or classify a test image with --index)")
    img = Image.open(path).convert("L")
    if img.size != (28, 28):
        print(f"resizing {img.size[0]}x{img.size[1]} to 28x28")
        img = img.resize((28, 28), Image.BILINEAR)
    x = np.asarray(img, dtype=np.float32) / np.float32(255)
    if x.mean() > 0.5:
        print("inverting: the image is mostly light, MNIST digits are light on dark")
        x = 1 - x
    return x


def softmax(logits):
    z = np.exp(logits - logits.max())
    return z / z.sum()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="a .npz written by mnist_fnn.py, mnist_cnn.py or mnist_rnn.py with --save")
    p.add_argument("image", nargs="?", help="a PNG file to classify")
    p.add_argument("--index", type=int, help="classify this image of the test set instead")
    p.add_argument("--data", default=REPO_DATA, help="folder holding mnist/ (for --index)")
    args = p.parse_args(argv)
    if (args.image is None) == (args.index is None):
        p.error("give either an image file or --index")

    ckpt = torchlite.load(args.checkpoint)
    settings = ckpt["args"]
    model, prepare = rebuild(settings)
    model.load_state_dict(ckpt["model"])
    model.eval()
    dataset = DATASETS[settings["dataset"]]
    if args.index is not None:
        test_set = dataset(root=args.data, train=False)
        x, label = test_set[args.index]
        print(f"test image {args.index}: true class {test_set.classes[label]}")
    else:
        x = load_png(args.image)
        print(f"{os.path.basename(args.image)}:")
    with torchlite.no_grad():
        probs = softmax(model(prepare(x.reshape(1, 28, 28)))[0])
    for k in np.argsort(-probs)[:3]:
        print(f"  {dataset.classes[k]:<12} {probs[k]:7.2%}")
    return probs


if __name__ == "__main__":
    main()
