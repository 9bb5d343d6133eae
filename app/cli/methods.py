"""``python -m thbench methods``: every method the benchmark can run, built-in and plug-in, with
the options its constructor takes, its paper defaults per protocol, whether it trains here and
what ``animate`` offers for it. A plug-in whose package does not import is listed with its
error, and the command still exits 0 (``--strict``: 1)."""

from __future__ import annotations

import argparse
import sys

from thbench.core.families import (
    BUILT_IN,
    available,
    family,
    keyword_options,
    plugin_origin,
)
from thbench.datasets.protocols import PROTOCOLS

INDENT = "    "


def describe(name: str) -> tuple[list[str], bool]:
    """The lines that describe one method, and whether it loads."""
    origin = plugin_origin(name) or "built-in"
    try:
        entry = family(name)
        cls = entry.method_class()
    except (ValueError, TypeError) as error:
        return [f"{name}  [{origin}]  NOT LOADABLE", f"{INDENT}error: {error}"], False
    lines = [f"{name}  [{origin}]  {entry.method}"]
    doc = (cls.__doc__ or "").strip().splitlines()
    if doc:
        lines.append(f"{INDENT}{doc[0]}")
    options, open_ended = keyword_options(cls)
    shown = [p.name if p.default is p.empty else f"{p.name}={p.default!r}"
             for p in options.values() if p.name != "device"] + ["**kwargs"] * open_ended
    lines.append(f"{INDENT}options: {', '.join(shown) or '(none)'}")
    for protocol in PROTOCOLS:
        defaults = cls.protocol_options.get(protocol, {})
        text = ", ".join(f"{k}={v!r}" for k, v in defaults.items()) or "no own defaults"
        lines.append(f"{INDENT}{protocol}: {text}")
    trains = f"trains here (exports {entry.exported})" if entry.trainer else "not trainable here"
    animate = ", ".join(f"--{o}" for o in entry.animate_options) or "no extra options"
    lines.append(f"{INDENT}{trains}; animate: {animate}")
    return lines, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m thbench methods",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="methods to describe (default: all)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a method does not load")
    args = parser.parse_args(argv)
    built_in = {f.name for f in BUILT_IN}
    names = args.names or sorted(available(), key=lambda n: (n not in built_in, n))
    broken = 0
    for name in names:
        lines, loads = describe(name)
        broken += not loads
        print("\n".join(lines))
    if broken:
        print(f"{broken} of {len(names)} methods do not load (see their errors above)",
              file=sys.stderr)
    return 1 if broken and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
