"""Pre-synthesis ESTIMATES: SqueezeNet v1.0 / v1.1 on the four boards at 8 bits.

Folding from hw.estimate.choose_reuse (default: the fastest pipeline that fits the board;
if none fits, the fastest whose DSP and LUT fit, else whose DSP fits -- so "fits False"
means no folding fits), at each board's default clock. Nothing here is measured: these are
the cost model's numbers (hw/ops, hw/estimate.py), to be replaced by synthesis reports, and the
frame rates rest on the kernels' cycle model, which the build issue re-examines: PROVISIONAL.
8-bit formats are quant/formats.uniform_spec's, exactly what `sqz hls --bits 8` generates.

Table 1 is the design `sqz hls --weights-in-uram none` generates: weights in bitstream-initialised
ROMs (block RAM or LUTs), no UltraRAM. Table 2 is the design `sqz hls` generates by default
(--weights-in-uram auto): on boards with UltraRAM whose block RAM would be over budget, loadable ops
-- conv10 (sqz::conv1x1_rw) and Fire modules (sqz::fire reading UltraRAM arrays) -- get their weights
in UltraRAM, written at start-up through the AXI top's load mode (hw.estimate.choose_loadable decides
it for the generator and the estimate alike). Table 3 ASSUMES a start-up weight-load path for every
remaining weight ROM (conv1's, which sqz does not generate), labelled wherever it is printed.
Table 4: the default design under FINN's timing-closure ceilings (LUT 70 %, BRAM/URAM/DSP 80 %).
Targets checked: zcu104, v1.1 at 224x224, >= 600 frames/s (what Vitis AI's DPU does on that board);
the KV260 fits v1.1 at 224 with the generated design.

    .venv/bin/python benchmarks/estimates.py [--json benchmarks/results/estimates.json]     # about 15 s
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hw.boards import BOARDS  # noqa: E402
from hw.estimate import FINN_RESOURCE_LIMITS, choose_reuse, estimate  # noqa: E402

BITS = 8
CASES = [("squeezenet1_0", 227), ("squeezenet1_1", 224), ("squeezenet1_1", 227)]
TARGET = ("squeezenet1_1", 224, "zcu104", 600.0)
RESULTS = Path(__file__).resolve().parent / "results" / "estimates.json"


def pct(used: int, u: float) -> str:
    return f"{used} ({u:.0f}%)" if u != float("inf") else f"{used} (n/a)"


def row(e) -> dict:
    return {"model": e.model, "input_size": e.input_size, "board": e.board, "clock_mhz": e.clock_mhz, "dsp": e.dsp,
            "bram18": e.bram18, "uram": e.uram, "lut": e.lut, "fps": round(e.fps, 1), "fits": e.fits,
            "utilisation": {k: round(v, 1) for k, v in e.utilisation.items()}, "over_budget": list(e.over_budget),
            "bottleneck": e.bottleneck, "loadable": list(e.loadable), "assumptions": list(e.assumptions)}


def table(boards, **options) -> dict:
    head = (f"{'model':<14}{'input':>6}  {'board':<11}{'MHz':>5}  {'DSP':>12}{'BRAM18':>12}{'URAM':>10}"
            f"{'LUT':>15}{'fps':>9}  {'fits':<5} {'slowest layer / over budget'}")
    print(head)
    print("-" * len(head))
    limit = options.pop("utilisation_limit", None)
    results = {}
    for model, size in CASES:
        for name in boards:
            reuse = choose_reuse(model, name, BITS, input_size=size, utilisation_limit=limit, **options) \
                if limit else None
            e = estimate(model, name, BITS, reuse, input_size=size, **options)   # reuse None: choose_reuse
            results[model, size, name] = e
            u = e.utilisation
            note = e.bottleneck + (f" / over: {', '.join(e.over_budget)}" if e.over_budget else "")
            print(f"{model:<14}{size:>6}  {name:<11}{e.clock_mhz:>5g}  {pct(e.dsp, u['dsp']):>12}"
                  f"{pct(e.bram18, u['bram18']):>12}{pct(e.uram, u['uram']):>10}{pct(e.lut, u['lut']):>15}"
                  f"{e.fps:>9.1f}  {str(e.fits):<5} {note}")
            if e.loadable:
                print(f"{'':<22}loadable: {', '.join(e.loadable)}")
        print()
    return results


def verdict(results, label: str) -> None:
    model, size, board, fps = TARGET
    e = results[model, size, board]
    ok = "MET" if e.fits and e.fps >= fps else "MISSED"
    print(f"Target ({label}): {board} {model} {size}x{size} >= {fps:g} fps -> estimate {e.fps:.1f} fps, "
          f"fits {e.fits}: {ok}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=str(RESULTS), help="where the figures go (default: %(default)s)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    print(f"ESTIMATES before synthesis (cost model hw/ops + hw/estimate.py, source=estimate; PROVISIONAL), "
          f"{BITS}-bit weights and activations, folding by choose_reuse at each board's default clock\n")
    print("1. Generated with --weights-in-uram none: weight ROMs initialised from the bitstream (block RAM / "
          "LUTs), no UltraRAM\n")
    tables = {"1_rom_only": table(BOARDS)}
    uram_boards = [b for b, v in BOARDS.items() if v.uram]
    print("2. Generated by default (--weights-in-uram auto): where block RAM would be over budget, loadable ops "
          "(conv10, Fire modules)\n   get their weights in UltraRAM, loaded at start-up through the generated load "
          "path (AXI top, mode 1);\n   boards with UltraRAM only -- the others are as in table 1\n")
    tables["2_default_loadable"] = table(uram_boards, loadable="auto")
    print("3. ASSUMING A WEIGHT-LOAD PATH for the remaining weight ROMs too (conv1: sqz generates none);\n"
          "   boards with UltraRAM only\n")
    tables["3_assumed_load_path"] = table(uram_boards, loadable="auto", uram="auto")
    print("4. The default design (table 2) under FINN's timing-closure ceilings (LUT 70 %, BRAM/URAM/DSP 80 %)\n")
    tables["4_default_finn_ceilings"] = table(uram_boards, loadable="auto", utilisation_limit=FINN_RESOURCE_LIMITS)
    verdict(tables["1_rom_only"], "generated, --weights-in-uram none")
    verdict(tables["2_default_loadable"], "generated, default --weights-in-uram auto")
    verdict(tables["4_default_finn_ceilings"], "generated, under FINN's ceilings")
    model, size, _, _ = TARGET
    print("Sensitivity (v1.1 at 224, default design, one assumption changed; folding re-chosen for each):")
    variants = [
        ("as in table 2 (generated design)", {}, {}),
        ("200 MHz clock (hls4ml's default 5 ns)", dict(clock_mhz=200), dict(clock_mhz=200)),
        ("FIFOs 2 deep (registers) instead of 32", dict(fifo_depth=2), dict(fifo_depth=2)),
        ("two 8-bit products per DSP48E2", dict(dsp_packing=True), dict(dsp_packing=True)),
    ]
    sensitivity = []
    for b in ("zcu104", "kv260"):
        for label, choose_kw, est_kw in variants:
            v = estimate(model, b, BITS, choose_reuse(model, b, BITS, input_size=size, loadable="auto", **choose_kw),
                         input_size=size, loadable="auto", **est_kw)
            sensitivity.append({"board": b, "variant": label, **row(v)})
            print(f"  {b:<7} {label:<42} {v.fps:7.1f} fps  DSP {v.dsp:>5}  BRAM18 {v.bram18:>4}  "
                  f"URAM {v.uram:>3}  LUT {v.lut:>7} ({v.utilisation['lut']:.0f} %)  fits {v.fits}")
    print("\nLUT ceiling sweep (v1.1 at 224, default design; other resources up to 100 %): timing closure needs "
          "LUT at 70-80 %")
    lut_sweep = []
    for b in ("zcu104", "kv260"):
        for ceiling in (1.0, 0.9, 0.8, 0.7):
            r = choose_reuse(model, b, BITS, input_size=size, loadable="auto", utilisation_limit={"lut": ceiling})
            v = estimate(model, b, BITS, r, input_size=size, loadable="auto")
            met = v.fits and v.utilisation["lut"] <= 100 * ceiling
            lut_sweep.append({"board": b, "lut_ceiling": ceiling, "met": met, **row(v)})
            print(f"  {b:<7} LUT <= {100 * ceiling:.0f} %: {v.fps:7.1f} fps  LUT {v.utilisation['lut']:.0f} %  "
                  f"BRAM18 {v.bram18:>4}  URAM {v.uram:>3}  DSP {v.dsp:>5}  fits {v.fits}"
                  + ("" if met else "  -> NO folding meets this ceiling (the search's fallback shown)"))
    for key in ("1_rom_only", "2_default_loadable"):
        for board in ("zcu104", "kv260"):
            print()
            print(tables[key][model, size, board].table())
    seconds = time.perf_counter() - t0
    print(f"\n({seconds:.1f} s)")
    out = {"bits": BITS, "source": "estimate", "provisional": "cycle model not yet checked against synthesis",
           "tables": {k: [row(e) for e in t.values()] for k, t in tables.items()}, "sensitivity": sensitivity,
           "lut_ceiling_sweep": lut_sweep,
           "seconds": round(seconds, 1)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
