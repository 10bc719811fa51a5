"""``python -m cli …`` is the `comanda` command."""

import sys

from cli.main import main

sys.exit(main())
