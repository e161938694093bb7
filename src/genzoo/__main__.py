"""`python -m genzoo ...`: the same as the `genzoo` command."""

import sys

from genzoo.cli import main

sys.exit(main())
