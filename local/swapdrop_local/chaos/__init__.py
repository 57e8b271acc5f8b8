"""The chaos suite: scenarios on the local stack, each with figures and invariants.

`python -m swapdrop_local.chaos` (`make chaos`) runs the full sizes and prints one table;
tests/chaos runs the small sizes under pytest. A scenario never raises for a broken
invariant: it returns `Figures` whose `violations` say which invariant broke, with figures.
Everything stays on 127.0.0.1, and every loop has a deadline.
"""

from swapdrop_local.chaos.harness import Figures
from swapdrop_local.chaos.scenarios import FULL, SCENARIOS, SMALL, Size

__all__ = ["FULL", "SCENARIOS", "SMALL", "Figures", "Size"]
