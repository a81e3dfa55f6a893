"""``python -m railtracks``: the same command line as the ``railtracks`` script."""

import sys

from ._cli import main

sys.exit(main())
