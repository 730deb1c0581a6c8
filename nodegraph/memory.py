"""Refuse a job that cannot fit before allocating it: ray, voxel and view nodes estimate their bytes and call
:func:`ensure_fits`, which stops the node with both figures instead of letting the device run out mid-way.
"""
from __future__ import annotations

import os

import torch


def available_bytes(device: torch.device) -> int:
    """Memory a new allocation may use on ``device``: free GPU memory, or the host's available RAM."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + cached)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def fmt_bytes(n: float) -> str:
    """``n`` bytes for a message: "512 B", "1.5 GiB"."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def ensure_fits(ctx, field: str, needed: float, what: str, hint: str = "") -> None:
    """Stop the node with the estimate when ``needed`` bytes exceed what ``ctx.device`` has available."""
    have = available_bytes(ctx.device)
    if needed > have:
        ctx.fail(field, f"{what} needs about {fmt_bytes(needed)} but {ctx.device} has {fmt_bytes(have)} "
                        f"available{'; ' + hint if hint else ''}")
