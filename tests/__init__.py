"""The test suite, a package so its helpers import the same way everywhere: ``tests.stores``,
``tests.bot_harness`` and ``tests.fakediscord`` (the local Discord-compatible server, also used by
``bench/``, run from the repository root as ``python -m bench.<name>``)."""
