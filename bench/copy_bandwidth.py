# bench/copy_bandwidth.py: device-to-device copy bandwidth (bytes read + written), the memory
# floor's denominator. Needs PyTorch with CUDA.
import json, sys
import torch

n = 1 << 30  # 1 GiB source
src = torch.empty(n, dtype=torch.uint8, device="cuda").random_(0, 255)
dst = torch.empty_like(src)
for _ in range(3):
    dst.copy_(src)
torch.cuda.synchronize()
times = []
for _ in range(20):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    s.record(); dst.copy_(src); e.record(); e.synchronize()
    times.append(s.elapsed_time(e) / 1e3)
times.sort()
t = times[len(times) // 2]
out = {"device": torch.cuda.get_device_name(0), "bytes": 2 * n, "seconds": t, "tb_per_s": 2 * n / t / 1e12}
print(json.dumps(out))
