"""Pre-synthesis ESTIMATES: SqueezeNet v1.0 / v1.1 on the four boards at 8 bits.

Folding from hw.estimate.choose_reuse (default: the fastest pipeline that fits the board;
if none fits, the fastest whose DSP and LUT fit, else whose DSP fits -- so "fits False"
means no folding fits), at each board's default clock. Nothing here is measured: these are
the cost model's numbers, to be replaced by synthesis reports.

Table 1 is the design `sqz hls` generates: weights in bitstream-initialised ROMs (block RAM
or LUTs), no UltraRAM. Table 2 ASSUMES a start-up weight-load path that sqz does not
generate, so that large weight ROMs can live in UltraRAM (kv260, zcu104): it shows what such
a path would be worth, and is labelled wherever it is printed. The project target checked:
zcu104, v1.1 at 224x224, >= 600 frames/s (what Vitis AI's DPU does on that board).

    .venv/bin/python benchmarks/estimates.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hw.boards import BOARDS  # noqa: E402
from hw.estimate import FINN_RESOURCE_LIMITS, choose_reuse, estimate  # noqa: E402

BITS = 8
CASES = [("squeezenet1_0", 227), ("squeezenet1_1", 224), ("squeezenet1_1", 227)]
TARGET = ("squeezenet1_1", 224, "zcu104", 600.0)


def pct(used: int, u: float) -> str:
    return f"{used} ({u:.0f}%)" if u != float("inf") else f"{used} (n/a)"


def table(uram: str, boards) -> dict:
    head = (f"{'model':<14}{'input':>6}  {'board':<11}{'MHz':>5}  {'DSP':>12}{'BRAM18':>12}{'URAM':>10}"
            f"{'LUT':>15}{'fps':>9}  {'fits':<5} {'slowest layer / over budget'}")
    print(head)
    print("-" * len(head))
    results = {}
    for model, size in CASES:
        for name in boards:
            e = estimate(model, name, BITS, input_size=size, uram=uram)
            results[model, size, name] = e
            u = e.utilisation
            note = e.bottleneck + (f" / over: {', '.join(e.over_budget)}" if e.over_budget else "")
            print(f"{model:<14}{size:>6}  {name:<11}{e.clock_mhz:>5g}  {pct(e.dsp, u['dsp']):>12}"
                  f"{pct(e.bram18, u['bram18']):>12}{pct(e.uram, u['uram']):>10}{pct(e.lut, u['lut']):>15}"
                  f"{e.fps:>9.1f}  {str(e.fits):<5} {note}")
        print()
    return results


def verdict(results, label: str) -> None:
    model, size, board, fps = TARGET
    e = results[model, size, board]
    ok = "MET" if e.fits and e.fps >= fps else "MISSED"
    print(f"Target ({label}): {board} {model} {size}x{size} >= {fps:g} fps -> estimate {e.fps:.1f} fps, "
          f"fits {e.fits}: {ok}")


def main() -> None:
    t0 = time.perf_counter()
    print(f"ESTIMATES before synthesis (cost model hw/estimate.py, source=estimate), {BITS}-bit weights "
          f"and activations, folding by choose_reuse at each board's default clock\n")
    print("1. The generated design: weight ROMs initialised from the bitstream (block RAM / LUTs), no UltraRAM\n")
    results = table("none", BOARDS)
    print("2. ASSUMING A WEIGHT-LOAD PATH sqz does NOT generate (large weight ROMs in UltraRAM, loaded at "
          "start-up);\n   boards with UltraRAM only -- the others are as in table 1\n")
    assumed = table("auto", [b for b, v in BOARDS.items() if v.uram])
    verdict(results, "generated design")
    verdict(assumed, "ASSUMING a weight-load path")
    model, size, _, _ = TARGET
    print("Sensitivity (v1.1 at 224, one assumption changed; folding re-chosen for each):")
    variants = [
        ("as in table 1 (generated design)", {}, {}),
        ("ASSUMED weight-load path, weights in URAM (table 2)", dict(uram="auto"), dict(uram="auto")),
        ("FINN timing-closure ceilings (LUT 70%, BRAM/URAM/DSP 80%)",
         dict(utilisation_limit=FINN_RESOURCE_LIMITS), {}),
        ("200 MHz clock (hls4ml's default 5 ns)", dict(clock_mhz=200), dict(clock_mhz=200)),
        ("FIFOs 2 deep (registers) instead of 32", dict(fifo_depth=2), dict(fifo_depth=2)),
        ("two 8-bit products per DSP48E2", dict(dsp_packing=True), dict(dsp_packing=True)),
    ]
    for b in ("zcu104", "kv260"):
        for label, choose_kw, est_kw in variants:
            v = estimate(model, b, BITS, choose_reuse(model, b, BITS, input_size=size, **choose_kw),
                         input_size=size, **est_kw)
            print(f"  {b:<7} {label:<58} {v.fps:7.1f} fps  DSP {v.dsp:>5}  BRAM18 {v.bram18:>4}  "
                  f"URAM {v.uram:>3}  LUT {v.lut:>7}  fits {v.fits}")
    for uram, res in (("none", results), ("auto", assumed)):
        print()
        print(res[TARGET[:3]].table())
    print(f"\n({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
