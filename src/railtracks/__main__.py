"""``python -m railtracks``: the same command line as the ``railtracks`` script."""

import sys

from ._commands.cli import main

sys.exit(main())
