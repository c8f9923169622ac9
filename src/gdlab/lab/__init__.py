"""Experiments on gdlab's own optimizers: the course reproduction, comparisons, figures.

Each experiment lives in its own module, e.g. :mod:`gdlab.lab.course` (the course's
"Optimization Methods" assignment, reproduced to the printed digit).
"""
