"""Forward and backward propagation of a gdlab :class:`~gdlab.models.MLP` in closed form, with
the lecture's equations (rows of A are examples):

    forward:   Z^[l] = A^[l-1]·W^[l]ᵀ + b^[l] ;  A^[l] = g(Z^[l]) ;  A^[0] = X
    backward:  dW^[l] = dZ^[l]ᵀ·A^[l-1] ;  db^[l] = Σ_rows dZ^[l]
               dA^[l-1] = dZ^[l]·W^[l] ;  dZ^[l-1] = dA^[l-1] ⊙ g'(Z^[l-1])

and dZ^[L] = ∂J/∂Z^[L] of the MLP's default cost on a mini-batch of m rows and n_y outputs:
(σ(Z) - Y)/(m·n_y) for a sigmoid output with cross-entropy, (softmax(Z) - one_hot(Y))/m for a
softmax output, 2·(Z - Y)/(m·n_y) for a linear output with squared error.

For the course's small networks this is several times faster than autograd (which records and
walks a graph for a few hundred multiply-adds) and gives the same numbers to rounding.
:func:`gdlab.fit` uses it for an MLP trained on its default cost (``backprop="auto"``), and
:class:`gdlab.lab.vectorized.VectorizedFit` for C networks at once: every parameter then has a
leading dimension C, X and Y are shared, and the C networks' activations lie side by side in
one matrix A^[l] of shape (m, C·n_l). A layer's C products are then one matrix product with a
block-diagonal matrix of the C weight matrices (C times the multiply-adds, but one call instead
of C tiny ones; a few such products of groups of networks where that matrix would hold more
than ``BLOCK_GROUP_MAX`` entries) while that matrix is small (``BLOCK_DIAGONAL_MAX`` entries),
else a batched product. For C networks every product is bound once to the tensors it reads and
writes (:class:`_ManySteps`), so that a step is a run of torch calls and little else.
"""

from __future__ import annotations

import math
import operator
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F

from .data.batches import batch_sizes
from .losses import OUTPUT_COSTS, cross_entropy, default_loss

#: C networks' layer l as one block-diagonal product while its C²·n_l·n_{l-1} entries are fewer
BLOCK_DIAGONAL_MAX = 1 << 17
#: a block-diagonal product is made as products of groups of networks, each with at most this
#: many entries in its block matrix, where it has more: every zero in a block matrix costs a
#: multiply-add, every group a call (the course's [2, 5, 2, 1] × 32: its second layer in two)
BLOCK_GROUP_MAX = 4096
#: on the CPU, dW = s·Gᵀ·A is made as its transpose s·Aᵀ·G where A has NARROW_INPUT columns and
#: G at least NARROW_INPUT_MIN_ROWS: MKL makes the transpose of these shapes 2–8× faster
NARROW_INPUT = range(2, 9)
NARROW_INPUT_MIN_ROWS = 64
#: an epoch's mini-batch costs J^{t} as one product with a (steps, m) averaging matrix while it
#: has at most this many entries (else a segment reduction)
AVERAGING_MATRIX_MAX = 1 << 18
_grad = operator.attrgetter("grad")


def supports(model, forward, loss) -> bool:
    """Whether :class:`MLPBackprop` computes exactly what ``loss(forward(X), Y)`` and autograd
    would: a gdlab MLP with real parameters on its default cost, with no hooks that autograd
    would run."""
    from .models import MLP

    if not isinstance(model, MLP) or (forward, loss) != default_loss(model):
        return False
    if any(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
           or module._backward_pre_hooks for module in model.modules()):
        return False
    return all(p.requires_grad and p.is_floating_point() and not p._backward_hooks
               and not getattr(p, "_post_accumulate_grad_hooks", None)
               for p in model.parameters())


def _hidden_kernels(hidden, slope):
    """(A = g(Z) in place, dZ = dA ⊙ g'(Z) from (dA, A), written into ``out`` where given) for
    the hidden activation g, with g' written in terms of A (the kernels autograd runs): relu
    1[A > 0], leaky relu 1[A > 0] or its slope, tanh 1 - A², sigmoid A·(1 - A)."""
    if hidden == "relu":
        return torch.Tensor.relu_, _backward_kernel("threshold_backward", 0)
    if hidden == "tanh":
        return torch.Tensor.tanh_, _backward_kernel("tanh_backward")
    if hidden == "sigmoid":
        return torch.Tensor.sigmoid_, _backward_kernel("sigmoid_backward")
    return (partial(F.leaky_relu_, negative_slope=slope),
            _backward_kernel("leaky_relu_backward", slope, True))


