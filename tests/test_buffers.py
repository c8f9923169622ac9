"""The flat buffers' memory (gdlab.optim.buffers): large CPU buffers on 2 MiB pages of their own
mapping, freed with their tensor; optimizers over such buffers step exactly as per tensor."""

import copy
import gc
import io
import mmap
import pathlib
import re

import pytest
import torch

from gdlab import Adam, Momentum, RMSProp
from gdlab.optim import buffers

LARGE = buffers.LARGE_PAGE_MIN_BYTES // 4 + 1000  # float32 elements: just over the threshold
linux_only = pytest.mark.skipif(not hasattr(mmap, "MADV_HUGEPAGE"),
                                reason="madvise(MADV_HUGEPAGE) is Linux's")


def _mapping_of(address: int) -> dict | None:
    """The /proc/self/smaps entry (its fields in kB) of the mapping holding ``address``."""
    entry = None
    for line in pathlib.Path("/proc/self/smaps").read_text().splitlines():
        bounds = re.match(r"([0-9a-f]+)-([0-9a-f]+) ", line)
        if bounds:
            if entry is not None:
                return entry
            if int(bounds[1], 16) <= address < int(bounds[2], 16):
                entry = {"range": (int(bounds[1], 16), int(bounds[2], 16))}
        elif entry is not None and line.endswith(" kB"):
            name, value = line.split(":")
            entry[name] = int(value.split()[0])
    return entry


def _huge_pages_on() -> bool:
    try:
        mode = pathlib.Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False
    return "[never]" not in mode


@pytest.mark.parametrize("device_numel", [("cpu", 1000), ("meta", LARGE)])
def test_small_or_non_cpu_buffers_are_ordinary_zeros(device_numel):
    device, numel = device_numel
    buffer = buffers.zeros(numel, torch.float64, device)
    assert buffer.shape == (numel,) and buffer.dtype == torch.float64
    assert buffer.device.type == device
    if device == "cpu":
        assert buffer.eq(0).all()


@linux_only
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_large_cpu_buffer_starts_on_a_huge_page_and_is_zero(dtype):
    numel = buffers.LARGE_PAGE_MIN_BYTES // dtype.itemsize + 1000
    buffer = buffers.zeros(numel, dtype, "cpu")
    assert buffer.shape == (numel,) and buffer.dtype == dtype and buffer.is_contiguous()
    assert buffer.data_ptr() % buffers.HUGE_PAGE == 0
    assert buffer.untyped_storage().nbytes() == numel * dtype.itemsize  # no slack in storage
    assert buffer.eq(0).all()
    buffer[-1] = 3
    buffer.add_(1)
    assert buffer[0] == 1 and buffer[-1] == 4


@linux_only
@pytest.mark.skipif(not _huge_pages_on(), reason="transparent huge pages are off here")
def test_large_cpu_buffer_is_backed_by_huge_pages():
    buffer = buffers.zeros(4 * LARGE, torch.float32, "cpu")
    buffer.fill_(1.0)  # touched: its pages exist now
    mapping = _mapping_of(buffer.data_ptr())
    assert mapping is not None and mapping["AnonHugePages"] >= 2048


@linux_only
def test_large_cpu_buffer_lives_with_its_tensor_and_is_unmapped_after():
    buffer = buffers.zeros(LARGE, torch.float32, "cpu")
    view = buffer[10:20]
    address = buffer.data_ptr()
    del buffer
    gc.collect()
    view.fill_(2.0)  # the mapping is kept alive by any view of the buffer
    assert view.sum() == 20 and _mapping_of(address) is not None
    del view
    gc.collect()
    mapping = _mapping_of(address)
    assert mapping is None or mapping["Size"] * 1024 < LARGE * 4  # its own mapping is gone


def _train(cls, flat, steps=6, save_at=3):
    """A weight large enough for a 2 MiB-page buffer and a small bias, trained on seeded
    gradients; at ``save_at`` the optimizer's state goes through torch.save/load into a new one."""
    generator = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(LARGE, generator=generator)),
              torch.nn.Parameter(torch.randn(7, generator=generator))]
    optimizer = cls(params, lr=0.01, flat=flat)
    grads = torch.Generator().manual_seed(1)
    for step in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=grads)
        optimizer.step()
        if step == save_at:
            saved = io.BytesIO()
            torch.save(optimizer.state_dict(), saved)
            saved.seek(0)
            optimizer = cls(params, lr=0.01, flat=flat)
            optimizer.load_state_dict(torch.load(saved))
    return params, optimizer


@pytest.mark.parametrize("cls", [Adam, Momentum, RMSProp])
def test_optimizer_over_a_huge_page_buffer_equals_the_per_tensor_path(cls):
    ours, optimizer = _train(cls, flat=True)
    reference, _ = _train(cls, flat=False)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        assert optimizer._flat_groups[0].W.data_ptr() % buffers.HUGE_PAGE == 0
    for p, q in zip(ours, reference, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6 * q.abs().max().item())
    copied = copy.deepcopy(optimizer)  # a copy continues as the original does
    for opt in (optimizer, copied):
        for p in opt.param_groups[0]["params"]:
            p.grad = torch.ones_like(p)
        opt.step()
    for p, q in zip(optimizer.param_groups[0]["params"], copied.param_groups[0]["params"],
                    strict=True):
        assert torch.equal(p, q)
