"""``python -m zetl_nb`` is the ``zetl-nb`` command."""

import sys

from .cli import main

sys.exit(main())
