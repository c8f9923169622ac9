"""``python -m gdlab.cli``: the ``gdlab`` command."""

import sys

from . import main

if __name__ == "__main__":  # not when multiprocessing's spawn imports this module
    sys.exit(main())
