"""``rooflens calibrate``: measure the machine it runs on and write a hardware profile.

Measured with PyTorch, on the CPU or a CUDA GPU:

1. **Roofs.** Streaming memory bandwidth (a reduction and a copy over buffers far larger than the
   last cache level; the better of the two) and the matrix-multiply peak per dtype (large GEMMs).
2. **Efficiency tables** (the model is in ``hardware/efficiency.py``): at token counts ``T`` from 1
   to thousands, ``eff = ideal / (measured - overhead)``, median over shapes, for
   - matmuls with the weight shapes of LLM layers (decode is ``T`` = batch, prefill ``T`` = tokens),
     one table per reduction dimension K (a GEMV's speed grows with its row length);
   - fused attention (SDPA) at decode and prefill shapes;
   - each element-wise *implementation class*, written the way eager PyTorch models (Hugging Face
     ``transformers``) write it: ``rmsnorm``, ``layernorm``, ``rope``, ``act:silu:gated``,
     ``act:gelu_new`` (an 8-kernel chain), ``add``, ``embedding``... Their ideal is rooflens's one-pass
     operator, so the table also captures how many passes the implementation really makes.
   Inputs rotate through pools several times the cache size, so every call streams from memory as a
   forward pass does.
3. **Overheads.** Each class at a tiny size, where only module-call, dispatch and launch costs remain;
   and, when ``transformers`` is installed, the fixed host cost of a whole decoder layer and of a pass
   of each model family, from decode steps of tiny (hidden size 64) models with 1 and 5 layers.

FLOPs and bytes of every sample come from rooflens's own operator formulas, so each table measures
the shortfall from exactly the ideal the analysis reports. Nothing here runs a whole model: the
profile can be checked against real model runs (``rooflens validate``) without having been fitted to
them.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import RooflensError
from .hf import TORCH_DTYPES

DTYPE_BITS = {"fp32": 32, "fp16": 16, "bf16": 16}
ACTIVATIONS = ("silu:gated", "gelu_pytorch_tanh:gated", "gelu_new", "gelu", "relu")


@dataclass(frozen=True)
class Sample:
    """One micro-benchmark: an op of ``kind`` (or implementation class) over ``tokens`` tokens."""

    kind: str  # "matmul", "attention" or an element-wise class such as "rmsnorm"
    tokens: float
    inner: int  # K of a matmul, else 0
    flops: float
    bytes: float
    seconds: float


@dataclass(frozen=True)
class Plan:
    """What to measure. ``quick`` plans take seconds (tests); full plans a minute or two."""

    tokens: tuple[int, ...]
    shapes: tuple[tuple[int, int], ...]  # (K, N) of the weight matrices
    attention: tuple[tuple[int, int], ...]  # (q, context) per sequence
    heads: tuple[int, int, int]  # query heads, KV heads, head dim
    hidden: int  # width of norms, adds, embeddings
    intermediate: int  # width of activations
    bandwidth_bytes: int
    peak_size: int
    pool_bytes: int
    repeat: int


def plan_for(device: str, quick: bool) -> Plan:
    if quick:
        return Plan(
            tokens=(1, 8, 64),
            shapes=((256, 256), (256, 512)),
            attention=((1, 128), (64, 64)),
            heads=(4, 2, 32),
            hidden=128,
            intermediate=256,
            bandwidth_bytes=32 << 20,
            peak_size=256,
            pool_bytes=16 << 20,
            repeat=3,
        )
    if device.startswith("cuda"):
        return Plan(
            tokens=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
            shapes=((2048, 8192), (4096, 4096), (4096, 14336), (8192, 2048), (8192, 8192), (14336, 4096)),
            attention=((1, 512), (1, 2048), (1, 8192), (512, 512), (2048, 2048)),
            heads=(32, 8, 128),
            hidden=4096,
            intermediate=14336,
            bandwidth_bytes=4 << 30,
            peak_size=8192,
            pool_bytes=1 << 30,
            repeat=10,
        )
    return Plan(
        tokens=(1, 2, 4, 8, 16, 64, 256, 1024),
        shapes=((1024, 4096), (2048, 2048), (2048, 8192), (4096, 1024), (4096, 4096), (8192, 2048)),
        attention=((1, 256), (1, 1024), (1, 4096), (256, 256), (1024, 1024)),
        heads=(16, 8, 64),
        hidden=2048,
        intermediate=8192,
        bandwidth_bytes=1 << 30,
        peak_size=2048,
        pool_bytes=384 << 20,
        repeat=5,
    )


# --- timing -------------------------------------------------------------------------------------


class Timer:
    """Wall time per call over back-to-back calls, synchronising a CUDA device around them."""

    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        self.cuda = device.startswith("cuda")

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def now(self) -> float:
        """Wall time after the device has finished the work queued so far."""
        self.sync()
        return time.perf_counter()

    def per_call(self, fn: Callable[[int], object], calls: int, repeat: int) -> float:
        """Median over ``repeat`` rounds of (round time / calls); ``fn(i)`` makes call ``i``."""
        with self.torch.inference_mode():
            fn(0)
            rounds = []
            for _ in range(repeat):
                start = self.now()
                for i in range(calls):
                    fn(i)
                rounds.append((self.now() - start) / calls)
        return statistics.median(rounds)


def _rotating(fn: Callable, *pools: list) -> Callable[[int], object]:
    """fn applied to the i-th element (cyclically) of each pool: call i touches fresh memory."""

    def call(i: int) -> object:
        return fn(*(pool[i % len(pool)] for pool in pools))

    return call


def _pool_size(plan: Plan, tensor_bytes: int, tensors_per_call: int = 1) -> int:
    return max(2, min(64, plan.pool_bytes // max(tensor_bytes * tensors_per_call, 1)))


# --- roofs --------------------------------------------------------------------------------------


def measure_bandwidth(device: str, plan: Plan, timer: Timer) -> dict[str, float]:
    """Streaming bandwidth (bytes/s): a reduction reads a buffer, a copy reads and writes one."""
    torch = timer.torch
    n = plan.bandwidth_bytes // 4
    # Touch every page: untouched allocations map to one zero page and fake the bandwidth.
    x = torch.rand(n, device=device)
    y = torch.rand(n, device=device)
    read = timer.per_call(lambda i: x.sum(), 1, plan.repeat)
    copy = timer.per_call(lambda i: y.copy_(x), 1, plan.repeat)
    return {"read": 4 * n / read, "copy": 8 * n / copy}


def measure_peak(device: str, dtype: str, plan: Plan, timer: Timer) -> float:
    torch = timer.torch
    t = getattr(torch, TORCH_DTYPES[dtype])
    size = plan.peak_size
    a = torch.randn(size, size, device=device, dtype=t)
    b = torch.randn(size, size, device=device, dtype=t)
    seconds = timer.per_call(lambda i: a @ b, 3 if device == "cpu" else 10, plan.repeat)
    return 2 * size**3 / seconds


# --- operator samples ---------------------------------------------------------------------------


def _precision(dtype: str):
    from ..ops.precision import Precision

    bits = DTYPE_BITS[dtype]
    return Precision(w_bits=bits, a_bits=bits, kv_bits=bits, float16="bf16" if dtype == "bf16" else "fp16")


def _bench_spec(plan: Plan):
    from ..model.spec import ModelSpec

    heads, kv_heads, hd = plan.heads
    return ModelSpec(
        name="bench",
        model_type="llama",
        hidden_size=heads * hd,
        num_layers=1,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=hd,
        intermediate_size=plan.intermediate,
        vocab_size=32000,
        rotary_dim=hd,
    )


def matmul_samples(device: str, dtype: str, plan: Plan, timer: Timer) -> list[Sample]:
    from ..ops.base import linear

    torch = timer.torch
    t = getattr(torch, TORCH_DTYPES[dtype])
    prec = _precision(dtype)
    samples = []
    for k, n in plan.shapes:
        pool = [
            torch.randn(n, k, device=device, dtype=t) * 0.02
            for _ in range(_pool_size(plan, k * n * DTYPE_BITS[dtype] // 8))
        ]
        for m in plan.tokens:
            x = torch.randn(m, k, device=device, dtype=t)
            call = _rotating(functools.partial(torch.nn.functional.linear, x), pool)
            seconds = timer.per_call(call, len(pool) if m * k * n < 2**31 else 2, plan.repeat)
            op = linear("mm", "bench", k, n, float(m), prec, count=1)
            samples.append(Sample("matmul", m, k, float(op.flops), float(op.bytes), seconds))
        del pool
    return samples


def attention_samples(device: str, dtype: str, plan: Plan, timer: Timer) -> list[Sample]:
    from ..layers.attention import attention_ops
    from ..ops.base import Pass

    torch = timer.torch
    t = getattr(torch, TORCH_DTYPES[dtype])
    heads, kv_heads, hd = plan.heads
    spec, prec = _bench_spec(plan), _precision(dtype)
    samples = []
    for q, c in plan.attention:
        batch = 1 if q > 1 else 8
        query = torch.randn(batch, heads, q, hd, device=device, dtype=t)
        key = torch.randn(batch, kv_heads, c, hd, device=device, dtype=t)
        value = torch.randn(batch, kv_heads, c, hd, device=device, dtype=t)
        sdpa = functools.partial(
            torch.nn.functional.scaled_dot_product_attention,
            query,
            key,
            value,
            is_causal=q > 1,
            enable_gqa=True,
        )
        seconds = timer.per_call(lambda i, f=sdpa: f(), 4, plan.repeat)
        op = next(
            o for o in attention_ops(spec, prec, Pass(batch, float(q), float(c)), 1) if o.name == "attention"
        )
        samples.append(Sample("attention", batch * q, 0, float(op.flops), float(op.bytes), seconds))
    return samples


def eager_implementations(torch) -> dict[str, Callable]:
    """Element-wise operators as eager Hugging Face models implement them (one function per class)."""
    F = torch.nn.functional

    def rmsnorm(x, weight):
        dtype_in = x.dtype
        x = x.to(torch.float32)
        variance = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(variance + 1e-6)
        return weight * x.to(dtype_in)

    def layernorm(x, weight):
        return F.layer_norm(x, x.shape[-1:], weight, weight)

    def rotate_half(v):
        half = v.shape[-1] // 2
        return torch.cat((-v[..., half:], v[..., :half]), dim=-1)

    def rope(q, k, cos, sin):
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin

    def gelu_new(x):  # transformers' NewGELUActivation
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

    return {
        "rmsnorm": rmsnorm,
        "layernorm": layernorm,
        "rope": rope,
        "act:silu:gated": lambda g, u: F.silu(g) * u,
        "act:gelu_pytorch_tanh:gated": lambda g, u: F.gelu(g, approximate="tanh") * u,
        "act:gelu_new": gelu_new,
        "act:gelu": F.gelu,
        "act:relu": F.relu,
        "add": torch.add,
        "embedding": lambda ids, table: F.embedding(ids, table),
    }


def _class_inputs(
    torch, name: str, tokens: int, plan: Plan, device: str, dtype: str
) -> tuple[list, list, object]:
    """For one element-wise class at ``tokens`` tokens: (inputs, which of them rotate, ideal op).

    Activations rotate (they are fresh in every layer); weights and tables stay put.
    """
    from ..layers.attention import attention_ops
    from ..ops.base import Op, Pass, elementwise, norm

    t = getattr(torch, TORCH_DTYPES[dtype])
    prec, h, inter = _precision(dtype), plan.hidden, plan.intermediate
    heads, kv_heads, hd = plan.heads
    rand = functools.partial(torch.randn, device=device, dtype=t)
    if name in ("rmsnorm", "layernorm"):
        return (
            [rand(tokens, h), rand(h)],
            [True, False],
            norm("n", "b", name, h, float(tokens), prec, count=1),
        )
    if name == "rope":
        ops = attention_ops(_bench_spec(plan), prec, Pass(1, float(tokens), float(tokens)), 1)
        inputs = [
            rand(1, heads, tokens, hd),
            rand(1, kv_heads, tokens, hd),
            rand(1, tokens, hd),
            rand(1, tokens, hd),
        ]
        return inputs, [True, True, False, False], next(o for o in ops if o.name == "rope")
    if name == "add":
        op = elementwise("a", "b", float(tokens * h), 1, prec, count=1, inputs=2)
        return [rand(tokens, h), rand(tokens, h)], [True, True], op
    if name == "embedding":
        ids = torch.randint(0, 32000, (tokens,), device=device)
        row_bytes = tokens * h * prec.a_bytes
        op = Op("e", "b", "embedding", "vector", 1, 0.0, weight_bytes=row_bytes, act_out_bytes=row_bytes)
        return [ids, rand(32000, h)], [True, False], op
    n_inputs = 2 if name.endswith(":gated") else 1
    op = elementwise("act", "b", float(tokens * inter), 8, prec, count=1, inputs=n_inputs)
    return [rand(tokens, inter) for _ in range(n_inputs)], [True] * n_inputs, op


def class_samples(device: str, dtype: str, plan: Plan, timer: Timer) -> list[Sample]:
    torch = timer.torch
    impls = eager_implementations(torch)
    samples = []
    for name, fn in impls.items():
        if name.startswith("act:") and name[4:] not in ACTIVATIONS:
            continue
        for tokens in plan.tokens:
            inputs, rotate, op = _class_inputs(torch, name, tokens, plan, device, dtype)
            per_call = sum(x.numel() * x.element_size() for x, r in zip(inputs, rotate, strict=True) if r)
            copies = _pool_size(plan, per_call)
            pools = [
                [x.clone() for _ in range(copies)] if r else [x] for x, r in zip(inputs, rotate, strict=True)
            ]
            seconds = timer.per_call(_rotating(fn, *pools), copies, plan.repeat)
            samples.append(Sample(name, tokens, 0, float(op.flops), float(op.bytes), seconds))
    return samples


def measure_overheads(device: str, dtype: str, plan: Plan, timer: Timer) -> dict[str, float]:
    """Seconds per occurrence of each class at a tiny size, where only fixed costs remain.

    Matmuls are timed as an ``nn.Linear`` module call and attention as a dynamic-cache update
    (two concatenations) plus SDPA, as eager models run them.
    """
    torch = timer.torch
    t = getattr(torch, TORCH_DTYPES[dtype])
    tiny = Plan(
        tokens=(1,),
        shapes=(),
        attention=(),
        heads=(4, 2, 16),
        hidden=64,
        intermediate=64,
        bandwidth_bytes=0,
        peak_size=0,
        pool_bytes=0,
        repeat=plan.repeat,
    )
    impls = eager_implementations(torch)
    overheads = {}
    for name, fn in impls.items():
        inputs, _, _ = _class_inputs(torch, name, 1, tiny, device, dtype)
        overheads[name] = timer.per_call(lambda i, f=fn, a=inputs: f(*a), 200, 5)
    linear = torch.nn.Linear(64, 64, bias=False, device=device, dtype=t)
    x = torch.randn(1, 1, 64, device=device, dtype=t)
    overheads["matmul"] = timer.per_call(lambda i: linear(x), 200, 5)
    q = torch.randn(1, 4, 1, 16, device=device, dtype=t)
    cache = torch.randn(1, 2, 8, 16, device=device, dtype=t)
    new = torch.randn(1, 2, 1, 16, device=device, dtype=t)

    def attention(i: int) -> object:
        k, v = torch.cat([cache, new], dim=-2), torch.cat([cache, new], dim=-2)
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)

    overheads["attention"] = timer.per_call(attention, 200, 5)
    return overheads


# --- framework fixed costs -------------------------------------------------------------------------

# Tiny configs of each family: the fixed cost of a decoder layer and of a pass, with negligible math.
_TINY = {
    "llama": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    "qwen2": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    "qwen3": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
    },
    "mistral": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
    },
    "gemma": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
    },
    "gemma2": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
    },
    "phi3": {"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 4},
    "gpt2": {"n_embd": 64, "n_head": 4, "n_positions": 512},
    "gpt_neox": {
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_attention_heads": 4,
        "max_position_embeddings": 512,
    },
    "opt": {
        "hidden_size": 64,
        "ffn_dim": 256,
        "num_attention_heads": 4,
        "word_embed_proj_dim": 64,
        "max_position_embeddings": 512,
    },
}
_LAYERS_KEY = {"gpt2": "n_layer"}


def _tiny_decode_step(model_type: str, layers: int, device: str, dtype: str, timer: Timer) -> float:
    """Median seconds of one decode step of a tiny model (batch 1, short context)."""
    from . import hf

    # Token ids inside the tiny vocabulary (the families' defaults point past it).
    cfg = dict(
        _TINY[model_type],
        model_type=model_type,
        vocab_size=256,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    cfg[_LAYERS_KEY.get(model_type, "num_hidden_layers")] = layers
    lm = hf.build(cfg, device, dtype)
    ids = timer.torch.randint(0, 256, (1, 8), device=device)
    times = []
    with timer.torch.inference_mode():
        token, cache = hf.prefill(lm, ids)
        for i in range(25):
            timer.sync()
            start = time.perf_counter()
            token, cache = hf.decode_step(lm, token, cache)
            timer.sync()
            if i >= 5:
                times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_frameworks(device: str, dtype: str, timer: Timer) -> dict[str, dict[str, float]]:
    """Fixed host-side cost per decoder layer and per pass of eager ``transformers`` models, by family.

    Times decode steps of tiny models (hidden size 64) with 1 and 5 layers: the difference over 4 is
    the cost of a layer, the rest the cost of a pass (embedding, final norm, head, cache bookkeeping,
    Python). Empty when ``transformers`` is not installed.
    """
    try:
        import transformers  # noqa: F401
    except ImportError:
        return {}
    costs = {}
    # The first model built pays one-time costs (lazy imports, CUDA/cuBLAS initialisation): build
    # and run one untimed before measuring.
    _tiny_decode_step("llama", 1, device, dtype, timer)
    for model_type in _TINY:
        try:
            one = _tiny_decode_step(model_type, 1, device, dtype, timer)
            five = _tiny_decode_step(model_type, 5, device, dtype, timer)
        except Exception:  # a family this transformers version builds differently: fall back to op costs
            continue
        layer = max((five - one) / 4, 0.0)
        costs[model_type] = {
            "layer_s": float(f"{layer:.4g}"),
            "pass_s": float(f"{max(one - layer, 0.0):.4g}"),
        }
    return costs


# --- fitting ------------------------------------------------------------------------------------


def fit_table(
    samples: Iterable[Sample], peak: float, bandwidth: float, overhead: float, grid: Iterable[float]
) -> list[float]:
    """eff(T) at each grid point: median over samples at T of ideal / (measured - overhead).

    Pass ``overhead`` 0 for asynchronous devices, where back-to-back calls hide it under device time.

    Grid points without samples take the nearest measured value. Efficiencies are capped at 1 (the
    roofline bounds speed; caches can beat the streaming roof on small shapes, which a forward pass
    that streams its weights does not).
    """
    by_tokens: dict[float, list[float]] = {}
    for s in samples:
        ideal = max(s.flops / peak, s.bytes / bandwidth)
        spent = max(s.seconds - overhead, 0.05 * s.seconds)
        by_tokens.setdefault(float(s.tokens), []).append(min(ideal / spent, 1.0))
    if not by_tokens:
        raise RooflensError("no samples to fit an efficiency table from")
    measured = sorted(by_tokens)
    values = []
    for t in grid:
        nearest = min(measured, key=lambda m: abs(math.log(m) - math.log(t)))
        values.append(float(statistics.median(by_tokens[nearest])))
    return values


def build_profile(
    samples: list[Sample],
    overheads: dict[str, float],
    roofs: tuple[float, float],
    engine: str,
    source: str,
    overlap: bool = False,
    frameworks: dict[str, dict[str, float]] | None = None,
) -> dict[str, object]:
    """The efficiency profile (a dict in the HardwareSpec ``efficiency`` format) from samples.

    ``roofs`` is (peak FLOP/s, memory bandwidth): each sample's ideal uses the roofs the profile
    itself declares, as the analysis will.
    """
    peak, bandwidth = roofs
    grid = sorted({float(s.tokens) for s in samples if s.kind == "matmul"})

    def table(kind: str, inner: int | None = None) -> list[float]:
        mine = [s for s in samples if s.kind == kind and (inner is None or s.inner == inner)]
        overhead = 0.0 if overlap else overheads.get(kind, 0.0)
        return [round(v, 4) for v in fit_table(mine, peak, bandwidth, overhead, grid)]

    classes = sorted({s.kind for s in samples} - {"matmul", "attention"})
    inners = sorted({s.inner for s in samples if s.kind == "matmul"})
    return {
        "engine": engine,
        "source": source,
        "tokens": grid,
        "matmul": table("matmul"),
        "matmul_by_inner": {k: table("matmul", k) for k in inners} if len(inners) > 1 else {},
        "attention": table("attention"),
        "vector": table("add"),
        "classes": {name: table(name) for name in classes},
        "op_overheads": {k: float(f"{v:.4g}") for k, v in sorted(overheads.items())},
        "frameworks": frameworks or {},
        "overlap": overlap,
    }


# --- the command ----------------------------------------------------------------------------------


def _memory_capacity(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return float(torch.cuda.get_device_properties(torch.device(device)).total_memory)
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def calibrate(
    device: str = "cpu",
    dtypes: tuple[str, ...] | None = None,
    quick: bool = False,
    name: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, object]:
    """Measure this machine and return a hardware profile (a HardwareSpec-shaped dict)."""
    try:
        import torch
    except ImportError:
        raise RooflensError("rooflens calibrate needs PyTorch: pip install torch") from None
    if device != "cpu" and not device.startswith("cuda"):
        raise RooflensError(f"unknown device '{device}': use cpu or cuda[:N]")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RooflensError("no CUDA device is available here; calibrate the CPU with --device cpu")
    gpu = device.startswith("cuda")
    dtypes = dtypes or (("bf16", "fp16") if gpu else ("fp32",))
    unknown = [d for d in dtypes if d not in TORCH_DTYPES]
    if unknown:
        raise RooflensError(f"unsupported dtype(s) {unknown}: choose from {', '.join(TORCH_DTYPES)}")
    say = progress or (lambda message: None)
    plan = plan_for(device, quick)
    timer = Timer(device)
    stamp = dt.date.today().isoformat()
    where = f"{_device_name(device)}, torch {torch.__version__}"
    if not gpu:
        where += f", {torch.get_num_threads()} threads"

    say("memory bandwidth")
    bw = measure_bandwidth(device, plan, timer)
    bandwidth = max(bw.values())
    peaks: dict[str, float] = {}
    profiles = []
    for dtype in dtypes:
        say(f"{dtype} matmul peak")
        peaks[dtype] = measure_peak(device, dtype, plan, timer)
        say(f"{dtype} operator overheads")
        overheads = measure_overheads(device, dtype, plan, timer)
        samples = []
        for label, fn in (
            ("matmul", matmul_samples),
            ("attention", attention_samples),
            ("element-wise", class_samples),
        ):
            say(f"{dtype} {label} efficiency")
            samples += fn(device, dtype, plan, timer)
        source = f"rooflens calibrate {stamp}: micro-benchmarks on {where}, {dtype}"
        # Element-wise ops use the fp32 (vector) roof in the analysis; this profile measured the
        # matmul roof of the dtype, which on a CPU is also its vector roof.
        profiles.append(
            build_profile(
                samples,
                overheads,
                (peaks[dtype], bandwidth),
                f"pytorch-{dtype}",
                source,
                overlap=gpu,
                frameworks=measure_frameworks(device, dtype, timer),
            )
        )
    measured = f"measured by rooflens calibrate {stamp} on {where}"
    copies = f"read {bw['read'] / 1e9:.1f} GB/s, copy {bw['copy'] / 1e9:.1f} GB/s"
    return {
        "name": name or ("cuda-" if gpu else "cpu-") + platform.node().split(".")[0],
        "display_name": f"{_device_name(device)} (measured)",
        "kind": "gpu" if gpu else "cpu",
        "memory_bytes": _memory_capacity(device),
        "memory_bandwidth": bandwidth,
        "peak_flops": peaks,
        "efficiency": profiles,
        "sources": {
            "memory_bytes": f"{measured} ({'device memory' if gpu else 'physical RAM'})",
            "memory_bandwidth": f"{measured}: best of {copies}",
            "peak_flops": f"{measured}: {plan.peak_size}^3 GEMMs",
        },
        "notes": "Measured roofs; efficiency tables and per-operator overheads for eager PyTorch.",
    }


def fmt_summary(profile: dict[str, object]) -> list[str]:
    lines = [f"memory bandwidth {profile['memory_bandwidth'] / 1e9:.1f} GB/s"]
    for dtype, peak in profile["peak_flops"].items():  # type: ignore[union-attr]
        lines.append(f"{dtype} matmul peak {peak / 1e12:.2f} TFLOP/s")
    for prof in profile["efficiency"]:  # type: ignore[union-attr]
        pairs = zip(prof["tokens"], prof["matmul"], strict=True)
        lines.append(
            f"{prof['engine']}: matmul efficiency " + ", ".join(f"T={int(t)}: {e:.2f}" for t, e in pairs)
        )
        costs = ", ".join(f"{k} {v * 1e6:.1f} µs" for k, v in prof["op_overheads"].items())
        lines.append(f"{prof['engine']}: overheads {costs}")
    return lines
