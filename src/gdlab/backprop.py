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
of C tiny ones) while that matrix is small (``BLOCK_DIAGONAL_MAX`` entries), else a batched
product.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .losses import default_loss

#: C networks' layer l as one block-diagonal product while its C²·n_l·n_{l-1} entries are fewer
BLOCK_DIAGONAL_MAX = 1 << 17


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


class MLPBackprop:
    """The gradients of J for ``model``'s architecture and default cost, in closed form, and
    J itself from the Z^[L] they return: per mini-batch (:meth:`cost`) or for a whole epoch's
    mini-batches at once (:meth:`batch_costs`)."""

    def __init__(self, model):
        self.hidden, self.output = model.hidden, model.output
        self.slope = getattr(model.activation, "negative_slope", 0.0)
        self._work: dict = {}

    def _activate(self, Z):
        """A = g(Z), the hidden activation, in place."""
        if self.hidden == "relu":
            return Z.relu_()
        if self.hidden == "tanh":
            return Z.tanh_()
        if self.hidden == "sigmoid":
            return Z.sigmoid_()
        return F.leaky_relu_(Z, self.slope)

    def _backward_activation(self, dA, A):
        """dZ = dA ⊙ g'(Z), g' written in terms of A = g(Z) (the kernels autograd runs):
        relu 1[A > 0], leaky relu 1[A > 0] or its slope, tanh 1 - A², sigmoid A·(1 - A)."""
        aten = torch.ops.aten
        if self.hidden == "relu":
            return aten.threshold_backward.default(dA, A, 0)
        if self.hidden == "tanh":
            return aten.tanh_backward.default(dA, A)
        if self.hidden == "sigmoid":
            return aten.sigmoid_backward.default(dA, A)
        return aten.leaky_relu_backward.default(dA, A, self.slope, True)

    def _target(self, Z, Y):
        """Y as Z's targets: (m, n_y) in Z's dtype, (m, 1, n_y) for C networks' Z (m, C, n_y)."""
        m, n_y = Z.shape[0], Z.shape[-1]
        if self.output == "softmax":
            target = F.one_hot(Y.reshape(-1).long(), n_y).to(Z.dtype)
        elif Y.shape == (m, n_y) and Y.dtype == Z.dtype:
            target = Y
        else:
            target = Y.reshape(m, n_y).to(Z.dtype)
        return target.unsqueeze(1) if Z.dim() == 3 else target

    def output_gradient(self, Z, Y):
        """dZ^[L] = ∂J/∂Z^[L] for the mean cost over the m rows of Z: Z is (m, n_y) for one
        network, (m, C, n_y) for C; Y holds the m rows' targets."""
        m, n_y = Z.shape[0], Z.shape[-1]
        target = self._target(Z, Y)
        if self.output == "softmax":  # (dividing by a float: an int scalar costs a conversion)
            return torch.softmax(Z, dim=-1).sub_(target).div_(float(m))
        if self.output == "sigmoid":
            return torch.sigmoid(Z).sub_(target).div_(float(m * n_y))
        return torch.sub(Z, target).mul_(2 / (m * n_y))

    def row_costs(self, Z, Y):
        """Each row's cost, averaged over its n_y outputs (as :mod:`gdlab.losses` averages):
        shape (m,) for one network's Z (m, n_y), (m, C) for C networks' Z (m, C, n_y)."""
        if self.output == "softmax":
            labels = Y.reshape(-1).long()
            if Z.dim() == 3:  # classes in dimension 1, the C networks after them
                return F.cross_entropy(Z.transpose(1, 2), labels.unsqueeze(1).expand(
                    Z.shape[:2]), reduction="none")
            return F.cross_entropy(Z, labels, reduction="none")
        target = self._target(Z, Y)
        if target.shape != Z.shape:
            target = target.expand_as(Z)
        if self.output == "sigmoid":  # the op F's version calls; reduction 0 is "none"
            per_output = torch.binary_cross_entropy_with_logits(Z, target, None, None, 0)
        else:
            per_output = F.mse_loss(Z, target, reduction="none")
        return per_output.squeeze(-1) if Z.shape[-1] == 1 else per_output.mean(-1)

    def cost(self, Z, Y):
        """J of one mini-batch from its Z^[L]: 0-d for one network, shape (C,) for C."""
        return self.row_costs(Z, Y).mean(0)

    def batch_costs(self, Z, Y, batch_size):
        """J^{t} of each mini-batch of an epoch, from the Z^[L] and Y of all its rows in order
        (consecutive mini-batches of ``batch_size`` rows, the last with the rest): shape
        (steps,) for one network, (steps, C) for C. A few operations per epoch, however many
        steps, in place of a cost per step."""
        rows = self.row_costs(Z, Y)
        key = ("lengths", rows.shape[0], batch_size, rows.device)
        lengths = self._work.get(key)
        if lengths is None:
            full, rest = divmod(rows.shape[0], batch_size)
            lengths = self._work[key] = torch.tensor([batch_size] * full + [rest] * (rest > 0),
                                                     device=rows.device)
        return torch.segment_reduce(rows, "mean", lengths=lengths, axis=0)

    def gradients_of(self, model):
        """``gradients(X, Y) -> Z^[L]``: the gradients of J on the mini-batch written into each
        parameter's ``.grad`` (overwritten: no zeroing needed); J is :meth:`cost` (or, for a
        whole epoch, :meth:`batch_costs`) of the Z^[L] returned. Call under ``torch.no_grad()``."""
        params = list(model.parameters())
        weights, biases = params[0::2], params[1::2]

        def gradients(X, Y):
            grads = [p.grad for p in params]
            if any(grad is None for grad in grads):
                for p in params:
                    if p.grad is None:
                        p.grad = torch.empty_like(p)
                grads = [p.grad for p in params]
            return self(weights, biases, X, Y, grads[0::2], grads[1::2])[0]

        return gradients

    def __call__(self, weights, biases, X, Y, dweights=None, dbiases=None):
        """(Z^[L], dweights, dbiases) of the mini-batch (X, Y) — J is :meth:`cost` of Z^[L] —
        for one network or, parameters with a leading dimension C, C networks. One network's
        gradients are written into ``dweights``/``dbiases`` where given (tensors of the
        parameters' shapes)."""
        if weights[0].dim() == 3:
            return self._many(weights, biases, X, Y, dweights, dbiases)
        L = len(weights)
        activations = [X]
        for l in range(L - 1):
            activations.append(self._activate(F.linear(activations[l], weights[l], biases[l])))
        Z = F.linear(activations[-1], weights[-1], biases[-1])
        dZ = self.output_gradient(Z, Y)
        dweights = list(dweights) if dweights is not None else [None] * L
        dbiases = list(dbiases) if dbiases is not None else [None] * L
        for l in range(L - 1, -1, -1):
            A_prev = activations[l]
            dweights[l] = torch.mm(dZ.t(), A_prev, out=dweights[l])
            dbiases[l] = torch.sum(dZ, 0, out=dbiases[l])
            if l > 0:
                dZ = self._backward_activation(torch.mm(dZ, weights[l]), A_prev)
        return Z, dweights, dbiases

    def _products(self, weights) -> list:
        """Each layer's :class:`_WideProduct`, kept while the same weight tensors come back (a
        product holds its W, updated in place: its copy of W is refreshed at each call)."""
        products = self._work.get("products")
        if products is None or len(products) != len(weights) or any(
                product.W is not W for product, W in zip(products, weights)):
            products = self._work["products"] = [_WideProduct(W, l == 0)
                                                 for l, W in enumerate(weights)]
        for product in products:
            product.refresh()
        return products

    def _many(self, weights, biases, X, Y, dweights=None, dbiases=None):
        """C networks at once, their activations side by side: A^[l] of shape (m, C·n_l)."""
        C, m, L = weights[0].shape[0], X.shape[0], len(weights)
        products = self._products(weights)
        activations = [X]
        for l in range(L):
            Z = products[l].forward(activations[l], biases[l])
            activations.append(Z if l == L - 1 else self._activate(Z))
        Z = activations[L].view(m, C, -1)
        dZ = self.output_gradient(Z, Y).view(m, -1)
        dweights = list(dweights) if dweights is not None else [None] * L
        dbiases = list(dbiases) if dbiases is not None else [None] * L
        for l in range(L - 1, -1, -1):
            A_prev = activations[l]
            dweights[l] = products[l].weight_gradient(dZ, A_prev, out=dweights[l])
            dbiases[l] = torch.sum(dZ.view(m, C, -1), 0, out=dbiases[l])
            if l > 0:
                dZ = self._backward_activation(products[l].backward(dZ), A_prev)
        return Z, dweights, dbiases


