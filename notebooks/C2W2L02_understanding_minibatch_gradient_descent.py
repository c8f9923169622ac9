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
# # C2W2L02 — Understanding mini-batch gradient descent
#
# The mini-batch size is a dial between two extremes:
#
# - size = m: **batch gradient descent**. Every step sees all m examples, so the cost J falls
#   at every iteration — but one iteration costs a pass over the whole training set.
# - size = 1: **stochastic gradient descent** (SGD). Every step sees one example: cheap, but
#   noisy; it never settles at the minimum, it wanders around it, and it gives up the speed
#   of vectorized code.
# - In between (typically 64 to 512) steps are cheap, vectorized, and still head for the
#   minimum. The lecture suggests powers of two, "because of the way computer memory is laid
#   out" — we measure that below.

# %%
# %matplotlib inline
from IPython.display import display

from gdlab.lab import figures

# %% [markdown]
# ## The experiment
#
# A logistic regression with two weights (w₁, w₂) on two features of the breast-cancer data,
# so its cost J(w₁, w₂) can be drawn as contours. Same start, same α = 1: batch GD, mini-batch
# GD (size 16) and SGD (size 1).

# %%
data = figures.batch_sgd_paths_data(lr=1.0, batch_size=16)
for label, (path, _, _) in data.paths.items():
    print(f"{label:28s} mean distance from W* over the last 30 steps: "
          f"{figures.spread(path, data.problem.minimum):.3f}")
display(figures.batch_sgd_paths(data))

# %% [markdown]
# ## Do powers of two run faster?
#
# The time per example of a training step at 63, 64, 65 and 127, 128, 129 examples per
# mini-batch, for the default network and a small CNN, measured here, now (a small setting:
# three rounds; `gdlab figures 7` takes more). The title says what this machine measured.

# %%
timing = figures.batch_timing_data(sizes=(63, 64, 65, 127, 128, 129), examples=256,
                                   repeats=3)
display(figures.batch_timing(timing))

# %% [markdown]
# ## Try this
#
# Change the mini-batch size of the middle path (4? 64?), or α: with α = 0.3 SGD still
# wanders, only less far.

# %%
batch_size = 64  # try 4, 16, 64
lr = 0.3  # try 0.1, 1.0, 3.0
data = figures.batch_sgd_paths_data(lr=lr, batch_size=batch_size)
display(figures.batch_sgd_paths(data))
