"""SyncBatchNorm: batch normalization whose training statistics span the global batch of all ranks."""
import numpy as np

from .._dtype import get_default_dtype
from ..grad_mode import is_grad_enabled
from ..nn.normalization import _BatchNorm
from . import comm as _dist

__all__ = ["SyncBatchNorm"]


def _in_place_sum(array, comm):
    comm.Allreduce(_dist._import_mpi().IN_PLACE, array)
    return array


class SyncBatchNorm(_BatchNorm):
    """Batch normalization over input (N, C, *) with statistics over the batches of all ranks.

    In training, the per-channel mean and (biased) variance are those of the global batch
    (every rank's samples), reduced with two small in-place Allreduces (sum, then the sum of
    squared deviations: the same two-pass variance as one process over the whole batch), and
    the running statistics move toward them. Backward reduces the per-channel sums of the
    upstream gradient, so with ``DistributedDataParallel`` training equals one process running
    ``BatchNorm`` over the global batch. In eval mode, or in a world of one, it is ``BatchNorm``.
    Parameters, buffers and state_dict keys are BatchNorm's.

    Args: as ``BatchNorm1d`` plus ``process_group`` (an mpi4py communicator; default the world).

    Shape: input (N, C, *); output the same.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, bias=bias)
        self.process_group = process_group

    def _check_input(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r}: expected input (N, {self.num_features}, *), got shape {x.shape}")

    def forward(self, input):
        """Normalize input (N, C, *) per channel with the global batch statistics in training."""
        comm, size = _dist._world(self.process_group)
        if not (self.training and size > 1):
            out = super().forward(input)
            if is_grad_enabled():
                self._saved[-1] += (None,)
            return out
        x = np.asarray(input)
        dtype = self._dtype() or (x.dtype if x.dtype.kind == "f" else get_default_dtype())
        x = x.astype(dtype, copy=False)
        self._check_input(x)
        xv = x.reshape(x.shape[0], x.shape[1], -1)
        totals = _in_place_sum(np.append(np.einsum("ncl->c", xv), xv.size // xv.shape[1]).astype(x.dtype), comm)
        count = int(totals[-1])
        if count <= 1:
            raise ValueError(f"{self!r}: Expected more than 1 value per channel when training, "
                             f"got input size {list(x.shape)} on each of {size} ranks")
        mean = totals[:-1] / count
        xhat = xv - mean[:, None]
        var = _in_place_sum(np.einsum("ncl,ncl->c", xhat, xhat), comm) / count
        invstd = 1 / np.sqrt(var + self.eps)
        xhat *= invstd[:, None]
        if self.track_running_stats:
            self._update_running(mean, var * (count / (count - 1)))
        out = xhat * self.weight.data[:, None] if self.weight is not None else xhat.copy()
        if self.bias is not None:
            out += self.bias.data[:, None]
        self.save_for_backward(xhat, invstd, True, (comm, count))
        return out.reshape(x.shape)

    def _update_running(self, mean, unbiased_var):
        self.num_batches_tracked += 1
        momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        for running, value in ((self.running_mean, mean), (self.running_var, unbiased_var)):
            running *= 1 - momentum
            running += momentum * value.astype(running.dtype, copy=False)

    def backward(self, grad_output):
        """dLoss/dinput through the global statistics; weight and bias gradients stay local
        (``DistributedDataParallel`` averages them like every other gradient)."""
        if self._saved and self._saved[-1][-1] is None:
            self._saved[-1] = self._saved[-1][:-1]
            return super().backward(grad_output)
        xhat, invstd, _, (comm, count) = self.pop_saved()
        g = np.asarray(grad_output).astype(xhat.dtype, copy=False)
        gv = g.reshape(xhat.shape)
        dbias = np.einsum("ncl->c", gv)
        dweight = np.einsum("ncl,ncl->c", gv, xhat)
        if self.weight is not None:
            self.weight.accumulate_grad(dweight)
        if self.bias is not None:
            self.bias.accumulate_grad(dbias)
        if not self.needs_input_grad:
            return None
        sums = _in_place_sum(np.concatenate([dbias, dweight]), comm) / count
        c = self.num_features
        dx = xhat * -sums[c:, None]
        dx += gv
        dx -= sums[:c, None]
        dx *= (invstd if self.weight is None else invstd * self.weight.data)[:, None]
        return dx.reshape(g.shape)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with every BatchNorm1d/2d/3d below it replaced by a SyncBatchNorm sharing
        its parameters and buffers (torch's function); returns the converted module."""
        output = module
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            output = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                         process_group, bias=module.bias is not None)
            if module.affine:
                output.weight = module.weight
                if module.bias is not None:
                    output.bias = module.bias
            output.running_mean = module.running_mean
            output.running_var = module.running_var
            output.num_batches_tracked = module.num_batches_tracked
            object.__setattr__(output, "training", module.training)
            output.needs_input_grad = module.needs_input_grad
        for name, child in module.named_children():
            output.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return output