class _WideProduct:
    """Z = A·Wᵀ + b for C networks side by side: A (m, C·n_in) or, for the first layer, the
    shared X (m, n_in); W (C, n_out, n_in); Z (m, C·n_out)."""

    def __init__(self, W, shared_input):
        self.W, self.shared_input = W, shared_input
        self.C, self.n_out, self.n_in = W.shape
        self.blocks = self.diagonal = None
        if not shared_input and self.C * self.C * self.n_in * self.n_out <= BLOCK_DIAGONAL_MAX:
            self.blocks = W.new_zeros(self.C * self.n_in, self.C * self.n_out)
            self.diagonal = self._diagonal(self.blocks, self.n_in, self.n_out)
            self.W_t = W.permute(0, 2, 1)

    def refresh(self) -> None:
        """Copy the current W into the diagonal blocks (the rest stays zero)."""
        if self.blocks is not None:
            self.diagonal.copy_(self.W_t)

    def _diagonal(self, M, rows, columns):
        """The C diagonal blocks of M (C·rows, C·columns), as a (C, rows, columns) view."""
        return M.view(self.C, rows, self.C, columns).diagonal(dim1=0, dim2=2).permute(2, 0, 1)

    def forward(self, A, b):
        if self.shared_input:  # X: one product with the C matrices W stacked
            return torch.addmm(b.reshape(-1), A, self.W.reshape(-1, self.n_in).t())
        if self.blocks is not None:
            return torch.addmm(b.reshape(-1), A, self.blocks)
        m = A.shape[0]
        Z = torch.baddbmm(b.unsqueeze(1), A.view(m, self.C, -1).transpose(0, 1),
                          self.W.transpose(1, 2))
        return Z.transpose(0, 1).reshape(m, -1)

    def weight_gradient(self, dZ, A, out=None):
        """dW (C, n_out, n_in): each network's dZᵀ·A (copied into ``out`` where given)."""
        if self.shared_input:
            dW = torch.mm(dZ.t(), A).view(self.C, self.n_out, self.n_in)
        elif self.blocks is not None:
            dW = self._diagonal(torch.mm(dZ.t(), A), self.n_out, self.n_in)
        else:
            m = A.shape[0]
            dW = torch.bmm(dZ.view(m, self.C, -1).permute(1, 2, 0),
                           A.view(m, self.C, -1).transpose(0, 1))
        return dW if out is None else out.copy_(dW)

    def backward(self, dZ):
        """dA (m, C·n_in): each network's dZ·W."""
        if self.blocks is not None:
            return torch.mm(dZ, self.blocks.t())
        m = dZ.shape[0]
        return torch.bmm(dZ.view(m, self.C, -1).transpose(0, 1), self.W).transpose(
            0, 1).reshape(m, -1)
