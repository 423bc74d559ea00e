"""AdaptiveLogSoftmaxWithLoss against torch.nn.AdaptiveLogSoftmaxWithLoss."""
import numpy as np
import pytest
import torch

import torchlite
from parity import assert_close, check_parity, copy_state
from torchlite import nn
from torchlite.testing import gradcheck

# (n_classes, cutoffs, div_value): one cluster, several, a cluster of one class, div_value < 1 (wider tails)
CONFIGS = [(10, [4], 4.0), (10, [3, 6], 2.0), (12, [1, 2, 5, 11], 1.5), (9, [2, 5], 0.5)]


def _pair(n_classes, cutoffs, div_value, head_bias, in_features=8):
    torch.manual_seed(0)
    th = torch.nn.AdaptiveLogSoftmaxWithLoss(in_features, n_classes, cutoffs, div_value=div_value, head_bias=head_bias)
    return nn.AdaptiveLogSoftmaxWithLoss(in_features, n_classes, cutoffs, div_value=div_value,
                                         head_bias=head_bias), th


def _data(n, n_classes, seed=0, in_features=8):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, in_features)), rng.integers(0, n_classes, n)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("head_bias", [False, True])
@pytest.mark.parametrize("config", CONFIGS)
def test_parity_batched(config, head_bias, dtype):
    n_classes, cutoffs, div_value = config
    tl, th = _pair(n_classes, cutoffs, div_value, head_bias)
    x, t = _data(9, n_classes)
    out = check_parity(tl, th, x, t, dtype=dtype)
    assert type(out).__name__ == "_ASMoutput" and out._fields == ("output", "loss")
    assert out.output.dtype == dtype and out.loss.dtype == dtype and out.loss.shape == ()
    assert tl.saved_count == 0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("target", [0, 3, 8])  # head, first cluster, last cluster
def test_parity_unbatched(target, dtype):
    tl, th = _pair(9, [2, 5], 2.0, True)
    x, _ = _data(1, 9)
    out = check_parity(tl, th, x[0], np.asarray(target), dtype=dtype)
    assert isinstance(out.output, np.ndarray) and out.output.shape == () and out.loss.shape == ()


def test_int32_target_and_single_row():
    tl, th = _pair(10, [3, 6], 2.0, False)
    x, _ = _data(1, 10)
    check_parity(tl, th, x, np.array([9], dtype=np.int32))


def test_backward_default_is_the_loss_gradient():
    """backward() alone is d(loss)/d(input), as torch's loss.backward(); output's gradient adds on."""
    tl, th = _pair(10, [3, 6], 2.0, True)
    th.double()
    tl.double()
    copy_state(tl, th)
    x, t = _data(6, 10, seed=3)
    xt = torch.tensor(x, requires_grad=True)
    th(xt, torch.tensor(t)).loss.backward()
    tl(x, t)
    assert_close(tl.backward(), xt.grad.numpy(), np.float64, "dx")
    for name, p in tl.named_parameters():
        assert_close(p.grad, th.get_parameter(name).grad.numpy(), np.float64, name)
    tl.zero_grad()
    tl(x, t)
    assert_close(tl.backward(None, 1.0), xt.grad.numpy(), np.float64, "dx (explicit grad_loss)")
    g = np.linspace(-1, 1, 6)
    tl(x, t)
    xt.grad = None
    th(xt, torch.tensor(t)).output.backward(torch.tensor(g))
    assert_close(tl.backward(g), xt.grad.numpy(), np.float64, "dx (grad of output only)")


def test_unused_clusters_get_no_gradient():
    tl, th = _pair(10, [3, 6], 2.0, False)
    tl(np.ones((2, 8)), np.array([0, 4]))
    tl.backward()
    assert tl.tail[0][0].weight.grad is not None and tl.tail[1][0].weight.grad is None  # torch's grad is None too


def test_empty_batch():
    tl, th = _pair(10, [3, 6], 2.0, False)
    out = tl(np.zeros((0, 8), np.float32), np.zeros(0, np.int64))
    t_out = th(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long))
    assert out.output.shape == (0,) and np.isnan(out.loss) and torch.isnan(t_out.loss)
    assert tl.backward().shape == (0, 8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", CONFIGS)
def test_log_prob_and_predict(config, dtype):
    n_classes, cutoffs, div_value = config
    tl, th = _pair(n_classes, cutoffs, div_value, True)
    th.to(torch.float64 if dtype == np.float64 else torch.float32)
    tl.to(dtype)
    copy_state(tl, th)
    x, _ = _data(16, n_classes, seed=1)
    x = (x * 3).astype(dtype)  # spread the logits so that every cluster wins some rows
    with torch.no_grad():
        expected_lp = th.log_prob(torch.from_numpy(x)).numpy()
        expected_pred = th.predict(torch.from_numpy(x)).numpy()
    lp = tl.log_prob(x)
    assert lp.dtype == dtype
    assert_close(lp, expected_lp, dtype, "log_prob")
    np.testing.assert_allclose(np.exp(lp.astype(np.float64)).sum(1), 1, rtol=1e-5)
    pred = tl.predict(x)
    assert pred.dtype == np.int64
    np.testing.assert_array_equal(pred, expected_pred)
    np.testing.assert_array_equal(pred, lp.argmax(1))
    assert tl.saved_count == 0
    assert tl.log_prob(x[:0]).shape == (0, n_classes) and tl.predict(x[:0]).shape == (0,)


def test_predict_all_rows_in_clusters():
    tl, th = _pair(10, [3, 6], 2.0, True)
    with torch.no_grad():
        th.head.bias.copy_(torch.tensor([-9.0, -9, -9, 5, 5]))
    copy_state(tl, th)
    x, _ = _data(5, 10, seed=2)
    assert (th.head(torch.tensor(x, dtype=torch.float32)).argmax(1) >= 3).all()
    np.testing.assert_array_equal(tl.predict(x), th.predict(torch.tensor(x, dtype=torch.float32)).numpy())


def test_structure_and_state_dict_keys():
    tl, th = _pair(20, [5, 10, 15], 2.0, True, in_features=16)
    assert list(tl.state_dict()) == list(th.state_dict())
    assert {k: v.shape for k, v in tl.state_dict().items()} == {k: tuple(v.shape) for k, v in th.state_dict().items()}
    assert repr(tl) == repr(th)
    assert (tl.cutoffs, tl.shortlist_size, tl.n_clusters, tl.head_size) == (th.cutoffs, th.shortlist_size,
                                                                             th.n_clusters, th.head_size)
    assert tl.head.weight.dtype == torchlite.get_default_dtype()
    assert nn.AdaptiveLogSoftmaxWithLoss(4, 6, (2,), dtype=np.float64).head.weight.dtype == np.float64


@pytest.mark.parametrize("cutoffs", [[], [3, 3], [0, 3], [3, 10], [5, 3], [2.5], [-1]])
def test_bad_cutoffs(cutoffs):
    with pytest.raises(ValueError) as th_error:
        torch.nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs)
    with pytest.raises(ValueError) as error:
        nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs)
    assert str(error.value) == str(th_error.value)


