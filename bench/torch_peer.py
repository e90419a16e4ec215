#!/usr/bin/env python3
"""bench/torch_peer.py: the PyTorch eager peer of `bun run bench`, and the copy-bandwidth floor.

Reads one JSON request on stdin, prints one JSON object on stdout (progress goes to stderr).
Always exits 0 with {"error": ...} when torch or CUDA is missing, so the caller can go on.

Request (every field optional):
  {"probe": false,            # true: report versions only, measure nothing
   "copy": true,              # measure device-to-device copy bandwidth first
   "copy_bytes": 1073741824,
   "repeats": 15, "warmup": 3,
   "modes": ["graph", "eager"],
   "seed": 1,
   "deadline_s": 280,         # stop starting jobs after this many seconds (results so far are kept)
   "jobs": [{"key": "E256-k8-T4096-bf16", "experts": 256, "topk": 8, "tokens": 4096,
             "dtype": "bf16", "bias": false, "renormalize": true, "scale": 1.0,
             "slots": 32, "calls": 32, "eager_calls": 32}]}
Reply: JSON Lines on stdout, one object per line, so that a caller that has to kill this script
keeps what it already got:
  {"type": "info", "torch": "2.11.0", "cuda": "12.8", "python": "3.12.3", "device": "NVIDIA H200",
   "l2_bytes": 52428800}
  {"type": "copy", "bytes": 2147483648, "seconds": 0.0005, "tb_per_s": 4.0}     (or "error")
  {"type": "result", "key": ..., "graph": {"us": 12.3, "samples_us": [...], "calls": 32, "slots": 32},
   "eager": {...}}                                          (or "key" + "error"), one per job
  {"type": "done", "truncated": false, "elapsed_s": 42.0}
When torch or CUDA is missing, or the request is bad, the only line is {"error": "..."} (exit 0).

Routing is written the way a user writes it in eager PyTorch (DeepSeek-V3 style):
  scores = torch.sigmoid(x.float()); choice = scores + bias; idx = topk(choice, k).indices;
  w = scores.gather(1, idx); w = w / w.sum(-1, keepdim=True); w = w * scale
Timing: "graph" captures `calls` routing calls (inputs rotating over `slots` copies) in one CUDA
graph and times back-to-back replays with CUDA events; "eager" times `eager_calls` plain eager
calls between events (Python dispatch included, as a user sees it). Samples are microseconds per
call; "us" is their median. Indices stay int64 as torch.topk returns them (no conversion kernel).

For testing without a GPU: `--device cpu` runs the eager mode with wall-clock timing.
"""
import json
import sys
import time


def emit(obj):
    sys.stdout.write(json.dumps(obj))
    sys.stdout.write("\n")
    sys.stdout.flush()


def log(msg):
    sys.stderr.write(f"[torch_peer] {msg}\n")
    sys.stderr.flush()


