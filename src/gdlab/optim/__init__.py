"""Optimizers and their update rules."""

from .optimizers import GD, Adam, Momentum, RMSProp, RuleOptimizer

OPTIMIZERS = {"gd": GD, "momentum": Momentum, "rmsprop": RMSProp, "adam": Adam}

__all__ = ["GD", "Momentum", "RMSProp", "Adam", "RuleOptimizer", "OPTIMIZERS"]
