"""The error messages users hit most, word for word.

Bad input to a layer raises a ValueError or TypeError that starts with the layer's repr and says
what was expected and what came: ``<repr>: expected ..., got ...``. Where the project keeps
torch's own wording (optimizer hyperparameters, DataLoader arguments, state_dict refusals, class
targets out of range) the test pins that wording instead, so a change is deliberate. Every test
also checks that a refusal changes nothing.
"""
import re

import numpy as np
import pytest

import torchlite
import torchlite.nn as nn
import torchlite.optim as optim
from torchlite.data import DataLoader, SequentialSampler, TensorDataset

rng = np.random.default_rng(0)


def raises_exactly(exc, message):
    """pytest.raises matching the whole message, not a prefix or a fragment."""
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


# ------------------------------------------------------------------------- layer input
def test_conv2d_wrong_channels():
    conv = nn.Conv2d(3, 16, 3)
    with raises_exactly(ValueError, "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1)): expected input "
                                    "(N, 3, H, W) or (3, H, W), got shape (8, 1, 28, 28)"):
        conv(np.zeros((8, 1, 28, 28), np.float32))
    assert conv.saved_count == 0


def test_conv2d_input_smaller_than_kernel():
    with raises_exactly(ValueError, "Conv2d(1, 1, kernel_size=(3, 3), stride=(1, 1)): input of spatial size "
                                    "(2, 2) (padded (2, 2)) is smaller than the kernel reach (3, 3) "
                                    "(kernel (3, 3), dilation (1, 1))"):
        nn.Conv2d(1, 1, 3)(np.zeros((1, 1, 2, 2), np.float32))


def test_batchnorm2d_wrong_channels():
    bn = nn.BatchNorm2d(16)
    before = {k: v.copy() for k, v in bn.state_dict().items()}
    with raises_exactly(ValueError, "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, bias=True, "
                                    "track_running_stats=True): expected input (N, 16, H, W), "
                                    "got shape (8, 3, 4, 4)"):
        bn(np.zeros((8, 3, 4, 4), np.float32))
    for k, v in bn.state_dict().items():  # running statistics and the batch counter untouched
        np.testing.assert_array_equal(v, before[k])


def test_linear_wrong_feature_size():
    with raises_exactly(ValueError, "Linear(in_features=4, out_features=2, bias=True): expected input (*, 4), "
                                    "got shape (2, 3)"):
        nn.Linear(4, 2)(np.zeros((2, 3)))


def test_error_inside_sequential_names_the_layer():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(2, 1))
    with raises_exactly(ValueError, "Linear(in_features=2, out_features=1, bias=True): expected input (*, 2), "
                                    "got shape (5, 3)"):
        model(np.zeros((5, 4)))


def test_non_numeric_input():
    with raises_exactly(TypeError, "Linear(in_features=4, out_features=2, bias=True): expected a floating-point "
                                   "input, got dtype <U1"):
        nn.Linear(4, 2)(np.array([["a"] * 4]))


def test_lstm_wrong_initial_state():
    with raises_exactly(ValueError, "LSTM(3, 4): expected h_0 (1, 2, 4), got shape (1, 3, 4)"):
        nn.LSTM(3, 4)(np.zeros((5, 2, 3)), (np.zeros((1, 3, 4)), np.zeros((1, 2, 4))))


def test_softmax_dim_out_of_range():
    """An IndexError as torch raises, and a ValueError like every other input error here."""
    with raises_exactly(IndexError, "Softmax(dim=2): Dimension out of range (expected to be in range of [-2, 1], "
                                    "but got 2)") as info:
        nn.Softmax(dim=2)(np.zeros((3, 4)))
    assert isinstance(info.value, ValueError)


def test_pooling_output_too_small():
    with raises_exactly(ValueError, "MaxPool2d(kernel_size=3, stride=3, padding=0, dilation=1, ceil_mode=False): "
                                    "given input size (2, 2), the calculated output size (0, 0) is too small "
                                    "(kernel_size=(3, 3), stride=(3, 3), padding=(0, 0), dilation=(1, 1))"):
        nn.MaxPool2d(3)(np.zeros((1, 1, 2, 2)))


# ------------------------------------------------------------------------- losses and targets
def test_cross_entropy_target_out_of_range():
    loss = nn.CrossEntropyLoss()
    with raises_exactly(ValueError, "CrossEntropyLoss(): target class 12 out of range [0, 10) at position 3"):
        loss(rng.standard_normal((4, 10)), np.array([1, 2, 3, 12]))
    with raises_exactly(ValueError, "CrossEntropyLoss(): target class -1 out of range [0, 10) at position 1"):
        loss(rng.standard_normal((4, 10)), np.array([1, -1, 3, 2]))
    assert loss.saved_count == 0