def median(xs):
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return None
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def main():
    t0 = time.time()
    device = "cuda"
    argv = sys.argv[1:]
    if "--device" in argv:
        i = argv.index("--device")
        device = argv[i + 1] if i + 1 < len(argv) else "cuda"
    raw = "" if sys.stdin.isatty() else sys.stdin.read()
    try:
        req = json.loads(raw) if raw.strip() else {}
    except Exception as e:  # noqa: BLE001
        emit({"error": f"bad request JSON: {e}"})
        return 0
    py = sys.version.split()[0]
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        emit({"error": f"torch is not importable: {e}", "python": py})
        return 0
    info = {"type": "info", "torch": torch.__version__, "cuda": torch.version.cuda, "python": py}
    if device == "cuda" and not torch.cuda.is_available():
        emit({"error": "torch sees no CUDA device", "torch": info["torch"], "cuda": info["cuda"], "python": py})
        return 0
    dev = torch.device(device)
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info["device"] = props.name
        info["l2_bytes"] = getattr(props, "L2_cache_size", None)
    else:
        info["device"] = "cpu"
        info["l2_bytes"] = None
    emit(info)
    if req.get("probe"):
        emit({"type": "done", "truncated": False, "elapsed_s": time.time() - t0})
        return 0

    repeats = int(req.get("repeats", 15))
    warmup = int(req.get("warmup", 3))
    modes = req.get("modes", ["graph", "eager"])
    seed = int(req.get("seed", 1))
    deadline = float(req.get("deadline_s", 1e9))
    jobs = req.get("jobs", [])
    cuda = device == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    truncated = False

    # Copy bandwidth: the memory floor's denominator (bytes read + bytes written).
    if req.get("copy", True) and cuda:
        try:
            n = int(req.get("copy_bytes", 1 << 30))
            src = torch.empty(n, dtype=torch.uint8, device=dev).random_(0, 255)
            dst = torch.empty_like(src)
            for _ in range(3):
                dst.copy_(src)
            sync()
            times = []
            for _ in range(20):
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s.record()
                dst.copy_(src)
                e.record()
                e.synchronize()
                times.append(s.elapsed_time(e) / 1e3)
            t = median(times)
            emit({"type": "copy", "bytes": 2 * n, "seconds": t, "tb_per_s": 2 * n / t / 1e12})
            del src, dst
            torch.cuda.empty_cache()
            log(f"copy bandwidth {2 * n / t / 1e12:.2f} TB/s (read + write)")
        except Exception as e:  # noqa: BLE001
            emit({"type": "copy", "error": f"{type(e).__name__}: {e}"})

    dtypes = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)

    def route(x, bias, k, renormalize, scale):
        scores = torch.sigmoid(x.float())
        choice = scores + bias if bias is not None else scores
        idx = torch.topk(choice, k, dim=-1).indices
        w = scores.gather(1, idx)
        if renormalize:
            w = w / w.sum(dim=-1, keepdim=True)
        if scale != 1.0:
            w = w * scale
        return w, idx

    def timed(work, calls):
        """Per-call microseconds of `repeats` samples; work() enqueues `calls` calls."""
        if cuda:
            ev = [torch.cuda.Event(enable_timing=True) for _ in range(repeats + 1)]
            ev[0].record()
            for r in range(repeats):
                work()
                ev[r + 1].record()
            torch.cuda.synchronize()
            return [ev[r].elapsed_time(ev[r + 1]) * 1000.0 / calls for r in range(repeats)]
        samples = []
        for _ in range(repeats):
            s = time.perf_counter()
            work()
            samples.append((time.perf_counter() - s) * 1e6 / calls)
        return samples

    last_log = 0.0
    for ji, job in enumerate(jobs):
        if time.time() - t0 > deadline:
            truncated = True
            log(f"deadline reached after {ji}/{len(jobs)} jobs")
            break
        key = job.get("key", str(ji))
        res = {"type": "result", "key": key}
        try:
            E, k, T = int(job["experts"]), int(job["topk"]), int(job["tokens"])
            dt = dtypes[job.get("dtype", "bf16")]
            renorm = bool(job.get("renormalize", True))
            scale = float(job.get("scale", 1.0))
            slots = max(1, int(job.get("slots", 1)))
            calls = max(1, int(job.get("calls", slots)))
            eager_calls = max(1, int(job.get("eager_calls", calls)))
            xs = [(torch.randn(T, E, generator=gen, device=dev) * 2).to(dt) for _ in range(slots)]
            bias = (torch.rand(E, generator=gen, device=dev) - 0.5) * 0.6 if job.get("bias") else None

            def eager_batch(n=calls):
                for i in range(n):
                    route(xs[i % slots], bias, k, renorm, scale)

            if "graph" in modes:
                if not cuda:
                    res["graph"] = {"error": "graph replay needs CUDA"}
                else:
                    side = torch.cuda.Stream()
                    side.wait_stream(torch.cuda.current_stream())
                    with torch.cuda.stream(side):
                        eager_batch()  # warm-up before capture, as torch.cuda.graphs asks
                    torch.cuda.current_stream().wait_stream(side)
                    g = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(g):
                        eager_batch()
                    for _ in range(max(1, warmup)):
                        g.replay()
                    samples = timed(g.replay, calls)
                    res["graph"] = {"us": median(samples), "samples_us": samples, "calls": calls, "slots": slots}
                    del g
            if "eager" in modes:
                for _ in range(max(1, warmup)):
                    eager_batch(eager_calls)
                sync()
                samples = timed(lambda: eager_batch(eager_calls), eager_calls)
                res["eager"] = {
                    "us": median(samples),
                    "samples_us": samples,
                    "calls": eager_calls,
                    "slots": min(slots, eager_calls),
                }
            del xs, bias
        except Exception as e:  # noqa: BLE001
            res = {"type": "result", "key": key, "error": f"{type(e).__name__}: {e}"}
            if cuda:
                try:
                    torch.cuda.synchronize()
                    torch.cuda.empty_cache()
                except Exception:  # noqa: BLE001
                    pass
        emit(res)
        now = time.time()
        if now - last_log > 15 or ji + 1 == len(jobs) or (ji + 1) % max(1, len(jobs) // 10) == 0:
            last_log = now
            g_us = res.get("graph", {}).get("us")
            log(f"{ji + 1}/{len(jobs)} {key}" + (f" graph {g_us:.2f} us" if isinstance(g_us, float) else ""))
    emit({"type": "done", "truncated": truncated, "elapsed_s": time.time() - t0})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # noqa: BLE001  (never leave the caller without JSON)
        emit({"error": f"torch_peer crashed: {type(e).__name__}: {e}"})
        sys.exit(0)
    finally:
        sys.stdout.flush()
