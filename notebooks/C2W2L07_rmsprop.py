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
# # C2W2L07 — RMSProp
#
# RMSProp keeps an exponentially weighted average of the *squared* gradients, element by
# element, and divides each step by its root:
#
#     S_dW := β₂·S_dW + (1-β₂)·dW² ,   W := W - α·dW / (√S_dW + ε)
#
# A direction with large gradients (across the valley) gets a large √S and a small step; a
# direction with small gradients (along the valley) a small √S and a relatively large step.
# ε (1e-8) only keeps the division safe.

# %%
# %matplotlib inline
import numpy as np
from IPython.display import display

from gdlab.lab import landscape

# %% [markdown]
# ## The experiment
#
# The elongated bowl J = 0.01·w₁² + w₂²: GD with α = 0.99 (near its limit) against RMSProp
# with α = 0.1 (β₂ = 0.9, gdlab's default). RMSProp's first steps move w₁ and w₂ by about the
# same amount although their gradients differ a hundredfold — the first by α/√(1-β₂) = 0.32,
# since S starts at 0 and this form has no bias correction — so instead of zig-zagging across
# the valley it slides down into it and then along it.

# %%
paths = {"gd": landscape.trajectory("elongated", "gd", lr=0.99, steps=60),
         "rmsprop": landscape.trajectory("elongated", "rmsprop", lr=0.1, steps=60)}
for name, path in paths.items():
    print(f"{name:8s}", landscape.swing(path, k=30))
print("RMSProp's first steps |ΔW| (w₁, w₂):")
print(np.abs(np.diff(paths["rmsprop"][:6], axis=0)).round(3))
display(landscape.landscape_figure("elongated", paths, {"gd": 0.99, "rmsprop": 0.1}))

# %% [markdown]
# ## Try this
#
# A larger α moves faster along the valley but, near the minimum, RMSProp's steps stay about
# α in size until S has decayed: it jitters. β₂ sets how fast S forgets.

# %%
lr = 0.3  # try 0.01, 0.1, 0.3
beta2 = 0.9  # try 0.5, 0.99
path = landscape.trajectory("elongated", "rmsprop", lr=lr, steps=100, beta2=beta2)
print(landscape.swing(path, k=50))
display(landscape.landscape_figure("elongated", {"rmsprop": path}, {"rmsprop": lr}))