def _backward_kernel(name, *scalars):
    """(dA, A, out=None) -> aten's ``name`` kernel of (dA, A, *scalars), into ``out``."""
    packet = getattr(torch.ops.aten, name)
    functional, into = packet.default, packet.grad_input

    def backward(dA, A, out=None):
        return functional(dA, A, *scalars) if out is None else into(dA, A, *scalars,
                                                                     grad_input=out)

    return backward


def _transpose_buffer(n_out, n_in, like):
    """Where :func:`_weight_gradient` makes dWᵀ (n_in, n_out) for a weight of n_in inputs and
    n_out rows, or None where dW is made as it is."""
    if like.device.type == "cpu" and n_in in NARROW_INPUT and n_out >= NARROW_INPUT_MIN_ROWS:
        return like.new_empty(n_in, n_out)
    return None


def _weight_gradient(dW, G, G_t, A, s, dW_t=None):
    """dW = s·Gᵀ·A (= dZᵀ·A), written into ``dW``; as s·Aᵀ·G into ``dW_t`` and copied into
    place where that buffer is given (see :func:`_transpose_buffer`)."""
    if dW_t is None:
        return torch.addmm(dW, G_t, A, beta=0, alpha=s, out=dW)
    torch.addmm(dW_t, A.t(), G, beta=0, alpha=s, out=dW_t)
    return dW.copy_(dW_t.t())


@contextmanager
def _kept_tensors():
    """Where the tensors kept from call to call are made: as ordinary tensors with no autograd
    history, written in inference mode (where the gradients are computed) and out of it."""
    with torch.inference_mode(False), torch.no_grad():
        yield


class _Buffers:
    """A network's tensors for mini-batches of m rows and layers of the given widths, written
    at every step (no allocations, and their views made once): each hidden layer's A^[l] (its
    Z^[l], activated in place) and dA^[l], each layer's G^[l] with its transpose, s of
    dZ^[L] = s·G^[L] and a vector of m entries s."""

    def __init__(self, widths, m, s, like):
        self.A = [like.new_empty(m, n) for n in widths[:-1]]
        self.dA = [like.new_empty(m, n) for n in widths[:-1]]
        self.G = [like.new_empty(m, n) for n in widths]
        self.G_t = [G.t() for G in self.G]
        self.s, self.s_ones = s, like.new_full((m,), s)


class _Kept:
    """What one network's closed form keeps from call to call while its weights stay ``where``
    they are: each Wᵀ (a view), each dWᵀ buffer (:func:`_transpose_buffer`) and
    :class:`_Buffers` for each mini-batch size (its biases are used as given at each call)."""

    def __init__(self, where, weights, biases):
        self.where, self.transposes = where, [W.t() for W in weights]
        self.gradient_transposes = [_transpose_buffer(*W.shape, W) for W in weights]
        self.widths = [W.shape[0] for W in weights]
        self.buffers: dict[int, _Buffers] = {}

    def make_buffers(self, m, s, like) -> _Buffers:
        return _Buffers(self.widths, m, s, like)


