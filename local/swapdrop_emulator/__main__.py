"""`python -m swapdrop_emulator`: the same as the `swapdrop-emulator` console script."""

from swapdrop_emulator.cli import main

raise SystemExit(main())
