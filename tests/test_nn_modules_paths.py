"""torch's import paths under torch.nn.modules work for torchlite: the same layer objects, private bases too."""
import importlib
import inspect

import pytest
import torch.nn.modules

import torchlite.nn as nn
import torchlite.nn.modules as modules

# public classes torch files under torch.nn.modules that torchlite does not provide there, and why
NOT_PROVIDED = {
    "Container": "deprecated in torch since 0.4",
    "NonDynamicallyQuantizableLinear": "a marker class for torch's quantization",
    "NLLLoss2d": "deprecated in torch: NLLLoss takes (N, C, H, W) input",
    "SyncBatchNorm": "lives in torchlite.distributed (nn.SyncBatchNorm imports it on first use)",
}


@pytest.mark.parametrize("name", sorted(modules._FILES))
def test_every_torch_layer_of_the_file_is_there(name):
    theirs = importlib.import_module(f"torch.nn.modules.{name}")
    ours = importlib.import_module(f"torchlite.nn.modules.{name}")
    classes = [n for n, v in vars(theirs).items()
               if inspect.isclass(v) and v.__module__ == theirs.__name__ and not n.startswith("_")]
    missing = [n for n in classes if not hasattr(ours, n) and n not in NOT_PROVIDED]
    assert not missing, f"torchlite.nn.modules.{name} lacks {missing}"
    for n in classes:
        if n not in NOT_PROVIDED and hasattr(nn, n):
            assert getattr(ours, n) is getattr(nn, n)


@pytest.mark.parametrize("path, name", [("loss", "_Loss"), ("loss", "_WeightedLoss"), ("module", "Module"),
                                        ("batchnorm", "_BatchNorm"), ("conv", "_ConvNd"), ("pooling", "_MaxPoolNd")])
def test_private_bases_users_subclass(path, name):
    assert hasattr(getattr(torch.nn.modules, path), name)  # torch has it there
    base = getattr(importlib.import_module(f"torchlite.nn.modules.{path}"), name)
    assert inspect.isclass(base) and issubclass(base, nn.Module)


def test_a_custom_loss_on_the_torch_path():
    from torchlite.nn.modules.loss import _Loss

    class Half(_Loss):
        def forward(self, x):
            return x.sum() / 2

    assert Half().reduction == "mean" and Half()(modules.Linear(2, 2).weight.data.copy() * 0 + 2) == 4.0
    assert modules.Linear is nn.Linear


def test_reachable_as_an_attribute_after_import_torchlite():
    import subprocess
    import sys

    code = "import torchlite; print(torchlite.nn.modules.loss._Loss.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "_Loss"
