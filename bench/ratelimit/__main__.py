"""``python -m bench.ratelimit``: the rate-limit scenarios alone."""

import sys

from bench.ratelimit import main

sys.exit(main())
