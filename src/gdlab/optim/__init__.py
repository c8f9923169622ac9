"""Optimizers and their update rules."""

from .optimizers import GD, Adam, AdamW, Momentum, RMSProp, RuleOptimizer

OPTIMIZERS = {"gd": GD, "momentum": Momentum, "rmsprop": RMSProp, "adam": Adam}

__all__ = ["GD", "Momentum", "RMSProp", "Adam", "AdamW", "RuleOptimizer", "OPTIMIZERS"]
