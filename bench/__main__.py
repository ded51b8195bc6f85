"""python -m bench: what scripts/bench runs."""

import sys

from bench.harness.cli import main

sys.exit(main())