class MLPBackprop:
    """The gradients of J for ``model``'s architecture and default cost, in closed form, and
    J itself from the Z^[L] they return: per mini-batch (:meth:`cost`) or for a whole epoch's
    mini-batches at once (:meth:`batch_costs`)."""

    def __init__(self, model):
        self.hidden, self.output = model.hidden, model.output
        self.cost_of = OUTPUT_COSTS[model.output]  # J, g and s of dZ^[L] = s·(g(Z) − target)
        self.slope = getattr(model.activation, "negative_slope", 0.0)
        # A = g(Z) in place, and dZ = dA ⊙ g'(Z) from (dA, A): bound once, called every layer
        self._activate, self._backward_activation = _hidden_kernels(self.hidden, self.slope)
        self._work: dict = {}

    def _target(self, Z, Y):
        """Y as Z's targets: (m, n_y) in Z's dtype, (m, 1, n_y) for C networks' Z (m, C, n_y)
        (as Y may come already)."""
        m, n_y = Z.shape[0], Z.shape[-1]
        if self.cost_of.class_indices:
            target = F.one_hot(Y.reshape(-1).long(), n_y).to(Z.dtype)
        elif Y.shape == (m, n_y) and Y.dtype == Z.dtype:
            target = Y
        elif Y.shape == (m, 1, n_y) and Y.dtype == Z.dtype and Z.dim() == 3:
            return Y
        else:
            target = Y.reshape(m, n_y).to(Z.dtype)
        return target.unsqueeze(1) if Z.dim() == 3 else target

    def _output_G(self, Z, Y, out=None):
        """G of dZ^[L] = ∂J/∂Z^[L] = s·G for the mean cost over the m rows of Z (s from
        :meth:`_scale`): G = σ(Z) - Y and s = 1/(m·n_y) (sigmoid), G = softmax(Z) - one_hot(Y)
        and s = 1/m (softmax), G = Z - Y and s = 2/(m·n_y) (linear). Z is (m, n_y) for one
        network, (m, C, n_y) for C; Y holds the m rows' targets; G is written into ``out`` if
        given. Every later dZ^[l] is s times the same products of G, so s can be applied once
        per gradient, in the products that make it."""
        target, activation = self._target(Z, Y), self.cost_of.activation
        if activation is None:
            return torch.sub(Z, target, out=out)
        return activation(Z, out=out).sub_(target)

    def _scale(self, m, n_y):
        """s of dZ^[L] = s·G for m rows of n_y outputs (see :meth:`_output_G`)."""
        cost = self.cost_of
        return cost.scale / (m * n_y if cost.per_output else m)

    def _kept(self, weights, biases, X):
        """What the closed form keeps for these parameters (:class:`_Kept` for one network,
        :class:`_KeptMany` for C), with buffers for mini-batches of X's rows; made again where
        a parameter it keeps views of has moved (``where``: their addresses and strides — the
        flat optimizers, for one, move the parameters into their buffer at their first step;
        the views hold the memory they view, so no other tensor can take its address)."""
        many = weights[0].dim() == 3
        viewed = (*weights, *biases) if many else weights
        where = (list(map(torch.Tensor.data_ptr, viewed)), list(map(torch.Tensor.stride, viewed)))
        kept = self._work.get(("kept", many))
        m = X.shape[0]
        if kept is None or kept.where != where or m not in kept.buffers:
            with _kept_tensors():
                if kept is None or kept.where != where:
                    kind = _KeptMany if many else _Kept
                    kept = self._work["kept", many] = kind(where, weights, biases)
                kept.buffers[m] = kept.make_buffers(m, self._scale(m, weights[-1].shape[-2]), X)
        return kept

    def row_costs(self, Z, Y):
        """Each row's cost, averaged over its n_y outputs (as :mod:`gdlab.losses` averages):
        shape (m,) for one network's Z (m, n_y), (m, C) for C networks' Z (m, C, n_y)."""
        if self.cost_of.class_indices:
            if Z.dim() == 3:  # classes in dimension 1, the C networks after them
                return cross_entropy(Z.transpose(1, 2), Y.reshape(-1, 1).expand(Z.shape[:2]),
                                     reduction="none")
            return cross_entropy(Z, Y, reduction="none")
        target = self._target(Z, Y)
        if target.shape != Z.shape:
            target = target.expand_as(Z)
        per_output = self.cost_of.loss(Z, target, reduction="none")
        return per_output.squeeze(-1) if Z.shape[-1] == 1 else per_output.mean(-1)

    def cost(self, Z, Y):
        """J of one mini-batch from its Z^[L]: 0-d for one network, shape (C,) for C."""
        return self.row_costs(Z, Y).mean(0)

    def batch_costs(self, Z, Y, batch_size):
        """J^{t} of each mini-batch of an epoch, from the Z^[L] and Y of all its rows in order
        (consecutive mini-batches of ``batch_size`` rows, the last with the rest): shape
        (steps,) for one network, (steps, C) for C. A few operations per epoch, however many
        steps, in place of a cost per step: the means are one product with a (steps, m) matrix
        of 1/size where it has at most ``AVERAGING_MATRIX_MAX`` entries, else one segment
        reduction."""
        rows = self.row_costs(Z, Y)
        m = rows.shape[0]
        key = ("means", m, batch_size, rows.dtype, rows.device)
        means = self._work.get(key)
        if means is None:
            lengths = torch.tensor(batch_sizes(m, batch_size), device=rows.device)
            if len(lengths) * m <= AVERAGING_MATRIX_MAX:
                step = torch.arange(m, device=rows.device) // batch_size  # each row's mini-batch
                matrix = torch.zeros(len(lengths), m, dtype=rows.dtype, device=rows.device)
                matrix[step, torch.arange(m, device=rows.device)] = 1 / lengths[step].to(
                    rows.dtype)
                means = self._work[key] = partial(torch.matmul, matrix)
            else:
                means = self._work[key] = partial(torch.segment_reduce, reduce="mean",
                                                  lengths=lengths, axis=0)
        return means(rows)

    def gradients_of(self, model):
        """``gradients(X, Y) -> Z^[L]``: the gradients of J on the mini-batch written into each
        parameter's ``.grad`` (overwritten: no zeroing needed); J is :meth:`cost` (or, for a
        whole epoch, :meth:`batch_costs`) of the Z^[L] returned. The products run under
        ``torch.inference_mode()`` (no autograd bookkeeping: a tenth of a tiny operation's
        cost), so Z^[L] is an inference tensor: read it, don't change it in place."""
        params = list(model.parameters())
        weights, biases = params[0::2], params[1::2]
        grads = []  # the .grad tensors written last time

        def gradients(X, Y):
            if len(grads) != len(params) or not all(map(operator.is_, map(_grad, params), grads)):
                for p in params:
                    if p.grad is None:
                        p.grad = torch.empty_like(p)
                grads[:] = map(_grad, params)
            with torch.inference_mode():
                return self(weights, biases, X, Y, grads[0::2], grads[1::2])[0]

        return gradients

    def __call__(self, weights, biases, X, Y, dweights=None, dbiases=None):
        """(Z^[L], dweights, dbiases) of the mini-batch (X, Y) — J is :meth:`cost` of Z^[L] —
        for one network or, parameters with a leading dimension C, C networks. One network's
        gradients are written into ``dweights``/``dbiases`` where given (tensors of the
        parameters' shapes). One network's hidden layers are computed in buffers kept from
        call to call (:class:`_Buffers`); Z^[L] is a new tensor each time."""
        if weights[0].dim() == 3:
            return self._many(weights, biases, X, Y, dweights, dbiases)
        kept = self._kept(weights, biases, X)
        transposes, buffers = kept.transposes, kept.buffers[X.shape[0]]
        activations = [X]  # A^[0] … A^[L-1]
        for l in range(len(weights) - 1):
            Z = torch.addmm(biases[l], activations[l], transposes[l], out=buffers.A[l])
            activations.append(self._activate(Z))
        Z = torch.addmm(biases[-1], activations[-1], transposes[-1])  # (returned: not a buffer)
        self._output_G(Z, Y, buffers.G[-1])  # dZ^[l] = s·G^[l] at every layer
        dweights = [torch.empty_like(W) for W in weights] if dweights is None else dweights
        dbiases = [torch.empty_like(b) for b in biases] if dbiases is None else dbiases
        for l in range(len(weights) - 1, -1, -1):
            G_t = buffers.G_t[l]
            _weight_gradient(dweights[l], buffers.G[l], G_t, activations[l], buffers.s,
                             kept.gradient_transposes[l])
            torch.mv(G_t, buffers.s_ones, out=dbiases[l])  # s·Σ_rows G
            if l:
                dA = torch.mm(buffers.G[l], weights[l], out=buffers.dA[l - 1])
                self._backward_activation(dA, activations[l], out=buffers.G[l - 1])
        return Z, dweights, dbiases

    def bound_many(self, weights, biases, dweights, dbiases):
        """``gradients(X, Y) -> Z^[L]``: what a call with these C networks' parameters and
        gradient tensors (contiguous) computes, for parameters and gradients that stay where
        they are — the vectorized trainer's views into its buffers — without looking at each
        call whether they have moved."""
        targets = [*dweights, *dbiases]
        if not all(t.is_contiguous() for t in targets):
            raise ValueError("bound_many writes the gradients straight into dweights and "
                             "dbiases: they must be contiguous tensors")
        steps_of = {}  # mini-batch size m -> its _ManySteps

        def gradients(X, Y):
            steps = steps_of.get(X.shape[0])
            if steps is None:
                kept = self._kept(weights, biases, X)
                with _kept_tensors():
                    steps = steps_of[X.shape[0]] = _ManySteps(self, kept,
                                                              kept.buffers[X.shape[0]], targets)
            return steps(X, Y)

        return gradients

    def _many(self, weights, biases, X, Y, dweights=None, dbiases=None):
        """C networks at once, their activations side by side: A^[l] of shape (m, C·n_l). Run
        as :class:`_ManySteps`, kept for the given dW and db while the same contiguous tensors
        come (the vectorized trainer's); others get theirs copied in, and none given, new
        ones."""
        L = len(weights)
        kept = self._kept(weights, biases, X)
        buffers = kept.buffers[X.shape[0]]
        given = [*(dweights or [None] * L), *(dbiases or [None] * L)]
        steps = buffers.steps
        if steps is None or not steps.writes_into(given):
            targets = [g if g is not None and g.is_contiguous() else X.new_empty(p.shape)
                       for g, p in zip(given, (*weights, *biases), strict=True)]
            with _kept_tensors():
                steps = _ManySteps(self, kept, buffers, targets)
            if steps.writes_into(given):
                buffers.steps = steps
        Z = steps(X, Y)
        results = [t if g is None or g is t else g.copy_(t)
                   for g, t in zip(given, steps.targets, strict=True)]
        return Z, results[:L], results[L:]


