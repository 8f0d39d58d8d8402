"""Entry points (CLI, settings) that wire the domain packages together."""
