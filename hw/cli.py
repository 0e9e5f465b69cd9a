"""`python -m sqz hls`: generate the HLS project for a board, estimate it, optionally C-simulate it.

    python -m sqz hls --model squeezenet1_0 --spec SPEC.json --board zcu104 --out DIR \\
                      [--csim N --data DIR] --json OUT.json
    python -m sqz hls --model squeezenet1_1 --bits 8 --board pynq-z2 --out DIR --json OUT.json

--bits W generates uniform W-bit formats instead of a calibrated spec (enough for estimates); with it,
--input-size PX sets another input size (e.g. 224 for v1.1, the issue-4 figure).
squeezenet1_1 ships without trained weights: its project gets seeded random placeholder weights (the
structure, formats and estimates are real; the weights are not) and cannot be C-simulated.
Reuse factors come from hw.estimate.choose_reuse: by default the fastest folding whose estimate fits the
board; with a budget, the folding for a target --fps or the fastest within --max-dsp DSP slices (both:
the slower of the two); or from a JSON file {layer: R} (--reuse). OUT.json: {"board", "csim": {"n",
"bit_exact", ...}, "estimate": {"dsp", "bram18", "uram", "lut", "ii_cycles", "clock_mhz", "fps"}, "fits",
"budget", "estimate_assumptions", "layers": [...], ...}. Every resource and speed figure is an ESTIMATE
(hw/estimate.py, before synthesis; "estimate_source": "estimate").

--weights-in-uram auto|none|all|NAME[,NAME] (default auto): the ops whose weights sqz generates in
runtime-written UltraRAM arrays, loaded at start-up through the AXI top's mode 1 (the stream is
DIR/weights_stream.bin): 1x1 convolutions (conv10, sqz::conv1x1_rw) and Fire modules (sqz::fire; every
part folded with R > 1), named by op (conv10, fire2, ...). auto: on boards with UltraRAM, only when the
design's block RAM would otherwise be over budget (at the folding being considered); all: every op with a
weight memory; none: every weight a bitstream-initialised ROM. hw.estimate.choose_loadable decides it for
both the generated project and the estimate (OUT.json "weights_in_uram").
--assume-weight-load-path additionally lets the estimate (and the folding) put the REMAINING weight ROMs
(conv1's) in UltraRAM. sqz generates no load path for those -- UltraRAM cannot be initialised from the
bitstream -- so that estimate describes a design sqz does not generate; it is labelled as such.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from sqz.cli_common import require_labels, write_json
from sqz.errors import SqzError


class HlsCliError(SqzError, ValueError):
    """A user error of `sqz hls` (the main CLI prints it and exits 2)."""


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("hls", help="HLS project (hls4ml + sqz kernels) for a board: estimate, C simulation")
    p.add_argument("--model", default="squeezenet1_0", help="squeezenet1_0 or squeezenet_cifar (trained), or squeezenet1_1 / "
                                                          "squeezenet_cifar_<v> (architecture)")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--spec", help="QuantSpec JSON (from sqz quant / quant.calibrate.make_spec)")
    group.add_argument("--bits", type=int, help="uniform W-bit formats instead of a spec (estimates only)")
    p.add_argument("--board", default="zcu104", help="pynq-z2, ultra96-v2, kv260 or zcu104")
    p.add_argument("--out", required=True, help="project folder (reused when nothing changed)")
    p.add_argument("--reuse", help="JSON file {layer name: reuse factor}; default: hw.estimate.choose_reuse")
    p.add_argument("--fps", type=float, help="target frames/s for the automatic folding")
    p.add_argument("--max-dsp", type=int, metavar="N",
                   help="DSP budget for the automatic folding: the fastest folding whose DSP estimate is <= N")
    p.add_argument("--max-utilisation", metavar="F|RES=F,...",
                   help="the automatic folding's ceiling per resource, as a fraction of the board's: one for all "
                        "(0.8) or per resource (lut=0.8,bram18=0.9; the others stay 1.0), e.g. headroom for timing "
                        "closure; default 1.0. With --fps or --max-dsp the folding is theirs and the ceiling is "
                        "only checked (budget met)")
    p.add_argument("--weights-in-uram", default="auto", metavar="auto|none|all|NAMES",
                   help="ops (conv10, Fire modules) generated with weights in UltraRAM, loaded at start-up through "
                        "the AXI top (mode 1, DIR/weights_stream.bin): auto (default: boards with UltraRAM, when "
                        "block RAM is over budget), none, all, or comma-separated op names (conv10,fire9)")
    p.add_argument("--assume-weight-load-path", action="store_true",
                   help="estimate with the REMAINING weight ROMs (conv1's) in UltraRAM too, ASSUMING a start-up "
                        "weight-load path that sqz does not generate for them; labelled in the output")
    p.add_argument("--clock", type=float, help="clock in MHz (default: the board's)")
    p.add_argument("--input-size", type=int, metavar="PX",
                   help="input height = width (default: the model's, 227); other sizes only with --bits "
                        "(a calibrated spec's average pool is for its own size), e.g. 224 for v1.1")
    p.add_argument("--csim", type=int, default=0, metavar="N", help="C-simulate N images against the emulator")
    p.add_argument("--data", help="ImageNet-style folder with labels.txt for --csim, or the CIFAR-10 folder "
                                  "(its test images)")
    p.add_argument("--start", type=int, default=None, help="first labels.txt line for --csim (0-based)")
    p.add_argument("--workers", type=int, default=None, help="C-simulation processes (default: one per core)")
    p.add_argument("--json", help="write the result here")
    p.set_defaults(func=cmd_hls)

    b = subparsers.add_parser("build", help="HLS project -> bitstreams/<board>/: C synthesis, block design, bitstream "
                                            "where Vitis HLS and Vivado are installed; the manifest and scripts anyway")
    b.add_argument("--project", required=True, help="project folder written by sqz hls --out")
    b.add_argument("--board", required=True, help="the board the project was generated for")
    b.add_argument("--out", help="output folder (default: bitstreams/BOARD)")
    b.add_argument("--step-timeout", type=float, default=None, metavar="S",
                   help="deadline of each tool step in seconds (default: 12 h)")
    b.add_argument("--json", help="write the result here")
    b.set_defaults(func=cmd_build)


def cmd_build(args) -> int:
    """`sqz build` (hw/build.py): prints what it ran, or what to run where the tools are."""
    from hw.build import STEP_TIMEOUT_S, build

    if args.step_timeout is not None and not args.step_timeout > 0:
        raise HlsCliError(f"--step-timeout must be > 0, got {args.step_timeout}")
    result = build(args.project, args.board, args.out, step_timeout_s=args.step_timeout or STEP_TIMEOUT_S)
    for step, state in result.steps.items():
        print(f"{step:<7} {state}")
    if result.built:
        print(f"bitstream: {result.bitstream} (+ {result.hwh.name}); manifest: {result.out / 'manifest.json'}")
    else:
        print(result.instructions)
        print(f"written (no bitstream): {result.out / 'manifest.json'} with bit_sha256 = null")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result.to_json(), indent=1) + "\n")
    return 0


def _weights(arch, model_name: str, csim: bool):
    """(conv name -> (weight OIHW, bias), note): the trained weights, or seeded placeholders."""
    from model.trained import has_trained_weights, trained_params, weights_path

    if model_name == "squeezenet1_0":
        return trained_params(model_name), "trained (Deep Compression)"
    if has_trained_weights(model_name):
        return trained_params(model_name), f"trained ({weights_path(model_name).name})"
    if csim:
        raise HlsCliError(f"--csim needs trained weights; none ship for {model_name} (only squeezenet1_0 and "
                          f"the models with model/weights/<name>.npz)")
    rng = np.random.default_rng(0)
    params = {}
    for name, t in arch.conv_shapes().items():
        o, i, kh, kw = t["weight"]
        params[name] = ((rng.standard_normal(t["weight"]) * np.sqrt(2.0 / (i * kh * kw))).astype(np.float32),
                        np.zeros(o, np.float32))
    return params, "random placeholders (architecture only; seed 0)"


def _reuse(args, arch, board, spec, loadable) -> dict:
    if args.reuse and (args.fps is not None or args.max_dsp is not None or args.max_utilisation is not None):
        raise HlsCliError("--reuse sets every reuse factor by hand; --fps / --max-dsp / --max-utilisation choose "
                          "them automatically: give one or the other")
    if args.reuse:
        try:
            reuse = json.loads(Path(args.reuse).read_text())
        except OSError as e:
            raise HlsCliError(f"--reuse {args.reuse}: cannot read ({e.strerror})") from None
        except json.JSONDecodeError as e:
            raise HlsCliError(f"--reuse {args.reuse}: not valid JSON ({e})") from None
        if not isinstance(reuse, dict):
            raise HlsCliError(f"--reuse {args.reuse}: expected an object {{layer name: reuse factor}}")
        return reuse
    return None     # plan_design folds its own op list (hw.estimate.fold), with _fold(args)


def _fold(args, max_utilisation) -> dict:
    """hw.estimate.fold's options from the command line: the folding plan_design chooses."""
    return {"fps": args.fps, "max_dsp": args.max_dsp, "uram": _uram(args), "utilisation_limit": max_utilisation}