class _ManySteps:
    """C networks' forward and backward propagation for mini-batches of m rows with every
    product bound once to what it reads and writes — the :class:`_ManyBuffers`, the kept
    views and the contiguous tensors ``targets`` (each dW, then each db) that the gradients go
    into — so that a call is the run of torch calls and little else."""

    def __init__(self, closed_form, kept, buffers, targets):
        products, L = kept.products, len(kept.products)
        self.targets, self.refresh, self.buffers = targets, kept.refresh, buffers
        self.where = list(map(torch.Tensor.data_ptr, targets))
        self.activate, self.output_G = closed_form._activate, closed_form._output_G
        # Z^[l] of each layer: the first from X (given at each call), each next from A^[l-1]
        self.forward = [product.forward_op(A, out) for product, A, out in
                        zip(products, [None, *buffers.A], [*buffers.A, None], strict=True)]
        self.backward = []  # from layer L down: dW, db, dA^[l-1], G^[l-1] = dA ⊙ g'(Z^[l-1])
        for l in range(L - 1, -1, -1):
            G, G_t = buffers.G[l], buffers.G_t[l]
            weight_op, bias_op = products[l].gradient_ops(
                G, G_t, buffers.views[l], targets[l], targets[L + l], buffers.s, buffers.s_ones)
            if l == 0:  # (its A^[0] is X, which changes from call to call)
                self.backward.append(bias_op)
                self.first_weights = weight_op
                break
            self.backward += [weight_op, bias_op, products[l].backward_op(G, buffers.dA[l - 1]),
                              partial(closed_form._backward_activation, buffers.dA[l - 1],
                                      buffers.A[l - 1], out=buffers.G[l - 1])]

    def writes_into(self, tensors) -> bool:
        """Whether ``tensors`` are its targets, still where they were (views of them are
        bound)."""
        return (all(map(operator.is_, self.targets, tensors))
                and list(map(torch.Tensor.data_ptr, tensors)) == self.where)

    def __call__(self, X, Y):
        """Z^[L] (m, C, n_y) of the mini-batch (X, Y), its gradients written into the
        targets."""
        if self.refresh[0]:
            torch._foreach_copy_(*self.refresh)
        Z = self.forward[0](X)
        for forward in self.forward[1:]:
            self.activate(Z)  # A^[l-1] = g(Z^[l-1]), in place
            Z = forward()
        Z = Z.view(X.shape[0], self.buffers.C, -1)  # (returned: not a buffer)
        self.output_G(Z, Y, out=self.buffers.G_last)  # dZ^[l] = s·G^[l] at every layer
        for op in self.backward:
            op()
        self.first_weights(X)
        return Z


