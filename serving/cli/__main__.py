"""``python -m cnslrisk.serving.cli``: the same as the ``cnslrisk`` command."""

from . import main

main()
