"""This process's resident memory, read from ``/proc/self`` (Linux): the profilers' peak-memory
columns."""

from __future__ import annotations


def status_kib(key: str) -> int | None:
    """A ``/proc/self/status`` entry in KiB (``VmRSS``, ``VmHWM``), None where unavailable."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process; False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return status_kib("VmHWM") is not None
