"""The benchmark as a script: ``python benchmarks/bench.py [options]`` is ``vmamodel bench``.

See ``vmamodel bench --help`` and src/vmamodel/bench.py.
"""

from vmamodel.bench import main

if __name__ == "__main__":
    main()
