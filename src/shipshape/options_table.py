"""``python -m shipshape.options_table``: every setting's row, for docs/configuration.md.

Its own module, so that running it does not execute :mod:`shipshape.options` a
second time: the package imports that module, and ``-m`` on a module the
package already imported warns that it "may result in unpredictable behaviour".
"""

from shipshape.extension import ALL_OPTIONS
from shipshape.options import markdown_table

if __name__ == "__main__":
    print(markdown_table(ALL_OPTIONS), end="")
