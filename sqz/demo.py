"""`python -m sqz demo`: the whole flow from the shipped defaults, and the float vs fixed-point report.

    python -m sqz demo [--board zcu104] [--model squeezenet1_0] [--data DIR] [--out demo] [--search]

Each step is one of the project's own commands (printed as it starts, so any of them can be rerun alone)
and writes its files under --out:

    split     sqz split     calibration / evaluation folders, disjoint by image content (sha256)
    quantize  sqz quantize  8/8 QuantSpec (the board's design point: 6/6 on pynq-z2 and ultra96-v2; --bits)
                            from the calibration part; float and fixed top-1/top-5 on the rest
    sweep     sqz quantize  uniform weight widths 16/6/5/4, and 8 when quantize is not 8/8 (activations 8):
                            weight storage vs top-1
    search    sqz quantize  --margin 0.01 (only with --search, about 30 minutes): the Pareto front
    sqnr      sqz sqnr      per-layer error of the fixed-point emulator against float
    hls       sqz hls       HLS project for the board, its estimate, C simulation of a few images
    build     sqz build     the bitstream where Vivado exists, else the build folder and the manifest
    infer     sqz infer     the host driver on the simulated board (emulator behind it)
    report    sqz report    report.html (self-contained) and report.md

A step whose inputs (content hashes of its input files, its command line, the project's code) are those
of its last finished run is reused: its stamp in OUT/steps/<step>.json says so. A board that the model
does not fit is said so before anything runs; the flow then stops after the estimate and the C simulation
(a build or a board run of a design that does not fit would be pretending).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from hw.boards import SMALL_BOARD_LIMITS
from sqz.cli_common import ROOT, CliError, write_json
from sqz.files import file_sha256

SWEEP_WEIGHT_BITS = (16, 8, 6, 5, 4)     # the uniform-width curve; activations stay at 8 bits
SWEEP_ACTIVATION_BITS = 8


@dataclass(frozen=True)
class BoardDefault:
    """The design point a board gets by default: model, uniform width of the quantize step, hls options."""
    model: str
    bits: int = 8
    hls_options: tuple[str, ...] = ()


# Full SqueezeNet does not fit the PYNQ-Z2 or the Ultra96-V2 (BENCHMARKS); squeezenet_cifar (issue 13) does,
# at 6 bits: on the PYNQ-Z2 with the folding held at 900 frames/s (at 8 bits that folding needs LUT 91 %),
# on the Ultra96-V2 the fastest folding within LUT 80 % and BRAM 90 % (the headroom timing closure wants;
# the fastest that fits would take 87 % of the LUTs at 8 bits).
SMALL_BOARD_CEILINGS = ("--max-utilisation", ",".join(f"{k}={v:g}" for k, v in SMALL_BOARD_LIMITS.items()))
BOARD_DEFAULTS = {"pynq-z2": BoardDefault("squeezenet_cifar", 6, ("--fps", "900")),
                  "ultra96-v2": BoardDefault("squeezenet_cifar", 6, SMALL_BOARD_CEILINGS)}
DEFAULT_MODEL = "squeezenet1_0"
SHIPPED_MODELS = ("squeezenet1_0", "squeezenet_cifar", "squeezenet1_1")   # named when a model does not fit
DEFAULT_BITS = 8
CODE_DIRS = ("quant", "hw", "host", "model", "sqz")
CODE_SUFFIXES = {".py", ".h", ".hpp", ".cpp", ".tcl", ".ipynb"}


def hash_paths(paths) -> str:
    """sha256 over files' and folders' content (a folder: every file under it, by relative path; links
    followed, so a split folder hashes the images themselves)."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())
            for f in files:
                h.update(str(f.relative_to(p)).encode() + b"\0" + file_sha256(f).encode())
        elif p.is_file():
            h.update(p.name.encode() + b"\0" + file_sha256(p).encode())
        else:
            h.update(str(p).encode() + b"\0missing")
    return h.hexdigest()


def code_hash() -> str:
    """The project's code (a changed kernel or rule invalidates every step's stamp)."""
    files = [f for d in CODE_DIRS for f in (ROOT / d).rglob("*") if f.suffix in CODE_SUFFIXES and f.is_file()
             and "__pycache__" not in f.parts]
    return hash_paths(files)


@dataclass
class Step:
    name: str
    what: str                      # one line: what it does, shown as it starts
    argv: list[str]                # the command: python -m sqz <argv>
    inputs: list[Path]             # files / folders whose content the result depends on
    outputs: list[Path]            # what must exist for the step to count as done
    owned: list[Path] = field(default_factory=list)   # files / folders of the demo's own making, removed before a rerun

    def command(self) -> str:
        return "python -m sqz " + " ".join(_quote(a) for a in self.argv)


