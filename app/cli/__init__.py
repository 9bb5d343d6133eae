"""The command line, ``python -m thbench <command>``: one module per command group."""
