# Run by bench/notebook_as_script.py --before: make a newer NVIDIA GPU answer like a T4 (compute
# capability 7.5, 15 GiB), so that notebook 10 takes its T4 path: float16 autocast with a
# GradScaler, the t4 preset with two micro-batches a step, the small speed-ladder batch. The
# arithmetic is a T4's; the speed is not (the name says "emulated", which has no MFU peak).
# torch.compile's code generator asks the capability too and builds kernels the real GPU
# cannot load, so compiling fails here: the notebook's fall-back to no compiling runs.
import types

import torch

_real = torch.cuda.get_device_properties(0)
_t4 = types.SimpleNamespace(name="emulated compute capability 7.5", major=7, minor=5,
                            total_memory=15 * 2**30, multi_processor_count=_real.multi_processor_count)
torch.cuda.get_device_properties = lambda device=None: _t4
torch.cuda.get_device_capability = lambda device=None: (7, 5)
torch.cuda.get_device_name = lambda device=None: _t4.name
print(f"emulating a T4 on {_real.name}: capability 7.5, 15 GiB")