def _quote(arg: str) -> str:
    return arg if arg and all(c.isalnum() or c in "-_./=,:" for c in arg) else json.dumps(arg)


class StepRunner:
    """Runs steps through the CLI, skipping those already done with the same inputs (OUT/steps/*.json)."""

    def __init__(self, out: Path, total: int, quiet: bool = False):
        self.out, self.total, self.quiet = out, total, quiet
        self.stamps = out / "steps"
        self.stamps.mkdir(parents=True, exist_ok=True)
        self.code = code_hash()
        self.done: list[dict] = []

    def key(self, step: Step) -> str:
        return hashlib.sha256(json.dumps({"argv": step.argv, "inputs": hash_paths(step.inputs),
                                          "code": self.code}).encode()).hexdigest()

    def run(self, step: Step) -> dict:
        from sqz.cli import main

        n = len(self.done) + 1
        stamp = self.stamps / f"{step.name}.json"
        key = self.key(step)
        say = (lambda msg: None) if self.quiet else (lambda msg: print(msg, flush=True))
        say(f"\n[{n}/{self.total}] {step.name}: {step.what}\n      $ {step.command()}")
        if stamp.exists() and all(p.exists() for p in step.outputs):
            old = json.loads(stamp.read_text())
            if old.get("key") == key:
                say(f"      reused: same inputs as the run of {old['finished']} ({old['wall_s']:.1f} s then)")
                rec = {**old, "reused": True, "wall_s_now": 0.0}
                self.done.append(rec)
                return rec
        stamp.unlink(missing_ok=True)
        for path in step.owned:          # e.g. the previous build's bitstreams/<board>/: another design's now
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        t0 = time.perf_counter()
        rc = main(step.argv)
        wall = time.perf_counter() - t0
        if rc != 0:
            raise CliError(f"demo step {step.name} failed (exit {rc}): {step.command()}")
        missing = [str(p) for p in step.outputs if not p.exists()]
        if missing:
            raise RuntimeError(f"demo step {step.name} finished without writing {', '.join(missing)}")
        rec = {"step": step.name, "command": step.command(), "key": key, "wall_s": wall, "reused": False,
               "wall_s_now": wall, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
               "outputs": [str(p) for p in step.outputs]}
        tmp = stamp.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec, indent=1) + "\n")
        tmp.replace(stamp)
        say(f"      done in {wall:.1f} s")
        self.done.append(rec)
        return rec


def _board_default(board: str) -> BoardDefault:
    return BOARD_DEFAULTS.get(board, BoardDefault(DEFAULT_MODEL, DEFAULT_BITS))


def board_fit(model: str, board: str, bits: int = DEFAULT_BITS) -> dict:
    """Does the model fit the board by the estimate (uniform formats; the folding and UltraRAM weights
    sqz hls would choose)? Checked before anything runs."""
    from hw.estimate import estimate

    est = estimate(model, board, bits, loadable="auto")
    return {"model": model, "board": board, "fits": est.fits, "fps": est.fps,
            "utilisation": {k: round(v, 1) for k, v in est.utilisation.items()}, "over": list(est.over_budget)}


def fit_and_alternatives(board: str, model: str, bits: int = DEFAULT_BITS) -> tuple[dict, list[dict]]:
    """(the model's fit at `bits`, the other shipped models' fits at theirs): the others are estimated only
    when the model does not fit, so the message can name one that does (or the nearest). The demo keeps the
    model it was given."""
    fit = board_fit(model, board, bits)
    if fit["fits"]:
        return fit, []
    default = _board_default(board)
    return fit, [board_fit(m, board, default.bits if m == default.model else DEFAULT_BITS)
                 for m in SHIPPED_MODELS if m != model]


