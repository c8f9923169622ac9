"""Where the flat buffers live: large ones on the CPU on 2 MiB pages.

A step streams its buffers through memory once. Over 4 KiB pages a 100 MB buffer spans 25,000
of them: the processor's table of address translations (TLB) misses all along the buffer and is
left empty for whatever runs next. On Linux a CPU buffer of at least ``LARGE_PAGE_MIN_BYTES`` is
mapped on its own and marked for transparent huge pages (``madvise(MADV_HUGEPAGE)``; torch does
the same for every allocation under ``THP_MEM_ALLOC_ENABLE=1``): a step over 25.6M parameters
took 1–15 % less time (median 7 %), one over 2000 small tensors 5–10 % (docs/speed.md). It
costs at most one page more memory a buffer. Elsewhere (other systems, GPUs, smaller buffers) a
buffer is made by ``torch.zeros``; a kernel without huge pages gives the mapping ordinary ones.
"""

from __future__ import annotations

import mmap

import torch

#: the page size the buffers are aligned to
HUGE_PAGE = 1 << 21
#: CPU buffers of at least this many bytes are placed on 2 MiB pages
LARGE_PAGE_MIN_BYTES = 2 * HUGE_PAGE


def zeros(numel: int, dtype: torch.dtype, device) -> torch.Tensor:
    """A zero-filled 1-d buffer of ``numel`` elements; a large one on the CPU (Linux) starts on
    a 2 MiB boundary of its own anonymous mapping, marked for huge pages before it is touched."""
    nbytes = numel * dtype.itemsize
    if (torch.device(device).type != "cpu" or nbytes < LARGE_PAGE_MIN_BYTES
            or not hasattr(mmap, "MADV_HUGEPAGE")):
        return torch.zeros(numel, dtype=dtype, device=device)
    # private and anonymous: zero-filled memory that transparent huge pages can back
    mapping = mmap.mmap(-1, nbytes + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        mapping.madvise(mmap.MADV_HUGEPAGE)
    except OSError:  # a kernel without transparent huge pages: ordinary pages
        pass
    address = torch.frombuffer(mapping, dtype=torch.uint8, count=1).data_ptr()
    # the tensor keeps the mapping alive; freeing it unmaps the memory
    return torch.frombuffer(mapping, dtype=dtype, count=numel, offset=-address % HUGE_PAGE)
