"""torchlite.nn.utils.rnn.PackedSequence's conversions against torch's: casts touch ``data`` only, the sequence
itself comes back when nothing changes, and accelerator-only calls fail clearly."""
import numpy as np
import pytest
import torch

from torchlite.nn.utils import rnn

CASTS = ["double", "float", "half", "long", "int", "short", "char", "byte"]


def _pair():
    seqs = [np.arange(6, dtype=np.float32).reshape(3, 2), np.arange(4, dtype=np.float32).reshape(2, 2)]
    ours = rnn.pack_sequence(seqs[::-1], enforce_sorted=False)
    theirs = torch.nn.utils.rnn.pack_sequence([torch.from_numpy(s) for s in seqs[::-1]], enforce_sorted=False)
    return ours, theirs


def _assert_same(ours, theirs):
    np.testing.assert_array_equal(ours.data, theirs.data.numpy())
    assert ours.data.dtype == theirs.data.numpy().dtype
    for mine, torchs in zip(ours[1:], theirs[1:]):
        np.testing.assert_array_equal(mine, torchs.numpy())
        assert mine.dtype == np.int64


@pytest.mark.parametrize("cast", CASTS)
def test_casts_match_torch(cast):
    ours, theirs = _pair()
    _assert_same(getattr(ours, cast)(), getattr(theirs, cast)())


@pytest.mark.parametrize("args,kwargs", [((np.float64,), {}), (("cpu",), {}), (("cpu", np.float64), {}),
                                         ((), {"dtype": np.int64}), ((), {"device": "cpu"}),
                                         (("float64",), {"non_blocking": True})], ids=str)
def test_to_matches_torch(args, kwargs):
    ours, theirs = _pair()
    convert = {np.float64: torch.float64, np.int64: torch.int64, "float64": torch.float64}
    torch_args = [convert.get(a, a) for a in args]
    torch_kwargs = {k: convert.get(v, v) if k == "dtype" else v for k, v in kwargs.items()}
    got, expected = ours.to(*args, **kwargs), theirs.to(*torch_args, **torch_kwargs)
    _assert_same(got, expected)
    assert (got is ours) == (expected is theirs)


def test_nothing_to_do_returns_itself_as_torch():
    ours, theirs = _pair()
    assert ours.float() is ours and theirs.float() is theirs
    assert ours.cpu() is ours and theirs.cpu() is theirs
    assert ours.is_pinned() is theirs.is_pinned() is False
    assert ours.is_cuda is theirs.is_cuda is False


def test_accelerator_calls_fail_clearly():
    ours, _ = _pair()
    with pytest.raises(ValueError, match=r"^PackedSequence: torchlite runs on the CPU with NumPy; device 'cuda'"):
        ours.cuda()
    with pytest.raises(ValueError, match=r"^PackedSequence: .* device 'cuda:0' is not available"):
        ours.to("cuda:0")
    with pytest.raises(ValueError, match=r"^PackedSequence.pin_memory: pinned memory"):
        ours.pin_memory()
    with pytest.raises(TypeError, match=r"^PackedSequence.to: unexpected keyword arguments \['copy'\]"):
        ours.to(copy=True)  # torch's PackedSequence.to refuses it too
