"""Shared test setup.

The tests use tiny tensors, where torch's intra-op thread pool only adds overhead — and on a
busy two-core machine its spinning threads make a small ``fit`` up to 100x slower. One thread
keeps the whole suite fast and the numbers deterministic.
"""

from __future__ import annotations

import inspect

import pytest
import torch

import gdlab

torch.set_num_threads(1)

# The optimizers' flat-buffer fast path, where present, must behave like the reference path:
# tests that use the ``make`` fixture run with both.
HAS_FLAT = "flat" in inspect.signature(gdlab.GD).parameters
FLAT_VALUES = [True, False] if HAS_FLAT else [None]


@pytest.fixture(params=FLAT_VALUES,
                ids=lambda flat: {True: "flat", False: "per-tensor", None: "default"}[flat])
def make(request):
    """``make(cls, params, **kwargs)`` builds a gdlab optimizer on the path under test."""
    flat = request.param

    def make(cls, params, **kwargs):
        if flat is not None:
            kwargs["flat"] = flat
        return cls(params, **kwargs)

    make.flat = flat
    return make
