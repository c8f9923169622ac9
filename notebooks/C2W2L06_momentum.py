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
# # C2W2L06 — Gradient descent with momentum
#
# On a cost that is steep in one direction and shallow in another, gradient descent
# zig-zags across the steep one and crawls along the shallow one. Momentum averages the
# gradients before stepping:
#
#     v_dW := β·v_dW + (1-β)·dW ,   W := W - α·v_dW      (the same for b)
#
# Across the valley the gradients alternate in sign and their average is small; along it they
# agree and the average keeps its size. Hyperparameters: α and β (0.9 is the usual choice).
# The form without (1-β), v := β·v + dW, takes the same path with α scaled by (1-β).

# %%
# %matplotlib inline
import numpy as np
from IPython.display import display

from gdlab.lab import figures, landscape

# the two forms take the same path when α_sum = α·(1-β)
ewa_form = landscape.trajectory("elongated", "momentum", lr=0.5, steps=40, beta=0.9)
sum_form = landscape.trajectory("elongated", "momentum", lr=0.5 * 0.1, steps=40, beta=0.9,
                                form="sum")
print("largest difference between the forms:", np.abs(ewa_form - sum_form).max())

# %% [markdown]
# ## The experiment
#
# The elongated bowl J = 0.01·w₁² + w₂², GD and Momentum with the *same* α = 0.99 — just under
# GD's limit α < 2/λ_max = 1 across the valley — and β = 0.9; then RMSProp and Adam. The title
# and the boxes are measured from the runs: Momentum's swing across the valley is smaller
# than GD's zig-zag, but with the same α it goes no faster along the valley (its gain there
# is the larger α it tolerates), and on a quadratic it still swings: heavy-ball momentum with
# β = 0.9 is underdamped.

# %%
data = figures.oscillation_data(lr=0.99, beta=0.9)
for row in data.rows:
    for name, swing in row.swings.items():
        print(f"{name:9s} α = {row.lr:<5g} {swing}")
display(figures.oscillation(data))

# %% [markdown]
# ## Slide α
#
# GD and Momentum on the bowl with one α for both. Below α = 0.5 GD does not zig-zag at all;
# between 0.5 and 1 it zig-zags, more and more; above 1 it diverges, while Momentum with
# β = 0.9 stays stable up to α = 19.

# %%
try:
    import ipywidgets
except ImportError:
    ipywidgets = None


def draw(lr=0.99):
    paths = {name: landscape.trajectory("elongated", name, lr, 60, **hyper)
             for name, hyper in (("gd", {}), ("momentum", {"beta": 0.9}))}
    for name, path in paths.items():
        if len(path) == 61:
            print(name, landscape.swing(path, k=30))
        else:
            print(name, f"diverged after {len(path) - 1} steps")
    display(landscape.landscape_figure("elongated", paths, {"gd": lr, "momentum": lr}))


if ipywidgets is not None:
    ipywidgets.interact(draw, lr=ipywidgets.FloatSlider(value=0.99, min=0.05, max=3.0,
                                                        step=0.05))
else:
    draw(0.99)

# %% [markdown]
# ## Try this
#
# A smaller β damps faster but averages less; a larger α for Momentum only.

# %%
beta = 0.5  # try 0.5, 0.9, 0.99
display(figures.oscillation(figures.oscillation_data(lr=0.99, beta=beta)))
momentum_lr = 5.0  # GD diverges here; does Momentum?
path = landscape.trajectory("elongated", "momentum", lr=momentum_lr, steps=60, beta=0.9)
print(f"{len(path) - 1} steps, ends at w = {path[-1].round(3)}")
