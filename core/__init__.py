"""The ground layer: the Method interface and the method-family registry, media I/O, the asset
manager, atomic writes, progress lines, TOML tables and the command lines' error contract. It
imports nothing else of the project."""
