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
# # C2W2L09 — Learning rate decay
#
# With a constant α, mini-batch gradient descent never settles: near the minimum its noisy
# steps keep it circling. Decaying α shrinks the steps as training goes on. With epoch_num
# counted from 1:
#
#     α = α₀ / (1 + decay_rate·epoch_num)
#     α = 0.95^epoch_num · α₀              (exponential decay)
#     α = k/√epoch_num · α₀                (or k/√t · α₀ with t the mini-batch step)
#     staircase: halve α every few epochs;  manual: watch the run and lower α yourself
#
# With α₀ = 0.2 and decay_rate = 1 the first four epochs train at 0.1, 0.067, 0.05, 0.04.

# %%
# %matplotlib inline
import numpy as np
from IPython.display import display

from gdlab import course, schedules
from gdlab.lab import figures

schedule = schedules.inverse_time(0.2, decay_rate=1)
print([round(schedule(epoch_num), 3) for epoch_num in range(1, 5)])
# the assignment's functions take numpy integers from its loops as well
print(course.update_lr(0.2, np.int64(3), decay_rate=1),
      course.schedule_lr_decay(0.2, np.int64(2500), decay_rate=1))

# %% [markdown]
# ## The experiment
#
# The two-weight logistic regression of lecture 2, mini-batch GD (size 16) from the same start
# with the same mini-batches: constant α = 1 against α = 1/(1 + epoch_num). Right: α per epoch
# of every schedule of `gdlab.schedules`. The title measures how close each run stays to the
# minimum over its last epoch.

# %%
data = figures.learning_rate_decay_data(lr0=1.0, decay_rate=1.0, epochs=8)
print(figures.learning_rate_decay_title(data))
display(figures.learning_rate_decay(data))

# %% [markdown]
# ## Try this
#
# A faster or slower decay; more epochs. Too fast a decay stops the run before it arrives.

# %%
decay_rate = 10.0  # try 0.1, 1, 10
epochs = 8
display(figures.learning_rate_decay(figures.learning_rate_decay_data(decay_rate=decay_rate,
                                                                     epochs=epochs)))
