"""``python -m bwc.api.cli`` runs the ``bwc`` program."""

from bwc.api.cli.main import main

main()
