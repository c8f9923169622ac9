"""The course's fully connected network ``[n_x, n_h1, ..., n_y]`` as an ``nn.Module``."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_choice, check_positive_int

HIDDEN = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU}
OUTPUTS = ("sigmoid", "softmax", "linear")
INITS = ("he", "xavier", "torch")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


class MLP(nn.Module):
    """LINEAR → hidden activation, L-1 times, then LINEAR → output activation.

    ``layer_dims = [n_x, n_h1, ..., n_y]``; layer l holds W^[l] of shape (n_l, n_{l-1}) and
    b^[l] of shape (n_l,), as ``nn.Linear``. Rows of the input are examples.

    init "he": W^[l] ~ N(0, 1)·√(2/n_{l-1}), b^[l] = 0 (for ReLU); "xavier": √(1/n_{l-1});
    "torch": PyTorch's default. ``forward`` returns the activation a^[L]; ``logits`` returns
    z^[L], which the losses use for numerical stability.
    """

    def __init__(self, layer_dims, hidden: str = "relu", output: str = "sigmoid",
                 init: str = "he"):
        super().__init__()
        layer_dims = list(layer_dims)
        if len(layer_dims) < 2:
            raise ValueError(f"layer_dims must list at least [n_x, n_y], got {layer_dims!r}")
        layer_dims = [check_positive_int("every layer size in layer_dims", n) for n in layer_dims]
        check_choice("hidden", hidden, HIDDEN)
        check_choice("output", output, OUTPUTS)
        check_choice("init", init, INITS)
        self.layer_dims, self.hidden, self.output, self.init = layer_dims, hidden, output, init
        self.linears = nn.ModuleList(nn.Linear(n_in, n_out)
                                     for n_in, n_out in zip(layer_dims, layer_dims[1:]))
        self.activation = HIDDEN[hidden]()
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        for linear in self.linears:
            if self.init == "torch":
                linear.reset_parameters()
                continue
            gain = 2.0 if self.init == "he" else 1.0
            linear.weight.normal_().mul_(math.sqrt(gain / linear.in_features))
            linear.bias.zero_()

    def logits(self, x):
        """z^[L], the output layer before its activation."""
        for linear in self.linears[:-1]:
            x = self.activation(linear(x))
        return self.linears[-1](x)

    def forward(self, x):
        z = self.logits(x)
        if self.output == "sigmoid":
            return torch.sigmoid(z)
        if self.output == "softmax":
            return torch.softmax(z, dim=-1)
        return z

    def extra_repr(self) -> str:
        return f"layer_dims={self.layer_dims}, hidden={self.hidden!r}, output={self.output!r}"


def takes_indices(model: nn.Module) -> bool:
    """Whether the model looks up embeddings: its integer inputs are indices (token ids), not
    numbers to convert to its dtype."""
    return any(isinstance(m, nn.Embedding | nn.EmbeddingBag) for m in model.modules())


def predict(model: nn.Module, X) -> torch.Tensor:
    """The model's output on the rows of ``X`` (in its dtype and on its device), computed in
    eval mode (dropout off, batch-norm statistics frozen) without gradients; the model's mode
    is restored afterwards."""
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.get_default_dtype()
    device = parameter.device if parameter is not None else None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            X = torch.as_tensor(X, device=device)
            return model(X if takes_indices(model) and not X.is_floating_point() else
                         X.to(dtype))
    finally:
        model.train(was_training)


def predicted_labels(model: nn.Module, X, task: str) -> torch.Tensor:
    """Predicted labels (binary: a > 0.5, multiclass: argmax) or values (regression)."""
    output = predict(model, X)
    if task == "binary":
        return (output > 0.5).long().reshape(-1)
    if task == "multiclass":
        return output.argmax(dim=-1)
    return output


def accuracy(model: nn.Module, X, Y, task: str) -> float | None:
    """Fraction of examples predicted right; None for regression or no examples."""
    if task == "regression" or len(X) == 0:
        return None
    predicted = predicted_labels(model, X, task).cpu()
    return float((predicted == torch.as_tensor(Y).reshape(-1).long()).double().mean())


def default_layers(dataset) -> list[int]:
    """[n_x, 16, 8, n_y]: small enough to train in seconds, big enough to fit curved data."""
    return [dataset.n_features, 16, 8, dataset.n_outputs]


def check_layers(layers, dataset) -> list[int]:
    layers = list(layers)
    if len(layers) < 2 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1
                              for n in layers):
        raise ValueError(f"layers must be at least two positive integers like 2,5,2,1, "
                         f"got {layers}")
    if layers[0] != dataset.n_features or layers[-1] != dataset.n_outputs:
        raise ValueError(f"layers {','.join(map(str, layers))} don't match the data "
                         f"{dataset.name!r}: it needs {dataset.n_features} inputs and "
                         f"{dataset.n_outputs} output(s), e.g. "
                         f"{','.join(map(str, default_layers(dataset)))}")
    return layers


def initial_model(dataset, layers, seed: int, dtype=torch.float32) -> MLP:
    """The network every run starts from, He-initialized from ``seed``."""
    torch.manual_seed(seed)
    return MLP(layers, output=dataset.output).to(dtype)


def built_model(model, seed: int) -> nn.Module:
    """``model`` itself, or what the function ``model`` returns, called under
    ``torch.manual_seed(seed)`` (the same initial weights for the same seed); TypeError unless
    it is an ``nn.Module``."""
    if callable(model) and not isinstance(model, nn.Module):
        torch.manual_seed(seed)
        model = model()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module or a function returning one, got "
                        f"{type(model).__name__}")
    return model
