"""``python -m omnitalker ...`` runs the command line (see omnitalker/ui/cli.py)."""

import sys

from omnitalker.ui.cli import main

sys.exit(main())