def test_float_cutoff_is_a_type_error():
    with pytest.raises(TypeError):
        torch.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [2.0])
    with pytest.raises(TypeError, match="AdaptiveLogSoftmaxWithLoss"):
        nn.AdaptiveLogSoftmaxWithLoss(8, 10, [2.0])


@pytest.mark.parametrize("x_shape, target, message", [
    ((4, 8), [0, 4, 7, 10], r"Target values should be in \[0, 9\], but values in range \[0, 10\] were found"),
    ((4, 8), [0, -1, 7, 9], r"Target values should be in \[0, 9\], but values in range \[-1, 9\] were found"),
    ((8,), 10, r"Target values should be in \[0, 9\]"),
    ((4, 8), [0, 4, 7], "same size in the batch dimension"),
    ((4, 8), 3, "0D target tensor expects 1D input tensors"),
    ((1, 4, 8), [[0, 4, 7, 9]], "0D or 1D target tensor expected, multi-target not supported"),
])
def test_target_errors(x_shape, target, message):
    tl, th = _pair(10, [3, 6], 2.0, False)
    with pytest.raises(RuntimeError):
        th(torch.zeros(x_shape), torch.tensor(target))
    with pytest.raises(RuntimeError, match=message) as error:  # torch's type, and a ValueError as ours are
        tl(np.zeros(x_shape), np.array(target))
    assert isinstance(error.value, ValueError) and str(error.value).startswith("AdaptiveLogSoftmaxWithLoss(")
    assert tl.saved_count == 0


def test_input_errors():
    tl, _ = _pair(10, [3, 6], 2.0, False)
    with pytest.raises(ValueError, match=r"AdaptiveLogSoftmaxWithLoss\(in_features=8, n_classes=10, cutoffs=\[3, 6\]\)"
                                         r": expected input \(N, 8\) or \(8,\), got shape \(4, 5\)"):
        tl(np.zeros((4, 5)), np.zeros(4, np.int64))
    with pytest.raises(TypeError, match="integer target"):
        tl(np.zeros((2, 8)), np.zeros(2))
    with pytest.raises(ValueError, match=r"expected input \(N, 8\), got shape \(8,\)"):
        tl.log_prob(np.zeros(8))
    with pytest.raises(ValueError, match=r"expected input \(N, 8\), got shape \(8,\)"):
        tl.predict(np.zeros(8))
    with pytest.raises(RuntimeError, match="nothing saved"):
        tl.backward()


def test_no_grad_keeps_nothing():
    tl, _ = _pair(10, [3, 6], 2.0, False)
    with torchlite.no_grad():
        tl(*_data(4, 10))
    assert tl.saved_count == 0


def test_called_twice_backpropagates_in_reverse():
    tl, th = _pair(10, [3, 6], 2.0, True)
    th.double()
    tl.double()
    copy_state(tl, th)
    (x1, t1), (x2, t2) = _data(5, 10, seed=4), _data(3, 10, seed=5)
    a, b = torch.tensor(x1, requires_grad=True), torch.tensor(x2, requires_grad=True)
    (th(a, torch.tensor(t1)).loss + 2 * th(b, torch.tensor(t2)).loss).backward()
    tl(x1, t1)
    tl(x2, t2)
    assert_close(tl.backward(None, 2.0), b.grad.numpy(), np.float64, "second call")
    assert_close(tl.backward(), a.grad.numpy(), np.float64, "first call")
    for name, p in tl.named_parameters():
        assert_close(p.grad, th.get_parameter(name).grad.numpy(), np.float64, name)


@pytest.mark.parametrize("head_bias", [False, True])
def test_gradcheck(head_bias):
    tl = nn.AdaptiveLogSoftmaxWithLoss(6, 9, [2, 5], div_value=2.0, head_bias=head_bias).double()
    x, t = _data(7, 9, seed=6, in_features=6)
    assert gradcheck(tl, x, t)
    assert gradcheck(tl, x[0], np.asarray(t[0]))
