"""Driver models of the "mm: expand mmap_prepare functionality and usage" series.

One module per driver, each with its new (``mmap_prepare``) form and, where the behaviour
differs, its old (``.mmap``) form, plus a function creating its File:

- :mod:`.hpet`, :mod:`.mtdchar`, :mod:`.open_dice`, :mod:`.stm`, :mod:`.vme_user`,
  :mod:`.hv_vmbus`, :mod:`.uio`, :mod:`.tcmu`, :mod:`.afs` - the series' conversions;
- :mod:`.refcount_bad`, :mod:`.refcount_good` - the teaching pair;
- :mod:`.stacked` - a backing-file style legacy ``.mmap`` forwarding to an inner file;
- :mod:`.ledger` - the acquire/release bookkeeping every counting driver uses;
- :mod:`.devices` - the devices scenario files open by path (``open("/dev/hpet")``).
"""