def test_cross_entropy_float_class_targets():
    with raises_exactly(TypeError, "CrossEntropyLoss(): class-index target must be an integer array, got float64"):
        nn.CrossEntropyLoss()(rng.standard_normal((4, 10)), np.array([1.0, 2.0, 3.0, 4.0]))


def test_nll_target_out_of_range_and_float_targets():
    with raises_exactly(ValueError, "NLLLoss(): target class 10 out of range [0, 10) at position 0"):
        nn.NLLLoss()(rng.standard_normal((2, 10)), np.array([10, 0]))
    with raises_exactly(TypeError, "NLLLoss(): class-index target must be an integer array, got float32"):
        nn.NLLLoss()(rng.standard_normal((2, 10)), np.array([1, 0], np.float32))


def test_loss_target_shape():
    with raises_exactly(ValueError, "MSELoss(): target of shape (4, 2) does not broadcast to input shape (4, 3)"):
        nn.MSELoss()(np.zeros((4, 3)), np.zeros((4, 2)))


# ------------------------------------------------------------------------- embedding
def test_embedding_index_out_of_range():
    emb = nn.Embedding(10, 3)
    with raises_exactly(IndexError, "Embedding(10, 3): index out of range: expected indices in [0, 10), "
                                    "got 10") as info:
        emb(np.array([[1, 10], [3, 4]]))
    assert isinstance(info.value, ValueError)
    assert emb.saved_count == 0


def test_embedding_float_indices():
    with raises_exactly(TypeError, "Embedding(10, 3): expected integer indices, got dtype float64"):
        nn.Embedding(10, 3)(np.array([1.0, 2.0]))


# ------------------------------------------------------------------------- backward without forward
def test_backward_before_forward():
    message = ("Linear.backward() called with nothing saved: run forward with gradients enabled (not under "
               "torchlite.no_grad()) before backward, one backward per forward call; "
               "train()/eval()/clear_saved() drop saved state")
    layer = nn.Linear(4, 2)
    with raises_exactly(RuntimeError, message):
        layer.backward(np.zeros((1, 2)))
    with torchlite.no_grad():
        layer(np.zeros((1, 4)))
    with raises_exactly(RuntimeError, message):
        layer.backward(np.zeros((1, 2)))
    assert layer.weight.grad is None


def test_backward_twice_after_one_forward():
    loss = nn.MSELoss()
    loss(np.zeros(3), np.ones(3))
    loss.backward()
    with pytest.raises(RuntimeError, match=r"^MSELoss\.backward\(\) called with nothing saved"):
        loss.backward()


# ------------------------------------------------------------------------- state_dict
def _model():
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))


def _unchanged(model, before):
    state = model.state_dict()
    assert list(state) == list(before)
    for k, v in state.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


@pytest.fixture
def model_and_state():
    model = _model()
    return model, {k: v.copy() for k, v in model.state_dict().items()}


def test_state_dict_missing_keys(model_and_state):
    model, before = model_and_state
    state = {k: v + 1 for k, v in before.items() if not k.startswith("2.")}
    with raises_exactly(nn.StateDictError, 'Error(s) in loading state_dict for Sequential:\n\t'
                                           'Missing key(s) in state_dict: "2.weight", "2.bias". '):
        model.load_state_dict(state)
    _unchanged(model, before)


def test_state_dict_unexpected_keys(model_and_state):
    model, before = model_and_state
    state = {k: v + 1 for k, v in before.items()}
    state["3.weight"] = np.zeros((2, 2))
    with raises_exactly(nn.StateDictError, 'Error(s) in loading state_dict for Sequential:\n\t'
                                           'Unexpected key(s) in state_dict: "3.weight". '):
        model.load_state_dict(state)
    _unchanged(model, before)


def test_state_dict_size_mismatch(model_and_state):
    model, before = model_and_state
    state = {k: v + 1 for k, v in before.items()}
    state["0.weight"] = np.zeros((3, 5))
    with raises_exactly(nn.StateDictError, "Error(s) in loading state_dict for Sequential:\n\t"
                                           "size mismatch for 0.weight: copying a param with shape (3, 5) from "
                                           "checkpoint, the shape in current model is (3, 4)."):
        model.load_state_dict(state)
    _unchanged(model, before)
    assert isinstance(nn.StateDictError("x"), ValueError)


