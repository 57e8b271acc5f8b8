"""`python -m swapdrop_cli`: the same as the `swapdrop` console script."""

import sys

from swapdrop_cli.app import main

sys.exit(main())