def parse_max_utilisation(text: str | None) -> float | dict[str, float]:
    """--max-utilisation: '0.8' (every resource) or 'lut=0.8,bram18=0.9' (named ones; the rest 1.0)."""
    from hw.estimate import RESOURCES

    if text is None:
        return 1.0

    def fraction(value: str, what: str) -> float:
        try:
            f = float(value)
        except ValueError:
            raise HlsCliError(f"--max-utilisation {text!r}: {what} {value!r} is not a number") from None
        if not 0 < f <= 1:
            raise HlsCliError(f"--max-utilisation {text!r}: {what} must be a fraction in (0, 1], got {f:g}")
        return f
    if "=" not in text:
        return fraction(text, "the limit")
    limits = {}
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep or name not in RESOURCES:
            raise HlsCliError(f"--max-utilisation {text!r}: expected RES=F with RES one of {', '.join(RESOURCES)}, "
                              f"got {item!r}")
        limits[name] = fraction(value, name)
    return limits


def _uram(args) -> str:
    return "auto" if args.assume_weight_load_path else "none"


def _loadable(args):
    return parse_weights_in_uram(args.weights_in_uram)


def parse_weights_in_uram(text: str):
    """--weights-in-uram: a policy of hw.estimate.choose_loadable, or a tuple of op names."""
    from hw.estimate import LOADABLE_POLICIES

    value = text.strip()
    if value in LOADABLE_POLICIES:
        return value
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    if not names:
        raise HlsCliError(f"--weights-in-uram {text!r}: give auto, none, all or layer names")
    return names


