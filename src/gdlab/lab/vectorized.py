"""Many configurations of one small network trained at once, in one batched computation.

C configurations that share the network, its initialization, the data, the mini-batch size and
the mini-batch order (``seed``) but differ in α, β, β₁, β₂, ε and the decay schedule are trained
together: their parameters lie in one flat buffer ``W``, parameter by parameter, each as a
contiguous (C, *shape) block of its C copies — so that the C networks' layer l is one tensor
(C, n_l, n_{l-1}) that the batched products read and write as it is — and so do the gradients
``dW`` and the moments ``v``, ``S``. Each mini-batch step is then

1. one forward and backward pass for all C networks: back propagation in closed form with
   batched matrix products for a gdlab :class:`~gdlab.models.MLP` on its default cost
   (``path="mlp"``, :mod:`gdlab.backprop`), or ``torch.func.vmap`` of
   ``grad(functional_call(model, ...))`` over the C copies of the parameters for any other
   module (``path="vmap"``);
2. one call of the update rule of :mod:`gdlab.optim.rules` on the whole buffers, with the
   hyperparameters as tensors holding each element's configuration's value: α, β, β₁, β₂, ε
   and the bias corrections 1-β^t, read from the configurations as the optimizers read a
   param group (:mod:`gdlab.optim.hyper`). The rule is the same code the optimizers run.

The result is what C separate :func:`gdlab.fit` runs with the same seed give (to float
rounding), in about the time of one or two of them for the course's [2, 5, 2, 1] network.

The mini-batches come from the loop's own :class:`~gdlab.data.batches.TensorBatches` and each
configuration's record is a :class:`~gdlab.train.History`; the step is this module's, not
``Fit``'s: C configurations are one rule call on one buffer with per-element α and 1-β^t,
which C optimizers stepped by C ``Fit`` loops are not — that one call is the whole speed-up
(32 configurations in about twice the time of one ``fit``; docs/speed.md).
"""

from __future__ import annotations

import copy
import inspect
import time

import numpy as np
import torch

from .. import backprop
from .._checks import check_positive_int
from ..data.batches import TensorBatches, shuffled_order
from ..losses import OUTPUT_COSTS, InferredLoss, check_targets, default_loss, label_reader
from ..models import MLP, predict, takes_indices
from ..optim import OPTIMIZERS, hyper
from ..optim.hyper import NUMERIC, OPTIONS
from ..schedules import constant, parse_schedule
from ..train.gradients import SMALL_STEP, torch_threads
from ..train.history import History, epoch_cost_of

PATHS = ("auto", "mlp", "vmap")
#: bias corrections 1-β^t are computed ahead for about this many elements (steps × N) at once
CORRECTIONS_AHEAD = 1 << 16


def defaults(optimizer: str) -> dict:
    """The optimizer class's default hyperparameters (lr excluded)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; allowed: {', '.join(OPTIMIZERS)}")
    parameters = inspect.signature(OPTIMIZERS[optimizer]).parameters
    return {name: parameters[name].default
            for name in NUMERIC[optimizer] + OPTIONS[optimizer]}


def check_config(config: dict) -> dict:
    """A configuration {"optimizer", "lr", its hyperparameters, "schedule"} completed with the
    optimizer's defaults and checked by the optimizer class itself (ValueError if bad)."""
    config = dict(config)
    name = config.get("optimizer", "adam")
    full = {"optimizer": name, "lr": config.get("lr"), **defaults(name),
            "schedule": config.get("schedule")}
    allowed = set(full)
    unknown = sorted(set(config) - allowed - {"batch_size"})
    if unknown:
        raise ValueError(f"{name} takes {', '.join(sorted(allowed))}; got {', '.join(unknown)}")
    full.update({k: v for k, v in config.items() if k != "batch_size" and v is not None})
    if full["lr"] is None:
        raise ValueError(f"configuration {config!r} needs lr (α > 0)")
    hyper = {k: full[k] for k in NUMERIC[name] + OPTIONS[name]}
    OPTIMIZERS[name]([torch.zeros(1, requires_grad=True)], lr=full["lr"], **hyper)  # checks
    if full["schedule"] is not None:
        parse_schedule(full["schedule"], full["lr"])
    return full


