"""Section fastpaths: channels_last, torch.compile, batch size, thread count and OMP_WAIT_POLICY,
each against the default CNN's raw training step."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from benchmarks.common import Row, compose, median, spread, steps_rate, timed
from glyphlab import usable_cores


def bench_fastpaths(steps: int = 30, repeats: int = 3, with_compile: bool = True) -> list[Row]:
    """Default CNN raw-loop img/s with each candidate fast path / without it, interleaved per repeat."""
    import torch

    cfg = compose(["model=cnn"])
    bs, threads = cfg.model.batch_size, torch.get_num_threads()
    # name -> (the rate with the fast path, the rate without it), each a function of nothing
    variants = {
        "channels_last conv weights (built in) / contiguous NCHW": (lambda: steps_rate(cfg, steps),
                                                                     lambda: steps_rate(cfg, steps, nchw=True)),
        f"batch {bs * 2} / batch {bs}": (lambda: steps_rate(cfg, steps, bs * 2), lambda: steps_rate(cfg, steps)),
        f"batch {bs // 2} / batch {bs}": (lambda: steps_rate(cfg, steps, bs // 2), lambda: steps_rate(cfg, steps)),
    }
    if threads > 1:
        variants[f"{threads} threads / 1 thread"] = (lambda: steps_rate(cfg, steps), lambda: _one_thread(cfg, steps))
    compile_s = None
    if with_compile:
        started = time.perf_counter()
        try:
            steps_rate(cfg, 1, compiled=True)  # the first call compiles: timed apart from the steps
            compile_s = time.perf_counter() - started
            variants["torch.compile / eager"] = (lambda: steps_rate(cfg, steps, compiled=True),
                                                 lambda: steps_rate(cfg, steps))
        except Exception as e:  # e.g. no working C++ compiler
            compile_s = f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"
    ratios = {name: [] for name in variants}
    for _ in range(repeats):
        for name, (fast, plain) in variants.items():
            ratios[name].append(fast() / plain())
    rows = []
    for name, r in ratios.items():
        detail = f"raw loop, {steps} steps of the default cnn (batch {bs}, {threads} threads unless named)"
        if name.startswith("torch.compile"):
            detail = f"compiling took {compile_s:.0f} s; " + detail
        rows.append(Row("fastpaths", name, f"{median(r):.2f}×", detail=f"{detail}; {spread(r)}"))
    if isinstance(compile_s, str):
        rows.append(Row("fastpaths", "torch.compile / eager", "–", detail=f"compile failed: {compile_s}"))
    if threads > 1:
        rows += omp_wait_rows(steps, repeats)
    return rows


STEPS_CHILD = ("import sys; from benchmarks.common import compose, steps_rate; "
               "print(steps_rate(compose(['model=cnn']), int(sys.argv[1])))")


def omp_wait_rows(steps: int = 30, repeats: int = 3) -> list[Row]:
    """OpenMP threads that sleep at a barrier (OMP_WAIT_POLICY=PASSIVE, what glyphlab sets) vs
    libgomp's default (spin ~300k rounds, then sleep), each in a fresh process (the policy is read
    when torch loads),
    with the other cores idle and with one of them kept busy by another process — a shared machine."""
    def rate(policy: str | None) -> float:
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if policy:
            env["OMP_WAIT_POLICY"] = policy
        *_, proc = timed([sys.executable, "-c", STEPS_CHILD, str(steps)], env)
        if proc.returncode != 0:
            raise RuntimeError(f"steps_rate child failed:\n{proc.stderr[-2000:]}")
        return float(proc.stdout.split()[-1])

    rows = []
    for busy in (False, True):
        burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            ratios, passive, active = [], [], []
            for _ in range(repeats):
                passive.append(rate("PASSIVE"))
                active.append(rate(None))
                ratios.append(passive[-1] / active[-1])
        finally:
            if burner is not None:
                burner.kill()
                burner.wait()
        rows.append(Row("fastpaths", f"OMP_WAIT_POLICY=PASSIVE / unset (libgomp spins first), "
                                     f"{'one core busy with another process' if busy else 'no extra load'}",
                        f"{median(ratios):.2f}×",
                        detail=f"{median(passive):.0f} vs {median(active):.0f} img/s, default cnn raw loop, "
                               f"{usable_cores()} threads, {steps} steps; {spread(ratios)}"))
    return rows


def _one_thread(cfg, steps: int) -> float:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return steps_rate(cfg, steps)
    finally:
        torch.set_num_threads(threads)
