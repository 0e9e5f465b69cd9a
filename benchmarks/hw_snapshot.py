"""Fingerprint of everything hw/ generates, to prove a refactoring changed nothing it did not mean to.

    .venv/bin/python benchmarks/hw_snapshot.py --out benchmarks/results/hw_snapshot_before.json
    ... change the code ...
    .venv/bin/python benchmarks/hw_snapshot.py --out benchmarks/results/hw_snapshot_after.json \\
        --compare benchmarks/results/hw_snapshot_before.json

Through the CLI only (its JSON is the contract, so the script runs on old and new code alike):
  1. an 8/8 QuantSpec of SqueezeNet v1.0 from `sqz quantize` (calibration: the first 50 images of the
     shipped sample): sha256 of the spec JSON (less the machine-dependent calibration record) and of its
     weight codes;
  2. `sqz hls` for that spec on every board, and for `--bits 8` v1.0 at 227 and v1.1 at 224 on every
     board, plus --weights-in-uram all / none variants: sha256 of every generated C++ / header / tcl
     file (the manifest excluded: its name and layout are allowed to change) and the estimate's
     figures (per layer and total).
With --compare, prints every difference (file hashes, estimate numbers) and exits 1 if any.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

from common import run_sqz

BOARDS = ("pynq-z2", "ultra96-v2", "kv260", "zcu104")
GENERATED = ("*.cpp", "*.h", "*.tcl", "*.sh")
SKIP_DIRS = ("ap_types", "nnet_utils")   # hls4ml's shipped headers: unchanged unless hls4ml changes
SKIP_FILES = ("build_lib.sh",)           # hls4ml's own build script: carries a random LIB_STAMP
EST_KEYS = ("dsp", "bram18", "uram", "lut", "ii_cycles", "fps")
LAYER_KEYS = ("name", "kind", "dsp", "bram18", "uram", "lut", "ii_cycles", "reuse")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def project_files(project: Path) -> dict:
    out = {}
    for pattern in GENERATED:
        for f in sorted(project.rglob(pattern)):
            rel = f.relative_to(project)
            if f.name in SKIP_FILES:
                continue
            if any(part in SKIP_DIRS for part in rel.parts) and f.name not in ("sqz_fire.h", "sqz_pool.h",
                                                                                "sqz_axi.h", "sqz_conv.h",
                                                                                "sqz_common.h"):
                continue
            out[str(rel)] = sha(f)
    bin_ = project / "weights_stream.bin"
    if bin_.exists():
        out["weights_stream.bin"] = sha(bin_)
    return out


def estimate_summary(payload: dict) -> dict:
    layers = []
    for l in payload["layers"]:
        e = l.get("estimate") or {}
        layers.append({k: (e.get(k) if k not in ("name", "kind") else l.get(k, e.get(k))) for k in LAYER_KEYS})
    return {"total": {k: payload["estimate"][k] for k in EST_KEYS}, "fits": payload["fits"],
            "weights_in_uram": payload.get("weights_in_uram", {}).get("layers"), "layers": layers}


def snapshot(work: Path) -> dict:
    out: dict = {"spec": {}, "designs": {}}
    spec = work / "q88" / "spec.json"
    run_sqz(["quantize", "--weight-bits", "8", "--activation-bits", "8", "--calib-stop", "50", "--start", "50",
         "--limit", "8", "--out", str(spec), "--json", str(work / "q88" / "report.json"), "--quiet"])
    data = json.loads(spec.read_text())
    data.pop("calibration", None)
    out["spec"] = {"json": hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest(),
                   "weights": sha(spec.with_name("spec.weights.npz"))}
    cases = [(f"v10-spec-{b}", ["--model", "squeezenet1_0", "--spec", str(spec), "--board", b]) for b in BOARDS]
    cases += [("v10-spec-zcu104-uram-all", ["--model", "squeezenet1_0", "--spec", str(spec), "--board", "zcu104",
                                            "--weights-in-uram", "all"]),
              ("v10-spec-zcu104-uram-none", ["--model", "squeezenet1_0", "--spec", str(spec), "--board", "zcu104",
                                             "--weights-in-uram", "none"])]
    cases += [(f"v10-bits8-{b}", ["--model", "squeezenet1_0", "--bits", "8", "--board", b]) for b in BOARDS]
    cases += [(f"v11-bits8-224-{b}", ["--model", "squeezenet1_1", "--bits", "8", "--input-size", "224",
                                      "--board", b]) for b in BOARDS]
    for name, args in cases:
        project = work / name
        result = work / f"{name}.json"
        run_sqz(["hls", *args, "--out", str(project), "--json", str(result)])
        payload = json.loads(result.read_text())
        out["designs"][name] = {"files": project_files(project), "estimate": estimate_summary(payload)}
        print(f"{name}: {len(out['designs'][name]['files'])} files, "
              f"{payload['estimate']['fps']} fps, LUT {payload['estimate']['lut']}", flush=True)
    return out


def compare(old: dict, new: dict) -> list[str]:
    diffs = []
    if old["spec"] != new["spec"]:
        diffs.append(f"spec: {old['spec']} -> {new['spec']}")
    for name, o in old["designs"].items():
        n = new["designs"].get(name)
        if n is None:
            diffs.append(f"{name}: missing")
            continue
        for f in sorted((set(o["files"]) | set(n["files"])) - set(SKIP_FILES)):
            if o["files"].get(f) != n["files"].get(f):
                diffs.append(f"{name}: file {f} {'changed' if f in o['files'] and f in n['files'] else 'added/removed'}")
        if o["estimate"]["total"] != n["estimate"]["total"] or o["estimate"]["fits"] != n["estimate"]["fits"]:
            diffs.append(f"{name}: estimate {o['estimate']['total']} -> {n['estimate']['total']}")
        ol = {l["name"]: l for l in o["estimate"]["layers"]}
        for l in n["estimate"]["layers"]:
            if ol.get(l["name"]) != l:
                diffs.append(f"{name}: layer {l['name']}: {ol.get(l['name'])} -> {l}")
    return diffs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", help="folder for the generated projects (default: a temporary one)")
    ap.add_argument("--compare", help="an earlier snapshot: print the differences, exit 1 if any")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work) if args.work else Path(tmp)
        snap = snapshot(work)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(snap, indent=1, sort_keys=True) + "\n")
    if args.compare:
        diffs = compare(json.loads(Path(args.compare).read_text()), snap)
        print("\n".join(diffs) if diffs else "identical")
        return 1 if diffs else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
