"""The build for all four boards as far as this machine can go: generate SqueezeNet's HLS project per board,
check its Vitis HLS / Vivado scripts under a real Tcl interpreter against the real .hwh files
(hw/tclcheck.py), and run `sqz build` (hw/build.py), which without the tools writes bitstreams/<board>/ with
no bitstream and says what to run where Vivado is.

    .venv/bin/python benchmarks/build_dryrun.py [--model squeezenet1_1 --bits 8 --input-size 224]
                                                [--work runs/build_dryrun] [--json benchmarks/results/build_dryrun.json]

Per board: the estimate the generated design would reach (ESTIMATE, provisional), the tcl check's verdict,
the steps `sqz build` ran, and the files it wrote. Through the CLI (`sqz hls`, `sqz build`), so the
figures are the commands' own.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import ROOT, run_sqz

BOARDS = ("pynq-z2", "ultra96-v2", "kv260", "zcu104")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="squeezenet1_1")
    ap.add_argument("--bits", default="8")
    ap.add_argument("--input-size", default="224")
    ap.add_argument("--work", default=str(ROOT / "runs" / "build_dryrun"))
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "build_dryrun.json"))
    args = ap.parse_args()
    from host.manifest import Manifest
    from hw.boards import get_board
    from hw.tclcheck import check_project

    work = Path(args.work)
    rows = []
    for board in BOARDS:
        t0 = time.perf_counter()
        project, out = work / f"project_{board}", work / "bitstreams" / board
        run_sqz(["hls", "--model", args.model, "--bits", args.bits, "--input-size", args.input_size, "--board", board,
                 "--out", str(project), "--json", str(work / f"hls_{board}.json")])
        hls = json.loads((work / f"hls_{board}.json").read_text())
        problems = check_project(project, get_board(board), hls["estimate"]["clock_mhz"])
        run_sqz(["build", "--project", str(project), "--board", board, "--out", str(out),
                 "--json", str(work / f"build_{board}.json")])
        built = json.loads((work / f"build_{board}.json").read_text())
        m = Manifest.load(out)
        row = {"board": board, "model": args.model, "bits": int(args.bits), "input_size": int(args.input_size),
               "estimate": hls["estimate"], "fits": hls["fits"], "loadable": hls["weights_in_uram"]["layers"],
               "tcl_check": "passed" if not problems else problems, "build_steps": built["steps"],
               "built": built["built"], "bitstream": built["bitstream"], "bit_sha256": m.bit_sha256,
               "out_files": sorted(p.name for p in out.iterdir()), "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        e = hls["estimate"]
        print(f"{board:<11} estimate {e['fps']:>7.1f} fps  LUT {e['lut']:>7}  BRAM18 {e['bram18']:>4}  "
              f"URAM {e['uram']:>3}  fits {str(hls['fits']):<5} tcl check: "
              f"{'passed' if not problems else f'{len(problems)} problem(s)'}  build: "
              f"{'built' if built['built'] else 'not run (no Vivado here)'}  -> {', '.join(row['out_files'])}",
              flush=True)
        for p in problems:
            print(f"    {p}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    print(f"figures written to {args.json}")
    return 0 if all(r["tcl_check"] == "passed" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
