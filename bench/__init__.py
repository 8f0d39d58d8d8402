"""Benchmarks and load tests, not unit tests. The ones that use the test helpers (``tests.fakediscord``,
``tests.bot_harness``) run from the repository root as modules: ``python -m bench.bot_load``."""