def test_state_dict_of_the_wrong_type(model_and_state):
    model, before = model_and_state
    with raises_exactly(TypeError, "Expected state_dict to be dict-like, got list."):
        model.load_state_dict(list(before.values()))
    _unchanged(model, before)


# ------------------------------------------------------------------------- optimizers
@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD(p, lr=-0.1), "Invalid learning rate: -0.1"),
    (lambda p: optim.SGD(p, lr=0.1, momentum=-0.5), "Invalid momentum value: -0.5"),
    (lambda p: optim.SGD(p, lr=0.1, weight_decay=-1e-4), "Invalid weight_decay value: -0.0001"),
    (lambda p: optim.SGD(p, lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (lambda p: optim.Adam(p, lr=-1e-3), "Invalid learning rate: -0.001"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (lambda p: optim.AdamW(p, eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (lambda p: optim.RMSprop(p, alpha=-0.9), "Invalid alpha value: -0.9"),
])
def test_optimizer_bad_hyperparameters(make, message):
    """torch's wording, word for word."""
    with raises_exactly(ValueError, message):
        make(nn.Linear(2, 2).parameters())


def test_optimizer_bad_params():
    model = nn.Linear(2, 2)
    with raises_exactly(TypeError, "params argument given to the optimizer should be an iterable of Parameters or "
                                   "dicts, but got torchlite.nn.linear.Linear (pass model.parameters())"):
        optim.Adam(model)
    with raises_exactly(ValueError, "optimizer got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with raises_exactly(TypeError, "optimizer can only optimize Parameters, but one of the params is "
                                   "numpy.ndarray"):
        optim.SGD([np.zeros(3)], lr=0.1)
    with raises_exactly(ValueError, "some parameters appear in more than one parameter group"):
        optim.SGD([{"params": [model.weight]}, {"params": [model.weight]}], lr=0.1)


def test_scheduler_needs_an_optimizer():
    with raises_exactly(TypeError, "Linear is not an Optimizer"):
        optim.lr_scheduler.StepLR(nn.Linear(2, 2), 1)


# ------------------------------------------------------------------------- DataLoader
@pytest.fixture
def dataset():
    return TensorDataset(np.arange(20.0).reshape(10, 2), np.arange(10))


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(batch_size=0), ValueError, "batch_size should be a positive integer value, but got batch_size=0"),
    (dict(batch_size=2.5), ValueError, "batch_size should be a positive integer value, but got batch_size=2.5"),
    (dict(shuffle=True, sampler="sequential"), ValueError, "sampler option is mutually exclusive with shuffle"),
    (dict(batch_size=4, batch_sampler=[[0, 1]]), ValueError,
     "batch_sampler option is mutually exclusive with batch_size, shuffle, sampler, and drop_last"),
    (dict(batch_size=None, drop_last=True), ValueError,
     "batch_size=None option disables auto-batching and is mutually exclusive with drop_last"),
    (dict(num_workers=-1), ValueError,
     "num_workers option should be non-negative; use num_workers=0 to disable multiprocessing."),
    (dict(sampler=5), TypeError, "DataLoader: expected an iterable sampler (of indices), got int"),
    (dict(collate_fn="stack"), TypeError, "DataLoader: expected a callable collate_fn, got str"),
])
def test_dataloader_bad_arguments(dataset, kwargs, exc, message):
    if kwargs.get("sampler") == "sequential":
        kwargs["sampler"] = SequentialSampler(dataset)
    with raises_exactly(exc, message):
        DataLoader(dataset, **kwargs)


def test_dataloader_needs_a_dataset():
    """Refused when built, not at the first batch with a bare TypeError from len()."""
    with raises_exactly(TypeError, "DataLoader: expected a dataset (indexable, with __getitem__, or an "
                                   "IterableDataset), got int"):
        DataLoader(5, batch_size=2)


def test_tensor_dataset_size_mismatch():
    with raises_exactly(ValueError, "TensorDataset: size mismatch between tensors: first dimensions [4, 3]"):
        TensorDataset(np.zeros((4, 2)), np.zeros(3))


# ------------------------------------------------------------------------- checkpoints
def test_save_a_module_itself(tmp_path):
    with raises_exactly(TypeError, "torchlite.save: cannot save a Module itself (that would need pickle); "
                                   "save model.state_dict() instead"):
        torchlite.save(nn.Linear(2, 2), tmp_path / "model.npz")
    assert not list(tmp_path.iterdir())


def test_load_a_missing_file(tmp_path):
    path = tmp_path / "missing.npz"
    with raises_exactly(FileNotFoundError, f"torchlite.load: no such file: {str(path)!r}"):
        torchlite.load(path)
