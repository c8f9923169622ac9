"""How a step over whole flat buffers runs: the one place that picks torch's own one-pass
kernel, the rule compiled, or the rule run eagerly.

Run eagerly, a rule costs one pass over memory per tensor operation (Adam: about ten); fused,
it reads W, dW and the moments once and writes them once — the memory traffic the formula
needs and no more. Two ways get that pass:

- **torch's kernel for the same formula**, where there is one: Adam (``torch._fused_adam_``,
  ``torch._fused_adamw_`` for decoupled weight decay) with every option, and Momentum as
  torch's SGD (``torch._fused_sgd_``: dampening β for the "ewa" form) with L2 weight decay,
  ascent and, in the "sum" form, Nesterov. On the CPU these run at the memory's speed and need
  no compiling, so they are used at every size; on a GPU only where auto would not compile.
- **the rule compiled** (``torch.compile``): the same function as in :mod:`gdlab.optim.rules`,
  its numeric hyperparameters (α, β, ε, λ and the bias corrections 1-β^t) passed as 0-d
  float64 tensors (views into one tensor, made in one call), so a new α, β or step count
  reuses the compiled code. Compiling costs seconds on the first call (per rule, dtype and set
  of options), so ``auto`` compiles only buffers of at least ``FUSED_MIN_NUMEL`` elements,
  where each step saves more than that over a run. Where compiling is not possible (no C++
  compiler, an unsupported device) it warns once and the eager rule runs.
"""

from __future__ import annotations

import types
import warnings

import torch

#: buffers at least this large use the fused path when ``fused=None`` (auto)
FUSED_MIN_NUMEL = 1 << 20
_compiled: dict = {}
_broken: set = set()


def use_fused(fused: bool | None, W: torch.Tensor) -> bool:
    """Whether to run the compiled rule on the flat buffer ``W``."""
    if fused is None:
        fused = W.numel() >= FUSED_MIN_NUMEL
    return bool(fused)


def use_torch_kernel(fused: bool | None, W: torch.Tensor, complex_: bool = False) -> bool:
    """Whether a rule that torch has a one-pass kernel for runs that kernel on ``W``: on the
    CPU whenever fused is not False (it runs at the memory bandwidth, and there is nothing to
    compile); elsewhere only where auto would not compile (on a GPU the compiled rule is the
    faster: 87–96 % of an H100's copy bandwidth for Adam, torch's fused Adam 80–82 %). Not
    for complex parameters (``complex_``: ``W`` holds their real views), which torch's kernels
    refuse: they run the rule itself."""
    if fused is False or complex_:
        return False
    return W.device.type == "cpu" or not use_fused(fused, W)


def as_tensors(hyperparameters: dict, device) -> dict:
    """The numeric hyperparameters as 0-d float64 tensors on ``device`` (views of one tensor
    made in one call; to a GPU from pinned memory, without waiting for it), the rest as given."""
    numbers = [name for name, value in hyperparameters.items()
               if isinstance(value, int | float) and not isinstance(value, bool)]
    values = torch.tensor([float(hyperparameters[name]) for name in numbers],
                          dtype=torch.float64)
    if torch.device(device).type != "cpu":
        values = values.pin_memory().to(device, non_blocking=True)
    return {**hyperparameters, **dict(zip(numbers, values.unbind(), strict=True))}


def compiled(rule, arguments: dict):
    """``rule`` compiled for the options in ``arguments`` (their values, and which arguments
    are given; a number or a tensor stands for any value). Each set of options compiles a copy
    of the function with a code object of its own: torch.compile counts recompilations per code
    object (8 at most), and the options with the two dtypes would exceed that together."""
    key = (rule, *sorted((name, value if value is None or isinstance(value, bool | str) else "")
                         for name, value in arguments.items()))
    function = _compiled.get(key)
    if function is None:
        copy = types.FunctionType(rule.__code__.replace(), rule.__globals__, rule.__name__,
                                  rule.__defaults__, rule.__closure__)
        copy.__kwdefaults__ = rule.__kwdefaults__
        function = _compiled[key] = torch.compile(copy, fullgraph=True)
    return function


