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
# # C2W2L03 — Exponentially weighted averages
#
# Given a series θ₁, θ₂, … (a temperature each day, a mini-batch cost each step), the
# exponentially weighted average is
#
#     v₀ = 0,   v_t = β·v_{t-1} + (1-β)·θ_t
#
# and v_t averages over about 1/(1-β) of the last values: β = 0.9 over about 10 days,
# β = 0.98 over about 50 (smoother, but later: it lags), β = 0.5 over about 2 (noisy).
# The same average is the heart of Momentum, RMSProp and Adam.

# %%
# %matplotlib inline
from IPython.display import display

import gdlab
from gdlab.lab import figures

average = gdlab.EWA(0.9)
print(average.update(10.0))  # 0.9·0 + 0.1·10 = 1.0
print(average.update(20.0))  # 0.9·1 + 0.1·20 = 2.9
print(f"window 1/(1-β) = {average.window:.0f} steps")

# %% [markdown]
# ## The experiment
#
# A year of Seattle's daily highs (shipped inside the `vega_datasets` package) and their
# averages with β = 0.9, 0.98 and 0.5 (bias-corrected, lecture 5). The title measures how
# smooth each average is (its mean day-to-day change) and how late (its lag behind the data).

# %%
temps = figures.seattle_temperatures(2012)
for beta in (0.5, 0.9, 0.98):
    print(beta, figures.smoothness(temps.theta, beta))
display(figures.ewa_temperatures(temps))

# %% [markdown]
# ## Slide β
#
# With ipywidgets installed, a slider redraws the average for each β; without it, one
# static figure.

# %%
try:
    import ipywidgets
except ImportError:
    ipywidgets = None


def draw(beta=0.9):
    fig = figures.smoothing_figure(temps.theta, [beta], name="daily high (°C)",
                                   xlabel="day t", window_unit="days")
    display(fig)


if ipywidgets is not None:
    ipywidgets.interact(draw, beta=ipywidgets.FloatSlider(value=0.9, min=0.0, max=0.995,
                                                          step=0.005))
else:
    draw(0.9)

# %% [markdown]
# ## Try this
#
# Average another year (2012 to 2015), or with other β: how late is β = 0.995?

# %%
year = 2014  # 2012 … 2015
betas = (0.5, 0.9, 0.995)
display(figures.ewa_temperatures(figures.seattle_temperatures(year), betas=betas))
