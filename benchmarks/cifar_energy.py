"""Energy per inference of squeezenet_cifar on the PYNQ-Z2: an ESTIMATE scaled from a real routed power report.

Nothing here is measured on this design (it has never been synthesised). The one real power report of a
PYNQ-Z2 (xc7z020) design in ../shared/data -- hls4ml's jet tagger, routed, Vivado report_power with its
vectorless activity -- gives the chip's power by component. This script scales each programmable-logic
component by the ratio of this design's estimated resources to that design's (clocks, slice logic and
signals by LUTs, DSPs by DSPs, block RAM by 36 Kb tiles) and keeps the PS7 and the device static power as
they are (the same processor, its DDR barely used here: an image in, ten logits out):

    P = static + PS7 + (clocks + slice logic + signals) * LUT/LUT_ref + DSPs * DSP/DSP_ref + BRAM * tiles/tiles_ref
    energy per inference = P / frames per second

The estimator's LUT figure is within a factor of about 2 of synthesis (hw/estimate.py), so P is also given
with LUT halved and doubled. For scale, a board measurement of an hls4ml design on the same board (MLPerf
Tiny v0.7 RN07, EEMBC EnergyRunner, ../shared/data/hls_reports/mlperftiny-rn07-pynqz2/results) is read too.

    .venv/bin/python benchmarks/cifar_energy.py     # benchmarks/results/cifar/energy.json
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

from common import ROOT, write_results

from hw.reports import read_report

DATA = ROOT.parent / "shared" / "data"
POWER_REPORT = DATA / "hls4ml_pynqz2_reference" / "vivado_power_routed.rpt"
RN07_POWER = DATA / "hls_reports" / "mlperftiny-rn07-pynqz2" / "results" / "power__results.txt"
DESIGN = ROOT / "benchmarks" / "results" / "cifar" / "hls_pynq-z2.json"
OUT = ROOT / "benchmarks" / "results" / "cifar" / "energy.json"
PL_LOGIC = ("clocks", "slice_logic", "signals")          # scaled by LUTs


def shared_name(path: Path) -> str:
    """A file of ../shared as a reader of the repository names it."""
    return "../shared/" + Path(path).resolve().relative_to(DATA.parent.resolve()).as_posix()


def scaled_power(components: dict, lut: float, dsp: int, bram18: int) -> dict:
    """Chip power (W) of a design with these resources, by component, scaled from a report's components."""
    ref_lut = sum(components[k]["used"] for k in ("lut_as_logic", "lut_as_shift_register", "lut_as_distributed_ram"))
    ref_dsp, ref_tiles = components["dsps"]["used"], components["block_ram"]["used"]
    parts = {k: components[k]["w"] * lut / ref_lut for k in PL_LOGIC}
    parts["dsps"] = components["dsps"]["w"] * dsp / ref_dsp
    parts["block_ram"] = components["block_ram"]["w"] * (bram18 / 2) / ref_tiles   # the report counts 36 Kb tiles
    parts["ps7"] = components["ps7"]["w"]
    parts["static_power"] = components["static_power"]["w"]
    return {"total_w": sum(parts.values()), "components_w": parts,
            "reference_resources": {"lut": ref_lut, "dsp": ref_dsp, "bram36_tiles": ref_tiles}}


def rn07_measurement(path: Path) -> dict:
    """The EEMBC EnergyRunner log: median energy per inference (uJ), and the power and throughput of its windows."""
    text = path.read_text()
    median = re.search(r"Median energy cost is\s+([\d.]+) uJ/inf", text)
    powers = [float(v) for v in re.findall(r"Power\s*:\s*([\d.]+) uW", text)]
    rates = [float(v) for v in re.findall(r"Throughput\s*:\s*([\d.]+) inf\./sec", text)]
    if median is None or not powers or not rates:
        raise SystemExit(f"{path}: no median energy, power or throughput lines: not an EnergyRunner results log")
    return {"file": shared_name(path), "energy_mj": float(median.group(1)) / 1000,
            "power_w_median": statistics.median_high(powers) / 1e6,
            "inferences_per_s_median": statistics.median_high(rates)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--design", default=str(DESIGN), help="an `sqz hls --json` report of a PYNQ-Z2 design")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    design = json.loads(Path(args.design).read_text())
    if design.get("board") != "pynq-z2":
        raise SystemExit(f"{args.design}: board {design.get('board')!r}: the reference power report is a PYNQ-Z2's")
    est = design["estimate"]
    ref = read_report(POWER_REPORT)
    fps = est["fps"]
    rows = {}
    for name, factor in (("estimate", 1.0), ("lut_halved", 0.5), ("lut_doubled", 2.0)):
        p = scaled_power(ref.power_components, est["lut"] * factor, est["dsp"], est["bram18"])
        rows[name] = {"lut": est["lut"] * factor, **p, "energy_mj": 1000 * p["total_w"] / fps}
    pl = {k: v for k, v in rows["estimate"]["components_w"].items() if k not in ("ps7", "static_power")}
    rn07 = rn07_measurement(RN07_POWER)
    print(f"{Path(args.design).name}: {fps:.0f} frames/s at {est['clock_mhz']:g} MHz, LUT {est['lut']}, DSP "
          f"{est['dsp']}, BRAM18 {est['bram18']} (estimates)")
    print(f"reference: {shared_name(POWER_REPORT)}: {ref.power_w} W on chip "
          f"(PS7 {ref.power_components['ps7']['w']} W, static {ref.power_components['static_power']['w']} W)")
    for name, r in rows.items():
        print(f"  {name:12s} LUT {r['lut']:8.0f}: chip {r['total_w']:.3f} W -> {r['energy_mj']:.2f} mJ per inference")
    print(f"  programmable logic (estimate): {sum(pl.values()):.3f} W = "
          + ", ".join(f"{k} {v:.3f}" for k, v in pl.items()))
    print(f"measured for scale: hls4ml RN07 on the PYNQ-Z2 (board, EnergyRunner): {rn07['power_w_median']:.3f} W at "
          f"{rn07['inferences_per_s_median']:.1f} inf/s = {rn07['energy_mj']:.1f} mJ per inference")
    write_results(args.out, {"what": "ESTIMATE: chip power scaled from a real routed report; not measured",
                             "design": str(Path(args.design).resolve()), "fps": fps, "clock_mhz": est["clock_mhz"],
                             "reference_report": shared_name(POWER_REPORT),
                             "reference_power_w": ref.power_w, "reference_components": ref.power_components,
                             "rows": rows, "programmable_logic_w": sum(pl.values()), "rn07_measured": rn07})
    return 0


if __name__ == "__main__":
    sys.exit(main())
