"""``python -m api.cli`` runs the ``bwc`` program."""

from api.cli.main import main

main()
