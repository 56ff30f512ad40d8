"""``python -m shipshape.spa precompress DIR`` (:func:`shipshape.spa_build.main`).

Its own module, so that running it does not execute :mod:`shipshape.spa` a
second time: the package imports that module, and ``-m`` on a module the
package already imported warns that it "may result in unpredictable behaviour".
"""

import sys

from shipshape.spa_build import main

sys.exit(main())
