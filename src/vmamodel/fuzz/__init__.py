"""``vmamodel fuzz``: random call sequences on the model and on the host kernel, compared
after every call; differences shrunk to scenario files that ``vmamodel diff`` reproduces.

- :mod:`~vmamodel.fuzz.generate`: the domains and builders of the calls (shared with the
  differential tests) and the seeded, weighted :class:`~vmamodel.fuzz.generate.CallGenerator`;
- :mod:`~vmamodel.fuzz.lockstep`: one sequence on a fresh model and a fresh oracle child;
- :mod:`~vmamodel.fuzz.shrink`: delta debugging of a failing sequence;
- :mod:`~vmamodel.fuzz.render`: steps as a scenario file;
- :mod:`~vmamodel.fuzz.shard`: the campaign task (one record per seed);
- :mod:`~vmamodel.fuzz.store`: the campaign directory (append-only, resumable);
- :mod:`~vmamodel.fuzz.run`: budgets, shard plans and the run over a vmamodel.campaign backend;
- :mod:`~vmamodel.fuzz.planted`: a planted bug for the tests only.

See docs/fuzz.md.
"""