def _products(product, out, pieces):
    """``product(*piece, out=piece's last)`` for each piece — one group's columns of a
    block-diagonal product each — and ``out``, which they fill."""
    for *operands, piece_out in pieces:
        product(*operands, out=piece_out)
    return out


def _per_network(M, C, n, transposed=False):
    """The C networks' matrices in a contiguous M (m, C·n), which holds them side by side: a
    (C, m, n) view, or (C, n, m) transposed."""
    m = M.shape[0]
    if transposed:
        return M.as_strided((C, n, m), (n, 1, C * n))
    return M.as_strided((C, m, n), (n, C * n, 1))


class _KeptMany:
    """What C networks' closed form keeps from call to call while their parameters stay
    ``where`` they are: each layer's :class:`_WideProduct` (which holds its W and b, updated in
    place), the diagonal blocks of the block matrices with the W they copy at each call (the
    rest stays zero; one call for all), and :class:`_ManyBuffers` for each mini-batch size."""

    def __init__(self, where, weights, biases):
        self.where = where
        self.products = [_WideProduct(W, b, l == 0)
                         for l, (W, b) in enumerate(zip(weights, biases, strict=True))]
        blocked = [product for product in self.products if product.blocks is not None]
        self.refresh = ([product.diagonal for product in blocked],
                        [product.W_t for product in blocked])
        self.buffers: dict[int, _ManyBuffers] = {}

    def make_buffers(self, m, s, like) -> _ManyBuffers:
        return _ManyBuffers(self.products, m, s, like)


