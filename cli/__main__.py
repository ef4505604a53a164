"""``python -m cnslrisk.cli``: the same as the ``cnslrisk`` command."""

from . import main

main()
