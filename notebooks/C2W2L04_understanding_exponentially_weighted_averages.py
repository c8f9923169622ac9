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
# # C2W2L04 — Understanding exponentially weighted averages
#
# Unrolled, the average is a weighted sum of all the past values:
#
#     v_t = (1-β)·θ_t + (1-β)·β·θ_{t-1} + (1-β)·β²·θ_{t-2} + …
#
# The weights (1-β)·β^k decay exponentially with the age k. They have fallen to about 1/e of
# the newest weight after k = 1/(1-β) steps, because β^{1/(1-β)} ≈ 1/e: that is the sense in
# which v_t "averages over about 1/(1-β) values". Computing it needs one number of memory
# and one line per step, which is why deep learning uses it rather than a moving window.

# %%
# %matplotlib inline
import math

import numpy as np
from IPython.display import display
from matplotlib.figure import Figure

import gdlab

for beta in (0.9, 0.98):
    print(f"β = {beta}: β^(1/(1-β)) = {beta ** (1 / (1 - beta)):.4f}, 1/e = {1 / math.e:.4f}")

# %% [markdown]
# ## The weights, measured
#
# Feed the average one impulse (θ₁ = 1, then zeros): what comes out, v_t, is the weight the
# average gives to a value t - 1 steps old. It equals (1-β)·β^{t-1}.

# %%
steps = 120
impulse = np.zeros(steps)
impulse[0] = 1.0
fig = Figure(figsize=(8, 3.6), layout="constrained")
ax = fig.add_subplot()
for beta in (0.9, 0.98):
    weights = gdlab.ewa(impulse, beta)
    assert np.allclose(weights, (1 - beta) * beta ** np.arange(steps))
    window = round(1 / (1 - beta))
    ax.plot(np.arange(steps), weights, label=f"β = {beta}: weight of a value k steps old")
    ax.axvline(window, linestyle=":", color="gray")
    print(f"β = {beta}: after {window} steps the weight is "
          f"{weights[window] / weights[0]:.3f} of the newest one")
ax.set_xlabel("age k (steps)")
ax.set_ylabel("weight (1-β)·β^k")
ax.legend()
display(fig)

# %% [markdown]
# ## Try this
#
# How much of the total weight lies within the window 1/(1-β)? Try β = 0.5 and 0.99.

# %%
beta = 0.99  # try 0.5, 0.9, 0.99
weights = gdlab.ewa(np.r_[1.0, np.zeros(5000)], beta)
window = round(1 / (1 - beta))
print(f"share of the weight in the last {window} values: {weights[:window].sum():.3f}")
