"""``python -m omnitalker ...`` runs the command line (see omnitalker/cli.py)."""

import sys

from omnitalker.cli import main

sys.exit(main())
