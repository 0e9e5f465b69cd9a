"""squeezenet_cifar through the hardware flow on the PYNQ-Z2 and the Ultra96-V2: `sqz hls` (project,
ESTIMATES, C simulation compared bit for bit with the emulator on CIFAR-10 test images), `sqz build`
(dry run here: no Vivado) and `sqz infer --sim` (the host driver under the real pynq on the simulated board).

    .venv/bin/python benchmarks/cifar_hw.py [--spec pynq-z2=benchmarks/results/cifar/ft6/spec.json]
        [--spec ultra96-v2=benchmarks/results/cifar/ft6/spec.json] [--model squeezenet_cifar] [--csim 8]
        [--infer-csim 100] [--results benchmarks/results/cifar]

Per board, the commands it runs (recorded in the JSON):
  python -m sqz hls --model squeezenet_cifar --spec SPEC --board B OPTIONS --out runs/hls_cifar_B
      --csim N --data ../shared/data/cifar10 --json benchmarks/results/cifar/hls_B.json
  python -m sqz build --project runs/hls_cifar_B --board B --out runs/bitstreams_cifar/B
      --json benchmarks/results/cifar/build_B.json
  python -m sqz infer --bitstream runs/bitstreams_cifar/B --data ../shared/data/cifar10 --sim emulator
      --json benchmarks/results/cifar/infer_B_emulator.json ...      (all 10,000 test images)
  python -m sqz infer ... --sim csim --project runs/hls_cifar_B --limit 100 --json .../infer_B_csim.json
  python -m sqz infer ... --sim emulator --mirror --json .../infer_B_emulator_mirror.json   (two frames an image)
OPTIONS: the board's design point, sqz.demo.BOARD_DEFAULTS: PYNQ-Z2 `--fps 900` (the slowest folding that
reaches 900 frames/s at 100 MHz: it leaves the LUT and BRAM headroom issue 13 asks for); Ultra96-V2
`--max-utilisation lut=0.8,bram18=0.9` (the fastest folding within issue 13's limits), at its default
150 MHz. Every resource and speed figure is an ESTIMATE (hw/estimate.py), not synthesis.
Each board takes its own spec (default: the fine-tuned one at the board's design-point width, ft6/).
Writes benchmarks/results/cifar/hw.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from common import ROOT, run_sqz  # also puts the repository on sys.path

from hw.boards import get_board  # noqa: E402
from sqz.demo import BOARD_DEFAULTS  # noqa: E402  (each board's design point: width and folding options)

CIFAR = str(ROOT.parent / "shared" / "data" / "cifar10")
OUT = ROOT / "benchmarks" / "results" / "cifar"

BOARDS = {b: list(BOARD_DEFAULTS[b].hls_options) for b in ("pynq-z2", "ultra96-v2")}
DEFAULT_SPECS = {b: f"benchmarks/results/cifar/ft{BOARD_DEFAULTS[b].bits}/spec.json" for b in BOARDS}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spec", action="append", default=[], metavar="BOARD=SPEC",
                    help=f"the spec of a board (default {DEFAULT_SPECS})")
    ap.add_argument("--model", default="squeezenet_cifar")
    ap.add_argument("--csim", type=int, default=8)
    ap.add_argument("--infer-csim", type=int, default=100,
                    help="images through the simulated board with the C simulation behind it (all 10,000 go "
                         "through it with the emulator behind it)")
    ap.add_argument("--results", default=str(OUT), help="folder for hls_B.json, build_B.json, hw.json")
    args = ap.parse_args()
    specs = dict(DEFAULT_SPECS)
    for item in args.spec:
        board, sep, path = item.partition("=")
        if not sep or board not in BOARDS:
            ap.error(f"--spec {item!r}: expected BOARD=SPEC with BOARD one of {', '.join(BOARDS)}")
        specs[board] = path
    out = Path(args.results).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for board, extra in BOARDS.items():
        hls_json, build_json = out / f"hls_{board}.json", out / f"build_{board}.json"
        hls = ["hls", "--model", args.model, "--spec", specs[board], "--board", board, *extra,
               "--out", f"runs/hls_cifar_{board}", "--csim", str(args.csim), "--data", CIFAR, "--json", str(hls_json)]
        build = ["build", "--project", f"runs/hls_cifar_{board}", "--board", board,
                 "--out", f"runs/bitstreams_cifar/{board}", "--json", str(build_json)]
        hls_s = run_sqz(hls)
        # the script's own scratch build folder: a previous design's build there is refused by sqz build
        shutil.rmtree(ROOT / "runs" / "bitstreams_cifar" / board, ignore_errors=True)
        build_s = run_sqz(build)
        # the host driver under the real pynq on the simulated board, over the dry-run bitstream folder
        infers, infer_cmds = {}, []
        for run, sim, extra_infer in (("emulator", "emulator", []),
                                      ("csim", "csim", ["--project", f"runs/hls_cifar_{board}", "--limit",
                                                        str(args.infer_csim)]),
                                      ("emulator_mirror", "emulator", ["--mirror"])):   # two frames per image
            infer_json, rows_csv = out / f"infer_{board}_{run}.json", f"runs/infer_cifar_{board}_{run}.csv"
            cmd = ["infer", "--bitstream", f"runs/bitstreams_cifar/{board}", "--data", CIFAR, "--sim", sim,
                   *extra_infer, "--json", str(infer_json), "--results", rows_csv]
            (ROOT / rows_csv).unlink(missing_ok=True)      # a fresh run, not a resumed one
            seconds = run_sqz(cmd)
            r = json.loads(infer_json.read_text())
            infers[run] = {k: r[k] for k in ("n", "top1", "top5", "bit_exact", "bit_exact_of", "emulator_top1",
                                              "frames_per_s", "frames_per_s_source", "passes", "images_per_s",
                                              "estimated_board_images_per_s")} | {"wall_s": seconds}
            infer_cmds.append("python -m sqz " + " ".join(cmd))
        h, b = json.loads(hls_json.read_text()), json.loads(build_json.read_text())
        e = h["estimate"]
        budget = get_board(board).budget()
        util = {k: round(100 * e[k] / budget[k], 1) for k in ("dsp", "bram18", "lut")}
        rows[board] = {"spec": specs[board], "estimate": e, "utilisation_percent": util, "fits": h["fits"],
                       "budget": h["budget"], "csim": h["csim"],
                       "reuse": h["reuse"], "build": {"built": b["built"], "steps": b["steps"]},
                       "infer_sim": infers,
                       "commands": ["python -m sqz " + " ".join(hls), "python -m sqz " + " ".join(build), *infer_cmds],
                       "hls_s": hls_s, "build_s": build_s}
        c = h["csim"]
        print(f"{board}: {e['fps']:.0f} fps @ {e['clock_mhz']:g} MHz, DSP {e['dsp']}, BRAM18 {e['bram18']}, LUT {e['lut']}"
              f" ({util})"
              f" (fits {h['fits']}); C simulation {c['bit_exact']}/{c['n']} bit-exact; build: built={b['built']}; "
              + "; ".join(f"simulated board ({run}): {100 * r['top1']:.2f} % of {r['n']}, {r['bit_exact']}/"
                          f"{r['bit_exact_of']} bit-exact" for run, r in infers.items()),
              flush=True)
    (out / "hw.json").write_text(json.dumps({"what": __doc__.splitlines()[0], "model": args.model, "specs": specs,
                                             "boards": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
