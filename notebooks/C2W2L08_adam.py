# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # C2W2L08 — Adam
#
# Adam is Momentum and RMSProp together, both averages bias-corrected; t counts the steps:
#
#     v := β₁·v + (1-β₁)·dW ,        S := β₂·S + (1-β₂)·dW²
#     v̂ = v / (1-β₁^t) ,             Ŝ = S / (1-β₂^t)
#     W := W - α·v̂ / (√Ŝ + ε)
#
# Usual hyperparameters: β₁ = 0.9, β₂ = 0.999, ε = 1e-8; α is the one to tune.
# At t = 1, v̂ = dW and Ŝ = dW², so the first step moves every weight by α (up to ε).

# %%
# %matplotlib inline
import numpy as np
import torch
from IPython.display import display

import gdlab
from gdlab.lab import figures, landscape

# gdlab.Adam is torch.optim.Adam's update: the same steps on the same gradients
torch.manual_seed(0)
W_gdlab = torch.nn.Parameter(torch.randn(5, dtype=torch.float64))
W_torch = torch.nn.Parameter(W_gdlab.detach().clone())
ours = gdlab.Adam([W_gdlab], lr=0.01)
theirs = torch.optim.Adam([W_torch], lr=0.01, eps=1e-8)
for _ in range(5):
    for W, optimizer in ((W_gdlab, ours), (W_torch, theirs)):
        optimizer.zero_grad()
        ((W - 1) ** 2).sum().backward()
        optimizer.step()
print("largest difference after 5 steps:", (W_gdlab - W_torch).abs().max().item())

path = landscape.trajectory("rosenbrock", "adam", lr=0.1, steps=1, start=(-1.5, 2.0))
print("first step |ΔW|:", np.abs(path[1] - path[0]))  # α = 0.1 in each direction

# %% [markdown]
# ## The experiment
#
# Rosenbrock's curved valley J = (1 - w₁)² + 100·(w₂ - w₁²)², 500 steps of each optimizer
# with an α that suits it: GD and RMSProp crawl along the valley, Momentum and Adam get
# close to the minimum (1, 1) — the printed distances say how close.

# %%
land = landscape.get_landscape("rosenbrock")
paths = landscape.trajectories(land)
for name, path in paths.items():
    print(f"{name:9s} α = {land.lr[name]:<7g} distance to (1, 1) after {len(path) - 1} steps: "
          f"{np.linalg.norm(path[-1] - land.minimum):.3f}")
display(landscape.landscape_figure(land))

# %% [markdown]
# ## On the bowl
#
# With the same α = 0.1, RMSProp flattens the zig-zag of the elongated bowl; Adam, whose
# first moment is Momentum's, still swings (the bottom row of figure 5).

# %%
display(figures.oscillation(figures.oscillation_data(adaptive_lr=0.1)))

# %% [markdown]
# ## Try this
#
# β₁ = 0 leaves RMSProp with bias correction; a smaller β₂ forgets old gradients sooner.

# %%
beta1, beta2 = 0.0, 0.999  # try (0.9, 0.999), (0.0, 0.999), (0.9, 0.9)
lr = 0.05
path = landscape.trajectory("rosenbrock", "adam", lr=lr, steps=500, beta1=beta1,
                            beta2=beta2)
print(f"distance to (1, 1): {np.linalg.norm(path[-1] - land.minimum):.3f}")
display(landscape.landscape_figure(land, {"adam": path}, {"adam": lr}))
