"""The report of ``gdlab compare`` and ``gdlab fit``: figures and one self-contained HTML page.

    from gdlab.report import write_report
    path = write_report("runs/compare", runs, dataset, config={"epochs": 100, ...})

:mod:`gdlab.report.figures` builds each figure as a :class:`matplotlib.figure.Figure`;
:mod:`gdlab.report.style` holds the palette and line styles they share.
"""

from . import figures, style
from .html import write_report

__all__ = ["write_report", "figures", "style"]
