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
# # C2W2L05 — Bias correction in exponentially weighted averages
#
# Started at v₀ = 0, the average is too small at first: with β = 0.98,
# v₁ = 0.98·0 + 0.02·θ₁ = 0.02·θ₁. The weights of the first t values sum to 1 - β^t, not 1,
# so dividing by it removes the bias:
#
#     v̂_t = v_t / (1 - β^t)
#
# For small t, 1 - β^t is small and v̂_t much larger than v_t; as t grows β^t → 0 and the two
# agree. Adam corrects both of its averages this way.

# %%
# %matplotlib inline
from IPython.display import display

import gdlab
from gdlab.lab import figures

print(gdlab.EWA(0.98).update(40.0))  # v₁ = 0.02·40 = 0.8
print(gdlab.EWA(0.98, bias_correction=True).update(40.0))  # v̂₁ = 0.8 / (1 - 0.98) = 40
print(gdlab.bias_correction(0.98, 1), gdlab.bias_correction(0.98, 100))  # 1 - β^t

# %% [markdown]
# ## The experiment
#
# The first eight weeks of Seattle's daily highs with β = 0.98: the uncorrected v_t starts
# near 0 and is still far below after weeks; v̂_t tracks the data from day 1.

# %%
temps = figures.seattle_temperatures(2012)
display(figures.bias_correction(temps, beta=0.98, days=56))

# %% [markdown]
# ## Try this
#
# With β = 0.9 the bias is gone within a few weeks; with β = 0.999 it lasts all year.

# %%
beta = 0.9  # try 0.5, 0.9, 0.999
days = 56  # up to 366
display(figures.bias_correction(temps, beta=beta, days=days))
