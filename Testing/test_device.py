import pytest
import torch

from cmrlib import InputError
from cmrlib.device import pick_device, run_with_cpu_fallback


def test_pick_device(monkeypatch):
    monkeypatch.setenv("CMR_DEVICE", "cpu")
    assert pick_device().type == "cpu"
    monkeypatch.delenv("CMR_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type in (expected, "mps")
    with pytest.raises(InputError, match="unknown device"):
        pick_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU fallback")
def test_gpu_request_without_gpu_warns_and_uses_cpu():
    with pytest.warns(UserWarning, match="no CUDA GPU"):
        assert pick_device("cuda").type == "cpu"


def test_cuda_oom_retries_on_cpu():
    calls = []

    def work(device):
        calls.append(device.type)
        if device.type == "cuda":
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return 42

    with pytest.warns(UserWarning, match="retrying on CPU"):
        result, used = run_with_cpu_fallback(work, torch.device("cuda"))
    assert (result, used.type, calls) == (42, "cpu", ["cuda", "cpu"])
    with pytest.raises(RuntimeError, match="other"):
        run_with_cpu_fallback(lambda d: (_ for _ in ()).throw(RuntimeError("other")), torch.device("cuda"))
