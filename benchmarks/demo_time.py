"""Wall time of `python -m sqz demo`, first run and second run, per step (issue 12).

    .venv/bin/python benchmarks/demo_time.py [--board zcu104] [--data DIR] [--out DIR] [--json OUT.json]

Each run is the real command in a fresh Python process (`python -m sqz demo ...`), the first on an empty
--out folder, the second on the same folder (every step should be reused). The per-step times are the
demo's own (demo.json); the totals include the interpreter's start-up and imports. With --data
../shared/data/imagenet_val1300 the same script gives the full-set report (its accuracy table is copied
from the report's source, quantize/report.json).
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from common import ROOT, results_path, run_sqz, write_results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--board", default="zcu104")
    ap.add_argument("--data", help="default: the shipped sample")
    ap.add_argument("--out", default=str(ROOT / "runs" / "demo_time"))
    ap.add_argument("--keep", action="store_true", help="do not empty --out first (measures a resumed run)")
    ap.add_argument("--json", default=results_path("demo_time"))
    ap.add_argument("--screenshot", help="also save a headless-Chromium screenshot of the report here")
    ap.add_argument("--from-run", action="store_true",
                    help="run nothing: record the finished demo run in --out (its demo.json) as the first run")
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists() and not args.keep and not args.from_run:
        shutil.rmtree(out)
    argv = ["--board", args.board, "--out", str(out), "--quiet"] + (["--data", args.data] if args.data else [])
    runs = []
    for which in (("first",) if args.from_run else ("first", "second")):
        if args.from_run:
            total = json.loads((out / "demo.json").read_text())["wall_s"]   # the demo's own clock
        else:
            total = run_sqz(["demo", *argv])
        demo = json.loads((out / "demo.json").read_text())
        steps = {s["step"]: {"wall_s": round(s["wall_s_now"], 2), "reused": s["reused"]} for s in demo["steps"]}
        runs.append({"run": which, "total_s": round(total, 1), "steps": steps})
        print(f"{which} run: {total:.1f} s; " + ", ".join(f"{k} {v['wall_s']:.1f} s" + (" (reused)" if v["reused"]
                                                                                        else "")
                                                         for k, v in steps.items()))
    q = json.loads((out / "quantize" / "report.json").read_text())
    data = Path(demo["data"])
    data = str(data.relative_to(ROOT)) + " (shipped)" if data.is_relative_to(ROOT) else str(data)
    figures = {"board": args.board, "model": demo["model"], "bits": demo.get("bits"), "data": data, "runs": runs,
               "accuracy": {"n": q["n"], "float": q["float"], "fixed": q["fixed"],
                            "calibration_images": q["calibration"]["images"]},
               "report": str(out / "report.html")}
    if (out / "infer.json").exists():
        inf = json.loads((out / "infer.json").read_text())
        figures["infer"] = {k: inf.get(k) for k in ("n", "top1", "top5", "bit_exact", "frames_per_s")}
    hls = json.loads((out / "hls.json").read_text())
    figures["csim"] = hls.get("csim") and {k: hls["csim"][k] for k in ("n", "bit_exact")}
    if args.screenshot:
        figures["screenshot"] = screenshot(out / "report.html", Path(args.screenshot))
    write_results(args.json, figures)


def screenshot(page: Path, png: Path) -> str:
    """Full-page screenshot of the report in headless Chromium (the same browser the test uses)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,1200"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        driver.get(page.resolve().as_uri())
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1000, min(height + 50, 16000))
        png.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(png))
    finally:
        driver.quit()
    from PIL import Image

    with Image.open(png) as img:                 # 256 colours: the committed file stays small
        small = img.convert("RGB").quantize(256)
    small.save(png, optimize=True)
    return str(png)


if __name__ == "__main__":
    main()