def plan_steps(args, model: str, fits: bool) -> list[Step]:
    out = Path(args.out)
    data = Path(args.data)
    split_dir = out / "data"
    calib, evald = split_dir / "calib", split_dir / "eval"
    q = out / "quantize"
    spec = q / "spec.json"
    steps = [Step("split", "calibration and evaluation images, disjoint by content (sha256)",
                  ["split", "--data", str(data), "--out", str(split_dir)]
                  + (["--calib-lines", str(args.calib_lines)] if args.calib_lines else []),
                  [data / "labels.txt", data], [split_dir / "split.json"])]
    quantize_common = ["--model", model, "--calib", str(calib), "--data", str(evald)]
    steps.append(Step("quantize", f"{args.bits}-bit weights and activations, calibrated on {calib}; "
                                  f"float and fixed-point accuracy on {evald}",
                      ["quantize", *quantize_common, "--weight-bits", str(args.bits), "--activation-bits",
                       str(args.bits), "--out", str(spec), "--json", str(q / "report.json"),
                       "--plots", str(q / "plots"), "--work", str(q / "work")],
                      [split_dir], [spec, q / "report.json"]))
    for w in args.sweep_bits:
        if w == args.bits == SWEEP_ACTIVATION_BITS:
            continue          # the quantize step is this point of the curve
        d = out / "sweep" / f"w{w}a{SWEEP_ACTIVATION_BITS}"
        steps.append(Step(f"sweep-w{w}", f"uniform {w}-bit weights, {SWEEP_ACTIVATION_BITS}-bit activations: "
                                         f"top-1 and weight storage",
                          ["quantize", *quantize_common, "--weight-bits", str(w), "--activation-bits",
                           str(SWEEP_ACTIVATION_BITS), "--out", str(d / "spec.json"), "--json", str(d / "report.json"),
                           "--plots", str(d / "plots"), "--work", str(d / "work")],
                          [split_dir], [d / "report.json"]))
    if args.search:
        d = out / "search"
        steps.append(Step("search", "--margin 0.01 search of per-layer widths (about 30 minutes): the Pareto front",
                          ["quantize", *quantize_common, "--margin", "0.01", "--out", str(d / "spec.json"),
                           "--json", str(d / "report.json"), "--plots", str(d / "plots"), "--work", str(d / "work")],
                          [split_dir], [d / "report.json"]))
    steps.append(Step("sqnr", "per-layer error of the fixed-point emulator against float (SQNR)",
                      ["sqnr", "--model", model, "--spec", str(spec), "--data", str(evald), "--limit",
                       str(args.sqnr_images), "--json", str(out / "sqnr.json")],
                      [spec, q / "spec.weights.npz", evald], [out / "sqnr.json"]))
    project = out / f"hls_{args.board}"
    default = _board_default(args.board)
    hls_options = list(default.hls_options) if model == default.model else []
    steps.append(Step("hls", f"HLS project for {args.board}, its resource estimate, C simulation of "
                             f"{args.csim} images against the emulator",
                      ["hls", "--model", model, "--spec", str(spec), "--board", args.board, "--out", str(project),
                       "--csim", str(args.csim), "--data", str(evald), "--json", str(out / "hls.json"),
                       *hls_options],
                      [spec, q / "spec.weights.npz", evald], [out / "hls.json"]))
    if fits:
        bits_dir = out / "bitstreams" / args.board
        steps.append(Step("build", "bitstream where Vitis HLS and Vivado are installed; else the build folder, "
                                   "manifest and what to run",
                          ["build", "--project", str(project), "--board", args.board, "--out", str(bits_dir),
                           "--json", str(out / "build.json")],
                          [out / "hls.json", project / "manifest.json"], [out / "build.json"], owned=[bits_dir]))
        steps.append(Step("infer", "the host driver streaming the evaluation images through the simulated board "
                                   "(emulator behind the AXI DMA model)",
                          ["infer", "--bitstream", str(bits_dir), "--data", str(evald), "--sim", "emulator",
                           "--json", str(out / "infer.json"), "--results", str(out / "infer.csv")],
                          [out / "build.json", bits_dir, evald], [out / "infer.json"], owned=[out / "infer.csv"]))
    steps.append(Step("report", "report.html (self-contained) and report.md",
                      ["report", "--run", str(out)],
                      # what the report reads; a step that did not run hashes as missing
                      [out / "quantize", out / "sqnr.json", out / "hls.json", out / "demo_plan.json", out / "sweep",
                       out / "search", out / "build.json", out / "infer.json"],
                      [out / "report.html", out / "report.md"]))
    return steps