class VectorizedFit:
    """C configurations of ``model`` trained at once; see the module's docstring.

    ``configs``: dicts with "optimizer" (the same for all), "lr", the optimizer's
    hyperparameters (missing ones take the optimizer's defaults) and "schedule" (None or a
    string such as ``"inverse_time:decay_rate=1"``). ``epochs``, ``batch_size``, ``seed`` and
    ``loss`` mean what they mean for :func:`gdlab.fit`; every configuration starts from
    ``model``'s parameters and sees the mini-batches in the same order. ``val``: validation
    tensors (X_val, Y_val); after each epoch every configuration's J on them (model in eval
    mode), and the accuracy for a classification cost, go into its History's
    ``metrics["val_cost"]`` and ``["val_accuracy"]``, as :func:`gdlab.fit` records them.

    ``path="vmap"`` runs ``torch.func.vmap`` over ``functional_call`` of the module with its
    parameters stacked and its buffers shared, and one dropout mask for all configurations
    (``randomness="same"``): any module whose forward vmap can run. A forward that changes a
    tensor in place (BatchNorm in training mode updates its running statistics) cannot;
    :func:`why_not_vectorized` tells, from one trial step.
    """

    def __init__(self, model, X, Y, configs, *, epochs, batch_size=64, seed=None, loss=None,
                 path="auto", val=None):
        self.configs = [check_config(c) for c in configs]
        if not self.configs:
            raise ValueError("configs must hold at least one configuration, got none")
        kinds = {(c["optimizer"],) + tuple(c[o] for o in OPTIONS[c["optimizer"]])
                 for c in self.configs}
        if len(kinds) != 1:
            raise ValueError(f"configurations trained together must share the optimizer and "
                             f"its options (form, bias_correction); got {sorted(kinds)}")
        self.optimizer = self.configs[0]["optimizer"]
        self.epochs = check_positive_int("epochs", epochs)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.model = model
        parameter = next(model.parameters())
        self.source = TensorBatches(X, Y, self.batch_size, device=parameter.device,
                                    dtype=parameter.dtype, indices=takes_indices(model))
        self.path, self.loss = _path_and_loss(model, self.source, loss, path)
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

        named = [(name, p) for name, p in model.named_parameters()]
        self.names = [name for name, _ in named]
        self.shapes = [p.shape for _, p in named]
        C, dtype, device = len(self.configs), named[0][1].dtype, named[0][1].device
        self.bounds, start = [], 0  # parameter k's C copies: W[a:b], as (C, *shape)
        for _, p in named:
            self.bounds.append((start, start + C * p.numel()))
            start += C * p.numel()
        self.W = torch.cat([p.detach().reshape(1, -1).expand(C, -1).reshape(-1)
                            for _, p in named])
        #: each element's configuration: the index that spreads (C, ...) values over W
        self._configuration = torch.cat([torch.arange(C, device=device).repeat_interleave(
            p.numel()) for _, p in named])
        self.moments = {name: torch.zeros_like(self.W)
                        for name in hyper.moments(self.optimizer, self.configs[0])}
        self.rule = hyper.RULES[self.optimizer]

        def column(name):
            return torch.tensor([float(c[name]) for c in self.configs], dtype=torch.float64,
                                device=device).view(C, 1)

        self.dtype, self.device = dtype, device
        # the values as the rule gets them, rounded to the buffers' dtype: the bias corrections
        # 1-β^t come from the β that the averages use (in float32, 0.999 is 0.99900001, whose
        # 1-β is 1.3e-5 off 0.999's: an average corrected by 0.999's 1-β^t would be off as much)
        self.numeric = {name: column(name).to(dtype).double() for name in NUMERIC[self.optimizer]}
        self.numeric_per_element = {name: self._per_element(c.to(dtype))[0]
                                    for name, c in self.numeric.items()}
        self.options = {name: self.configs[0][name] for name in OPTIONS[self.optimizer]}
        self.schedules = [parse_schedule(c["schedule"], c["lr"]) if c["schedule"]
                          else constant(c["lr"]) for c in self.configs]
        self.per_step = any(getattr(s, "per_step", False) for s in self.schedules)
        self._observers = [(c, s.observe) for c, s in enumerate(self.schedules)  # (plateau)
                           if hasattr(s, "observe")]
        self.fixed_lr = all(type(s) is constant for s in self.schedules)
        self._set_lr_columns(column("lr").to(dtype))
        self.histories = [History() for _ in self.configs]
        self.epoch_num, self.t = 0, 0
        self._corrections_ahead = (1, {})  # (first t, {name: 1-β^t of t = first, …})
        self._backprop = backprop.MLPBackprop(model) if self.path == "mlp" else None
        if self.path == "mlp" and not OUTPUT_COSTS[model.output].class_indices:
            # Y as the C networks' outputs (m, C, n_y) take it: (m, 1, n_y)
            self.source = TensorBatches(self.source.X, self.source.Y.reshape(self.m, 1, -1),
                                        self.batch_size, dtype=dtype)
        self.dW = torch.empty_like(self.W)
        self.params, self.grads = self._views(self.W), self._views(self.dW)
        stacked = _Stacked(model, self.names, self.loss)
        self._gradient = self._mlp_gradient() if self.path == "mlp" else \
            stacked.gradient(self.params, self.grads, self.dW)
        self._validation = None if val is None else stacked.validation(self.params, val,
                                                                        device, dtype)

    @property
    def m(self) -> int:
        return self.source.m

    # --- the gradient of C networks at once ----------------------------------------------------

    def _views(self, buffer):
        """Each parameter's C copies in ``buffer`` (laid out as ``W``), as a (C, *shape) view."""
        C = len(self.configs)
        return [buffer[a:b].view(C, *shape) for (a, b), shape in zip(self.bounds, self.shapes,
                                                                       strict=True)]

    def _per_element(self, columns):
        """(C, k) values of the configurations as (k, N): row j holds each element of ``W``'s
        configuration's value in column j (a (C, 1) column: one row)."""
        return torch.index_select(columns.t(), 1, self._configuration)

    def _set_lr_columns(self, lr) -> None:
        """α of each configuration, (C, 1), and spread over W's elements."""
        self.lr, self._lr_per_element = lr, self._per_element(lr)[0]
        self._lr_list = lr.double().reshape(-1).tolist()  # (for the histories)

    def _mlp_gradient(self):
        """(X^{t}, Y^{t}) -> (dW, Z^[L]): dW and the C networks' Z^[L] (m, C, n_y), by back
        propagation in closed form (:mod:`gdlab.backprop`) with batched matrix products; the
        costs J^{t} come from the epoch's Z^[L] at its end (:meth:`MLPBackprop.batch_costs`)."""
        gradients = self._backprop.bound_many(  # (views of W and dW, which change in place)
            self.params[0::2], self.params[1::2], self.grads[0::2], self.grads[1::2])

        def gradient(X_t, Y_t):
            return self.dW, gradients(X_t, Y_t)

        return gradient

    def _record_validation(self) -> None:
        J, right = self._validation()
        for c, history in enumerate(self.histories):
            history.metrics.setdefault("val_cost", []).append(J[c])
            if right is not None:
                history.metrics.setdefault("val_accuracy", []).append(right[c])

    # --- training ------------------------------------------------------------------------------

    def _set_lr(self, t=None) -> None:
        lrs = [s(self.epoch_num, t) for s in self.schedules]
        self._set_lr_columns(torch.tensor(lrs, dtype=torch.float64, device=self.device).view(
            -1, 1).to(self.dtype))

    def _corrections(self, steps: int) -> dict:
        """The rule's bias corrections 1-β^t for this epoch's steps t+1 … t+steps, in the
        buffers' dtype: {name: one (N,) tensor per step}, each element's β. They are computed
        ahead for ``CORRECTIONS_AHEAD`` elements' worth of steps at a time."""
        if not hyper.corrections(self.optimizer, {**self.numeric, **self.options}, 1):
            return {}
        first, ahead = self._corrections_ahead
        k = self.t + 1 - first
        if k < 0 or k + steps > len(next(iter(ahead.values()), ())):
            first, k = self.t + 1, 0
            t = torch.arange(first, first + max(steps, CORRECTIONS_AHEAD // self.W.numel()),
                             dtype=torch.float64, device=self.device)
            corrections = hyper.corrections(self.optimizer, {**self.numeric, **self.options}, t)
            ahead = {key: self._per_element(correction.to(self.dtype)).unbind(0)
                     for key, correction in corrections.items()}  # [j]: t = first + j
            self._corrections_ahead = first, ahead
        return {key: rows[k:k + steps] for key, rows in ahead.items()}

    def run_epoch(self) -> np.ndarray:
        """One epoch for every configuration; returns the C epoch costs."""
        self.epoch_num += 1
        if self.per_step:
            self._set_lr(self.t + 1)  # as fit: α of the epoch's first mini-batch
        elif not self.fixed_lr:
            self._set_lr()
        for history, lr in zip(self.histories, self._lr_list, strict=True):
            history.lrs.append(lr)
        order = shuffled_order(self.m, self.generator, self.source.device)
        rule, moments = self.rule, self.moments
        corrections = self._corrections(-(-self.m // self.batch_size))
        args = hyper.arguments(self.optimizer, {"lr": self._lr_per_element,
                                                **self.numeric_per_element, **self.options})
        outputs = []  # each mini-batch's Z^[L] (path "mlp") or J^{t} (path "vmap")
        # closed form: no autograd bookkeeping at all (a tenth of a tiny operation's cost); the
        # vmap path's torch.func.grad records a graph, under no_grad only for the rule's updates
        with torch.inference_mode() if self.path == "mlp" else torch.no_grad():
            epoch = self.source.epoch(order)
            for k, (X_t, Y_t) in enumerate(epoch):
                self.t += 1
                if self.per_step:
                    self._set_lr(self.t)
                    args["lr"] = self._lr_per_element
                for key, per_step in corrections.items():
                    args[key] = per_step[k]
                dW, output = self._gradient(X_t, Y_t)
                rule(self.W, dW, **moments, **args)
                outputs.append(output)
            if self.path == "mlp":
                costs = self._backprop.batch_costs(torch.cat(outputs), epoch.Y, self.batch_size)
            else:
                costs = torch.stack(outputs)
        costs = costs.to("cpu", torch.float64).numpy()  # (steps, C)
        epoch_costs = epoch_cost_of(costs, epoch.sizes)
        epoch_cost_list = epoch_costs.tolist()
        for history, run_costs, epoch_cost in zip(self.histories, costs.T.tolist(),
                                                  epoch_cost_list, strict=True):
            history.costs.extend(run_costs)
            history.epoch_costs.append(epoch_cost)
        for c, observe in self._observers:
            observe(epoch_cost_list[c])
        return epoch_costs

    def run(self, callbacks=()) -> list[History]:
        """Train every configuration for ``epochs``; returns their histories in order.
        ``callbacks(vfit)`` run after each epoch; one may call :meth:`stop`."""
        threads = 1 if self.device.type == "cpu" and \
            self.W.numel() * self.batch_size < SMALL_STEP else None
        self._stop = False
        with torch_threads(threads):
            start = time.perf_counter()
            while self.epoch_num < self.epochs and not self._stop:
                self.run_epoch()
                elapsed = time.perf_counter() - start
                for history in self.histories:
                    history.times.append(elapsed)
                if self._validation is not None:
                    self._record_validation()
                for callback in callbacks:
                    callback(self)
        return self.histories

    def stop(self) -> None:
        self._stop = True

    def models(self) -> list:
        """Each configuration's trained network, as a copy of ``model``."""
        out = []
        for c in range(len(self.configs)):
            model = copy.deepcopy(self.model)
            with torch.no_grad():
                for p, copies in zip(model.parameters(), self.params, strict=True):
                    p.copy_(copies[c])
            out.append(model)
        return out


def _path_and_loss(model, source, loss, path):
    """(path, loss): "mlp" (closed form) where it computes what autograd would, else "vmap";
    the cost given, the MLP's own, or the one the first mini-batch implies (chosen here, as
    C networks' costs run inside vmap)."""
    if path not in PATHS:
        raise ValueError(f"path must be one of {', '.join(PATHS)}, got {path!r}")
    if loss is None:
        check_targets(model, source.Y)
        forward, loss = default_loss(model)
        if isinstance(loss, InferredLoss):
            rows = slice(0, source.batch_size)
            loss.choose(predict(model, source.X[rows]), source.Y[rows])
            loss = loss.loss
    else:
        forward = model
    closed_form = backprop.supports(model, forward, loss)
    if path == "auto":
        path = "mlp" if closed_form else "vmap"
    if path == "mlp" and not closed_form:
        raise ValueError("path='mlp' needs a gdlab MLP trained on its default cost, with "
                         "no hooks; use path='vmap' for other models or costs")
    return path, loss


class _Stacked:
    """The torch.func side of C configurations of any module: ``functional_call`` of the module
    with one configuration's parameters (a tuple in ``names``' order) and its own buffers, and
    what vmap makes of it — the C gradients, the C validation figures."""

    def __init__(self, model, names, loss):
        self.model, self.names, self.loss = model, names, loss

    def functional(self):
        """``cost(params, X_t, Y_t)``: J of the network with the parameters ``params`` (one
        configuration's, a tuple in ``self.names``' order) and the model's buffers, through
        ``functional_call`` (an MLP run to its logits, as its default cost takes them)."""
        from torch.func import functional_call

        module, loss = self.model, self.loss
        forward_is_logits = isinstance(module, MLP) and default_loss(module)[0] == module.logits
        if forward_is_logits:
            module = _Logits(module)
        prefix = "model." if forward_is_logits else ""
        names = [prefix + n for n in self.names]
        buffers = {prefix + n: b for n, b in self.model.named_buffers()}

        def forward(params, X_t):
            return functional_call(module, (dict(zip(names, params, strict=True)), buffers),
                                   (X_t,))

        def cost(params, X_t, Y_t):
            return loss(forward(params, X_t), Y_t)

        return forward, cost

    def gradient(self, params, grads, dW):
        """``(X^{t}, Y^{t}) -> (dW, J^{t} of each configuration)``, writing the C gradients
        into ``grads`` (views of ``dW``)."""
        from torch.func import grad_and_value, vmap

        batched = vmap(grad_and_value(self.functional()[1]), in_dims=(0, None, None),
                       randomness="same")

        def gradient(X_t, Y_t):  # (dW, J^{t} of each)
            new, costs = batched(tuple(params), X_t, Y_t)
            torch._foreach_copy_(grads, new)
            return dW, costs

        return gradient

    def validation(self, params, val, device, dtype):
        """``() -> (C costs, C accuracies or None)`` of the configurations ``params`` (views
        that change in place) on the validation tensors ``val``."""
        from torch.func import vmap

        X_val, Y_val = val
        X_val = torch.as_tensor(X_val).to(device)
        if X_val.is_floating_point() or not takes_indices(self.model):
            X_val = X_val.to(dtype)
        Y_val = torch.as_tensor(Y_val).to(device)
        if Y_val.is_floating_point():
            Y_val = Y_val.to(dtype)
        forward = vmap(self.functional()[0], in_dims=(0, None), randomness="same")
        read_labels = label_reader(self.loss)

        def costs():
            import warnings

            was_training = self.model.training
            self.model.eval()
            try:
                with torch.no_grad(), warnings.catch_warnings():
                    # (eval's fused transformer path has no batching rule: slower, not wrong)
                    warnings.filterwarnings("ignore", message="There is a performance drop")
                    outputs = forward(tuple(params), X_val)
                    J = [float(self.loss(output, Y_val)) for output in outputs]
                    if read_labels is None:
                        return J, None
                    right = [(read_labels(o).reshape(-1) == Y_val.reshape(-1).long())
                             .double().mean().item() for o in outputs]
                    return J, right
            finally:
                self.model.train(was_training)

        return costs


class _Logits(torch.nn.Module):
    """An MLP whose forward returns its logits z^[L] (what its default cost takes)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.logits(x)


def fit_many(model, X, Y, configs, *, epochs, batch_size=64, seed=None, loss=None,
             path="auto", callbacks=(), val=None):
    """Train every configuration in ``configs`` from ``model``'s parameters, vectorized:
    returns (histories, models) in the order of ``configs``. Configurations with different
    optimizers (or momentum forms) are trained in one batch per optimizer."""
    configs = [check_config(c) for c in configs]
    groups: dict = {}
    for index, c in enumerate(configs):
        key = (c["optimizer"],) + tuple(c[o] for o in OPTIONS[c["optimizer"]])
        groups.setdefault(key, []).append(index)
    histories, models = [None] * len(configs), [None] * len(configs)
    for indices in groups.values():
        run = VectorizedFit(model, X, Y, [configs[i] for i in indices], epochs=epochs,
                            batch_size=batch_size, seed=seed, loss=loss, path=path, val=val)
        for i, history, trained in zip(indices, run.run(callbacks), run.models(), strict=True):
            histories[i], models[i] = history, trained
    return histories, models


def why_not_vectorized(model, X, Y, *, loss=None, rows: int = 4) -> str | None:
    """None when :class:`VectorizedFit` can train ``model`` (one step of one configuration on
    a copy of it and the first ``rows`` examples is tried), else why not, in one sentence: a
    forward that changes a tensor in place (BatchNorm in training mode), or anything else
    ``torch.func.vmap`` cannot run."""
    import warnings

    rows = min(max(rows, 2), len(X))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            VectorizedFit(copy.deepcopy(model), X[:rows], Y[:rows],
                          [{"optimizer": "gd", "lr": 1e-12}], epochs=1, batch_size=rows,
                          loss=loss).run()
    except Exception as error:  # noqa: BLE001 - whatever vmap refuses is the answer
        message = " ".join(str(error).split())[:160]
        batch_norm = [type(m).__name__ for m in model.modules() if m.training and isinstance(
            m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        if batch_norm and ("in-place" in message or "mutate" in message):
            return (f"{batch_norm[0]} in training mode updates its running statistics in "
                    f"place, which torch.func.vmap cannot batch")
        return f"torch.func.vmap cannot run its forward ({type(error).__name__}: {message})"
    return None