def run(rule, *tensors, **arguments) -> None:
    """rule(*tensors, **arguments) as one compiled pass (eager if compiling fails); the
    arguments hold the state tensors by name and the hyperparameters."""
    device = tensors[0].device
    if (rule, device.type) in _broken:
        rule(*tensors, **arguments)
        return
    try:
        function = compiled(rule, arguments)
        function(*tensors, **as_tensors(arguments, device))
    except Exception as error:  # compiling failed before any tensor was touched
        _broken.add((rule, device.type))
        message = str(error).splitlines()[0] if str(error) else ""
        warnings.warn(f"gdlab: the fused {rule.__name__} step is not available on "
                      f"{device.type} ({type(error).__name__}: {message}); using the flat eager "
                      f"step", RuntimeWarning, stacklevel=3)
        rule(*tensors, **arguments)


def adam_kernel(flat, args: dict, t: int) -> bool:
    """torch's fused Adam (AdamW with decoupled decay) on the whole buffers of ``flat``: the
    rule's formula, with 1-β^t from the step count t. Runs for every option."""
    kernel = torch._fused_adamw_ if args.get("decoupled") else torch._fused_adam_
    moments = flat.moments
    kernel([flat.W], [flat.dW], [moments["v"]], [moments["S"]],
           [moments["S_max"]] if "S_max" in flat.active else [], [flat.step_tensor(t)],
           lr=args["lr"], beta1=args["beta1"], beta2=args["beta2"],
           weight_decay=args.get("weight_decay", 0.0), eps=args["eps"],
           amsgrad="S_max" in flat.active, maximize=args.get("maximize", False))
    return True


def momentum_kernel(flat, args: dict, t: int) -> bool:
    """torch's fused SGD: v := β·v + (1 - dampening)·dW ; W := W - α·v (Nesterov: W := W -
    α·(dW + β·v)), with dampening β for the "ewa" form and 0 for "sum" (v starts at 0, as
    here: never its first-step copy). Not for what it lacks (returns False): β = 0 (it then
    keeps no v), decoupled weight decay, Nesterov in the "ewa" form."""
    beta, ewa = args["beta"], args["form"] == "ewa"
    if beta == 0 or args.get("decoupled") or (ewa and args.get("nesterov")):
        return False
    torch._fused_sgd_([flat.W], [flat.dW], [flat.moments["v"]],
                      weight_decay=args.get("weight_decay", 0.0), momentum=beta, lr=args["lr"],
                      dampening=beta if ewa else 0.0, nesterov=args.get("nesterov", False),
                      maximize=args.get("maximize", False), is_first_step=False)
    return True


#: the methods torch has a one-pass kernel for
KERNELS = {"adam": adam_kernel, "momentum": momentum_kernel}


def _path(flat, fused) -> tuple[bool, bool]:
    """(torch's kernel?, compiled?) for a whole step over ``flat`` under the optimizer's
    ``fused`` setting; decided once per setting."""
    path = flat.paths.get(fused)
    if path is None:
        path = flat.paths[fused] = (use_torch_kernel(fused, flat.W, flat.complex),
                                    use_fused(fused, flat.W))
    return path


def step(optimizer, flat, a: int, b: int, args: dict, t: int) -> None:
    """One step of ``optimizer``'s rule over elements a…b of the buffers of ``flat``. Over the
    whole buffers: torch's kernel where :func:`use_torch_kernel` says so and it has the options
    (through the optimizer's ``torch_kernel``), else compiled where :func:`use_fused` says so,
    else eager. Over a part (some parameters had no gradient or lag in t): eager."""
    rule = type(optimizer).rule
    if (a, b) != flat.whole:
        rule(flat.W[a:b], flat.dW[a:b], **{name: flat.moments[name][a:b] for name in flat.active},
             **args)
        return
    torch_kernel, fused = _path(flat, optimizer.fused)
    if torch_kernel and optimizer.kind in KERNELS and optimizer.torch_kernel(flat, args, t):
        return
    tensors = {name: flat.moments[name] for name in flat.active}
    if fused:
        run(rule, flat.W, flat.dW, **tensors, **args)
    else:
        rule(flat.W, flat.dW, **tensors, **args)