def add_commands(sub) -> None:
    from hw.boards import BOARDS

    p = sub.add_parser("demo", help="the whole flow on the shipped defaults: quantize, HLS + C simulation, build, "
                                    "simulated board, float vs fixed-point report")
    p.add_argument("--board", default="zcu104", help=f"{', '.join(BOARDS)} (default zcu104)")
    p.add_argument("--model", default=None, help="default: squeezenet1_0; squeezenet_cifar on pynq-z2 and ultra96-v2 "
                                                 "(full SqueezeNet does not fit them)")
    p.add_argument("--data", default=None,
                   help="image folder (default: the model's shipped sample, split in halves: data/imagenet_sample "
                        "or data/cifar10_sample); another folder (the CIFAR-10 folder of ../shared/data: its 10,000 "
                        "test images) calibrates on its first 300 lines and evaluates on the rest")
    p.add_argument("--calib-lines", type=int, help="calibration lines of --data (default: half a shipped sample, "
                                                   "else 300)")
    p.add_argument("--out", default=str(ROOT / "demo"), help="folder for every step's files (default: demo/)")
    p.add_argument("--bits", type=int, default=None, help="uniform width of weights and activations in the "
                   "quantize step (default: the board's design point: 6 on pynq-z2 and ultra96-v2, else 8)")
    p.add_argument("--csim", type=int, default=4, help="images to C-simulate (default 4)")
    p.add_argument("--sqnr-images", type=int, default=16, help="images for the per-layer SQNR (default 16)")
    p.add_argument("--sweep-bits", type=_bits_list, default=SWEEP_WEIGHT_BITS, metavar="W,W,...",
                   help="weight widths of the uniform sweep (default 16,8,6,5,4; activations 8 bits)")
    p.add_argument("--search", action="store_true", help="also the --margin 0.01 search (about 30 minutes)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)


def _bits_list(text: str) -> tuple[int, ...]:
    try:
        bits = tuple(int(b) for b in text.split(",") if b.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected widths like 16,8,6, got {text!r}") from None
    if not bits or any(not 2 <= b <= 32 for b in bits):
        raise argparse.ArgumentTypeError(f"widths must be 2..32, got {text!r}")
    return bits


def resolve_design_point(args) -> str:
    """The model the demo runs (--model, else the board's default) and, in args.bits, its width (--bits,
    else the board's design point for its default model, else 8)."""
    default = _board_default(args.board)
    model = args.model or default.model
    if args.bits is None:
        args.bits = default.bits if model == default.model else DEFAULT_BITS
    if not 2 <= args.bits <= 16:
        raise CliError(f"--bits {args.bits}: must be 2..16")
    return model


def cmd_demo(args) -> int:
    from hw.boards import get_board
    from model.architecture import get_architecture

    from sqz.cli_common import default_data

    args.board = get_board(args.board).name
    model = resolve_design_point(args)
    get_architecture(model)
    args.data = args.data or default_data(model)
    if not Path(args.data).is_dir():
        raise CliError(f"--data {args.data}: no such folder")
    out = Path(args.out)
    _check_out(out)
    t0 = time.perf_counter()
    fit, others = fit_and_alternatives(args.board, model, args.bits)
    if not fit["fits"]:
        over = ", ".join(f"{k.upper()} {fit['utilisation'][k]:.0f} %" for k in fit["over"])
        fitting = [o["model"] for o in others if o["fits"]]
        nearest = min([fit] + others, key=lambda f: max(f["utilisation"].values()))
        print(f"NOTE: {model} does not fit {args.board} by the estimate at any folding sqz chooses "
              f"(over budget: {over}). "
              + (f"Models that fit: {', '.join(fitting)}. " if fitting else
                 f"No shipped model fits it; the nearest is {nearest['model']} "
                 f"(largest utilisation {max(nearest['utilisation'].values()):.0f} %). ")
              + "Continuing with what is meaningful for a design that does not fit: quantization, the estimate "
                "and the C simulation; no build and no board run.", flush=True)
    else:
        print(f"{model} fits {args.board} by the estimate (uniform {args.bits}-bit formats; the hls step "
              f"estimates the calibrated design): {fit['fps']:.1f} frames/s, "
              + ", ".join(f"{k.upper()} {v:.0f} %" for k, v in fit["utilisation"].items() if v), flush=True)
    plan = {"model": model, "board": args.board, "bits": args.bits, "data": str(Path(args.data).resolve()), "fit": fit,
            "other_models": others, "search": bool(args.search), "csim_images": args.csim}
    out.mkdir(parents=True, exist_ok=True)
    _write_if_changed(out / "demo_plan.json", plan)
    steps = plan_steps(args, model, fit["fits"])
    runner = StepRunner(out, len(steps), quiet=args.quiet)
    for step in steps:
        runner.run(step)
    total = time.perf_counter() - t0
    summary = {**plan, "steps": runner.done, "wall_s": total, "report": {"html": str(out / "report.html"),
                                                                         "markdown": str(out / "report.md")}}
    write_json(str(out / "demo.json"), summary)
    print(f"\ndemo finished in {total:.1f} s ({sum(1 for s in runner.done if s['reused'])} of {len(steps)} steps "
          f"reused). Report: {out / 'report.html'} (and report.md)")
    return 0


def _write_if_changed(path: Path, payload: dict) -> None:
    text = json.dumps(payload, indent=1, sort_keys=True) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _check_out(out: Path) -> None:
    """--out must be empty, or a demo folder of an earlier run (never someone else's files)."""
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "steps").is_dir() and not (out / "demo_plan.json").exists():
        raise CliError(f"--out {out}: holds other files (not a demo folder); give an empty or new folder")


__all__ = ["cmd_demo", "add_commands", "hash_paths", "StepRunner", "Step", "plan_steps", "resolve_design_point",
           "BOARD_DEFAULTS"]