def cmd_hls(args) -> int:
    from hw import scripts
    from hw.boards import get_board
    from hw.convert import plan_design, uniform_spec
    from hw.estimate import utilisation_ceilings
    from model.architecture import ArchitectureError, get_architecture
    from model.squeezenet import build_keras, keras_weights
    from quant.spec import QuantSpec

    arch = get_architecture(args.model)
    board = get_board(args.board)
    if args.csim < 0:
        raise HlsCliError(f"--csim must be >= 0, got {args.csim}")
    if args.max_dsp is not None and args.max_dsp < 1:
        raise HlsCliError(f"--max-dsp must be >= 1, got {args.max_dsp}")
    if args.fps is not None and not args.fps > 0:
        raise HlsCliError(f"--fps must be > 0, got {args.fps}")
    max_utilisation = parse_max_utilisation(args.max_utilisation)     # checked before any work
    if args.csim and args.bits is not None:
        raise HlsCliError("--csim needs a calibrated --spec (uniform --bits formats are for estimates only)")
    if args.csim and not args.data:
        raise HlsCliError("--csim needs --data (a folder with labels.txt)")
    if args.csim:
        args.data = require_labels(args.data)
    if args.input_size is not None and args.input_size != arch.input_size:
        if args.bits is None or args.csim:
            raise HlsCliError(f"--input-size {args.input_size}: only with --bits and without --csim (a calibrated "
                              f"spec and the C simulation are for {arch.name}'s {arch.input_size} px)")
        try:
            arch.shapes(args.input_size)
        except ArchitectureError as e:
            raise HlsCliError(f"--input-size {args.input_size}: {e}") from None
    if args.spec:
        spec = QuantSpec.load(args.spec, arch)
        if spec.model != arch.name:
            raise HlsCliError(f"--spec {args.spec} is for {spec.model}, not {arch.name}")
    else:
        spec = uniform_spec(arch, args.bits, args.input_size)
    params, weights_note = _weights(arch, args.model, bool(args.csim))
    params = spec.effective_params(params)      # the spec's optimized (e.g. GPTQ) weight codes, if it has them

    t0 = time.perf_counter()
    loadable = _loadable(args)
    reuse = _reuse(args, arch, board, spec, loadable)   # None: plan_design folds
    keras_model = build_keras(arch, args.input_size, softmax=False, weights=keras_weights(params))
    design = plan_design(keras_model, spec, arch, reuse=reuse, board=board, clock_mhz=args.clock,
                         weights_note=weights_note, loadable=loadable, fold=None if reuse else _fold(args, max_utilisation))
    from hw.project import build_project

    project = build_project(design, args.out, compile=bool(args.csim))
    build_s = time.perf_counter() - t0

    est = design.estimate(uram=_uram(args))      # the design's own op list
    budget = None
    if args.fps is not None or args.max_dsp is not None or args.max_utilisation is not None:
        ceilings = utilisation_ceilings(max_utilisation)
        met = ((args.fps is None or est.fps >= args.fps) and (args.max_dsp is None or est.dsp <= args.max_dsp)
               and all(est.utilisation[k] <= ceilings[k] for k in est.utilisation))
        budget = {"fps": args.fps, "max_dsp": args.max_dsp, "met": met,
                  "max_utilisation_percent": {k: round(v, 1) for k, v in ceilings.items()}}
    csim = _csim(args, arch, params, spec, project) if args.csim else None

    print(f"{arch.name} -> {project.path} ({'reused: nothing changed' if project.cache_hit else 'generated'}, "
          f"{build_s:.1f} s; weights: {weights_note})")
    print(est.table())
    if budget is not None:
        print("budget: " + ", ".join([f"{k} {v:g}" for k, v in (("fps >=", args.fps), ("DSP <=", args.max_dsp))
                                       if v is not None]
                                      + [f"{k.upper()} <= {v:g} %" for k, v in budget["max_utilisation_percent"].items()
                                         if v < 100])
              + f" -> {'met' if budget['met'] else 'NOT met'} by the estimate ({est.fps:.1f} fps, {est.dsp} DSP)")
    if design.loadable:
        print(f"weights of {', '.join(design.loadable)} in UltraRAM: send {project.path / 'weights_stream.bin'} "
              f"with the top's mode = 1 before the first frame (layout: manifest.json weight_load)")
    if est.assumptions:
        print("NOTE: the folding and the estimate above assume a weight-load path for more weights than the generated "
              "project loads (its other weight ROMs are bitstream-initialised: block RAM or LUTs)")
    if csim:
        print(f"C simulation: {csim['bit_exact']} / {csim['n']} images bit-exact against the emulator "
              f"({csim['mismatched_logits']} mismatched logits), {csim['seconds_per_image']:.1f} s/image")
    print(scripts.instructions(project.path))

    payload = est.to_json()
    est_layers = {l["name"]: l for l in payload.pop("layers")}
    layers = []
    for plan in design.layers:
        entry = plan.to_json()
        entry["estimate"] = est_layers.pop(plan.name, None)
        layers.append(entry)
    layers += [{"name": n, "kind": l["kind"], "estimate": l} for n, l in est_layers.items()]  # e.g. the shell
    payload.update({
        "model": arch.name, "weights": weights_note, "spec": str(Path(args.spec).resolve()) if args.spec else None,
        "bits": args.bits, "project": str(project.path.resolve()), "cache_hit": project.cache_hit,
        "build": {"seconds": build_s, **project.times}, "reuse": design.reuse,
        "reuse_changes": {k: list(v) for k, v in design.reuse_changes.items()},
        "csim": csim, "layers": layers, "estimate_source": est.source, "budget": budget,
        "weights_in_uram": {"policy": args.weights_in_uram, "layers": list(design.loadable),
                            "weight_stream": (str((project.path / "weights_stream.bin").resolve())
                                              if design.loadable else None)},
        "vivado": {"tools": scripts.tools_available(), "instructions": scripts.instructions(project.path)},
    })
    write_json(args.json, payload)
    return 0


def _csim(args, arch, params, spec, project) -> dict:
    from quant.emulator import FixedPointEmulator
    from sqz.cli_common import image_dataset

    emulator = FixedPointEmulator(arch, params, spec)
    sim = project.simulator(workers=args.workers)
    dataset = image_dataset(args.data, arch, limit=args.csim, start=args.start)
    if dataset.size != arch.input_size:
        raise HlsCliError(f"--data images are {dataset.size} px, {arch.name} takes {arch.input_size}")
    n = exact = mismatched = top1 = 0
    seconds = []
    for x, labels, _ in dataset.batches(max(sim.workers, 1)):
        hw = sim.logit_codes(x)
        ref = emulator.logit_codes(x)
        seconds += sim.seconds_per_image.tolist()
        n += len(x)
        exact += int(np.sum(np.all(hw == ref, axis=1)))
        mismatched += int(np.count_nonzero(hw != ref))
        top1 += int(np.sum(np.argmax(hw, axis=1) == labels))
    return {"n": n, "bit_exact": exact, "mismatched_logits": mismatched, "top1": top1 / n if n else None,
            "seconds_per_image": float(np.mean(seconds)) if seconds else None, "workers": sim.workers,
            "data": str(Path(args.data).resolve()), "start": args.start}
