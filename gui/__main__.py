"""``python -m gui``: the rack window."""
import sys

from .app import main

sys.exit(main())
