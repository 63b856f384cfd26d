"""The benchmark as a script: ``python benchmarks/bench.py [options]`` is ``vmamodel bench``.

See ``vmamodel bench --help`` and src/vmamodel/bench/.
"""

import sys

from vmamodel.cli.main import cli

if __name__ == "__main__":
    cli(["bench", *sys.argv[1:]], prog_name="vmamodel")
