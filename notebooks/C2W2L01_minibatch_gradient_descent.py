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
# # C2W2L01 — Mini-batch gradient descent
#
# Batch gradient descent takes one step per pass over all m examples. Mini-batch gradient
# descent cuts the shuffled training set into mini-batches X^{t}, Y^{t} of, say, 64 examples
# and takes one step on each:
#
#     for t = 1 … ⌈m/64⌉:   forward on X^{t},  J^{t} = cost of the mini-batch,
#                           backward → dW,     W := W - α·dW
#
# One pass through all the mini-batches is one *epoch*: with m = 750 and mini-batches of 64
# an epoch takes 12 steps instead of one.

# %%
# %matplotlib inline
import torch
from IPython.display import display

import gdlab
from gdlab.lab import figures

X = torch.randn(750, 2)
Y = torch.zeros(750, 1)
sizes = [len(X_t) for X_t, _ in gdlab.minibatches(X, Y, batch_size=64, seed=0)]
print(len(sizes), "mini-batches:", sizes)  # eleven of 64 and one with the 46 left

# %% [markdown]
# ## The experiment
#
# The same network [2, 16, 8, 1] from the same initialization, on the same `moons` data, with
# the same α = 0.3: batch GD (one step per epoch on all m examples) against mini-batch GD
# (64 examples per step), 300 iterations t each. Batch GD's cost falls at every step;
# mini-batch GD's is noisy — each mini-batch is a different sample — but trends down. The
# black line is its bias-corrected EWA (lecture 5).

# %%
runs = figures.minibatch_cost_runs(iterations=300, batch_size=64, lr=0.3)
measures = figures.minibatch_cost_measures(runs)
print(measures)
display(figures.minibatch_cost(runs))

# %% [markdown]
# ## Try this
#
# Change the mini-batch size: 16 is noisier still, 256 is almost batch GD. Or change α —
# the noise of the small mini-batches grows with it.

# %%
batch_size = 16  # try 16, 128, 256
lr = 0.3  # try 0.1 or 1.0
runs = figures.minibatch_cost_runs(iterations=300, batch_size=batch_size, lr=lr)
print(figures.minibatch_cost_measures(runs))
display(figures.minibatch_cost(runs))