class _ManyBuffers(_Buffers):
    """C networks' :class:`_Buffers` for mini-batches of m rows, each layer's C networks side
    by side (width C·n_l), with the views the gradients' products read made once: for each
    layer (Gᵀ, G-side, A-side) — (Gᵀ, None, None) for the first, else Gᵀ and the
    (C, n_l, m) and (C, m, n_{l-1}) per-network views of G^[l] and A^[l-1] — and G^[L] as
    (m, C, n_y)."""

    def __init__(self, products, m, s, like):
        C, widths = products[0].C, [product.n_out for product in products]
        super().__init__([C * n for n in widths], m, s, like)
        self.C, self.steps = C, None  # steps: the last _ManySteps kept for these buffers
        self.G_last = self.G[-1].view(m, C, widths[-1])
        self.views = [(self.G_t[0], None, None)] + [
            (self.G_t[l], _per_network(self.G[l], C, n, transposed=True),
             _per_network(self.A[l - 1], C, widths[l - 1]))
            for l, n in enumerate(widths) if l > 0]


class _WideProduct:
    """Z = A·Wᵀ + b for C networks side by side: A (m, C·n_in) or, for the first layer, the
    shared X (m, n_in); W (C, n_out, n_in); b (C, n_out); Z (m, C·n_out)."""

    def __init__(self, W, b, shared_input):
        self.W, self.b, self.shared_input = W, b, shared_input
        self.C, self.n_out, self.n_in = W.shape
        self.blocks = self.diagonal = None
        if not shared_input and self.C * self.C * self.n_in * self.n_out <= BLOCK_DIAGONAL_MAX:
            self.blocks = W.new_zeros(self.C * self.n_in, self.C * self.n_out)
            self.blocks_t = self.blocks.t()
            # its C diagonal blocks, as a (C, n_in, n_out) view
            self.diagonal = self.blocks.view(self.C, self.n_in, self.C, self.n_out).diagonal(
                dim1=0, dim2=2).permute(2, 0, 1)
            self.W_t = W.permute(0, 2, 1)
            per_group = max(1, math.isqrt(BLOCK_GROUP_MAX // (self.n_in * self.n_out)))
            count = -(-self.C // per_group)
            bounds = [self.C * g // count for g in range(count + 1)]
            # each group's columns of A (its inputs) and of Z (its outputs)
            self.groups = [(slice(a * self.n_in, b * self.n_in),
                            slice(a * self.n_out, b * self.n_out))
                           for a, b in zip(bounds, bounds[1:])]
        # where the first layer's dW, as its rows (C·n_out, n_in), is made transposed (or None)
        self._dW_t = _transpose_buffer(self.C * self.n_out, self.n_in, W) if shared_input else None
        self._stacked_views = None

    def _stacked(self):
        """(the C matrices W stacked, transposed: (n_in, C·n_out); b as one row (C·n_out,)):
        views made once where W and b are contiguous (as the vectorized trainer's are), else
        copies made at each call."""
        if self._stacked_views is not None:
            return self._stacked_views
        stacked = self.W.reshape(-1, self.n_in).t(), self.b.reshape(-1)
        if self.W.is_contiguous() and self.b.is_contiguous():
            self._stacked_views = stacked
        return stacked

    def forward(self, A, out=None):
        """Z (m, C·n_out), written into ``out`` where given."""
        if self.shared_input:  # X: one product with the C matrices W stacked
            stacked_t, b = self._stacked()
            return torch.addmm(b, A, stacked_t, out=out)
        if self.blocks is not None:
            return torch.addmm(self._stacked()[1], A, self.blocks, out=out)
        m = A.shape[0]
        Z = torch.baddbmm(self.b.unsqueeze(1), A.view(m, self.C, -1).transpose(0, 1),
                          self.W.transpose(1, 2)).transpose(0, 1)
        return Z.reshape(m, -1) if out is None else out.view_as(Z).copy_(Z).view(m, -1)

    def forward_op(self, A=None, out=None):
        """:meth:`forward` bound to its input ``A`` (None: the op takes it) and ``out`` (None: a
        new tensor each time); straight the one product it makes where what that multiplies is
        kept as views, and as the products of the groups (:data:`BLOCK_GROUP_MAX`) where there
        are several and A and out are given."""
        bound = {} if A is None else {"mat1": A}
        if self.shared_input or self.blocks is not None:
            self._stacked()  # (keeps them as views where it can)
        if self._stacked_views is None:  # a batched product, or W and b copied at each call
            return partial(self.forward, *bound.values(), out=out)
        stacked_t, b = self._stacked_views
        if self.shared_input:
            return partial(torch.addmm, b, mat2=stacked_t, out=out, **bound)
        if len(self.groups) > 1 and A is not None and out is not None:
            return partial(_products, torch.addmm, out, [
                (b[o], A[:, i], self.blocks[i, o], out[:, o]) for i, o in self.groups])
        return partial(torch.addmm, b, mat2=self.blocks, out=out, **bound)

    def gradient_ops(self, G, G_t, views, dW, db, s, s_ones):
        """(dW op, db op): each network's s·Gᵀ·A and s·Σ_rows G (= dZᵀ·A and Σ_rows dZ) from G
        (m, C·n_out) (and its transpose ``G_t``) and A (m, C·n_in), written into the
        contiguous ``dW`` (C, n_out, n_in) and ``db`` (C, n_out). ``views``: see
        :class:`_ManyBuffers`; ``s_ones`` holds m entries s. The first layer's dW op takes its
        A (the shared X), the others nothing."""
        bias_op = partial(torch.mv, G_t, s_ones, out=db.view(-1))
        if self.shared_input:
            return partial(_weight_gradient, dW.view(-1, self.n_in), G, G_t, s=s,
                           dW_t=self._dW_t), bias_op
        _, G_per_network, A_per_network = views  # (the block-diagonal product: C× the work)
        return partial(torch.baddbmm, dW, G_per_network, A_per_network, beta=0, alpha=s,
                       out=dW), bias_op

    def backward_op(self, G, out):
        """:meth:`backward` of ``G`` into ``out``, bound (where blocks, straight the product, or
        the groups' products)."""
        if self.blocks is None:
            return partial(self.backward, G, out=out)
        if len(self.groups) > 1:
            return partial(_products, torch.mm, out, [
                (G[:, o], self.blocks_t[o, i], out[:, i]) for i, o in self.groups])
        return partial(torch.mm, G, self.blocks_t, out=out)

    def backward(self, G, out=None):
        """G·W (m, C·n_in), each network's (dA^[l-1] = s·G^[l]·W^[l] without its s), from G
        (m, C·n_out); into ``out`` if given."""
        if self.blocks is not None:
            return torch.mm(G, self.blocks_t, out=out)
        m = G.shape[0]
        dA = torch.bmm(G.view(m, self.C, -1).transpose(0, 1), self.W).transpose(0, 1)
        return dA.reshape(m, -1) if out is None else out.view_as(dA).copy_(dA).view(m, -1)
