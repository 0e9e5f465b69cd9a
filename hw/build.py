"""`sqz build`: from a generated HLS project to `bitstreams/<board>/` -- bitstream, .hwh and manifest.

    result = build(project_dir, board, out_dir, log=print)

Steps, run in the project folder with the scripts hw/scripts.py wrote there:
  hls     C synthesis of sqz_top and its export as IP      vitis_hls -f sqz_hls.tcl
                                                           (or: vitis-run --mode hls --tcl sqz_hls.tcl)
  vivado  block design, implementation, bitstream          vivado -mode batch -source sqz_vivado.tcl
          -> bitstream/sqz.bit and bitstream/sqz.hwh
Each step streams its tool's log (to the terminal, with the elapsed time, and to build/<step>.log), stops
with the tool's own first ERROR line when it fails, and leaves a stamp (build/<step>.done, holding the
project's content key) when it succeeds: a rerun skips the steps done for this project. Every step has a
deadline (--step-timeout); past it the tool is killed and the step fails, saying so.

Then OUT (default bitstreams/<board>/) receives, whether or not the tools ran, what the host driver needs:
  manifest.json          the project's manifest (host/manifest.py) with bit_sha256 (None: no bitstream)
  spec.json, spec.weights.npz   the QuantSpec and its weight codes (the driver's bit-exact check needs them)
  weights_stream.bin     designs with loadable weights: the load-mode stream
  <model>.bit, <model>.hwh   only when this build made them (the same stem: PYNQ's Overlay finds the
                         .hwh beside the .bit)
written into a staging folder and swapped in whole, so a failed run never leaves OUT looking complete.
Where the tools are absent, nothing is run: the project folder gets build.sh (the same two steps, with
the same stamps) and the output says exactly what to run on a machine with Vivado. No bitstream is ever
reported that this build did not make.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hw.scripts import HLS_SCRIPT, VIVADO_SCRIPT
from sqz.errors import SqzError

BITSTREAM_DIR = "bitstream"        # where sqz_vivado.tcl puts sqz.bit / sqz.hwh (hw/scripts.py)
BUILD_DIR = "build"
BUILD_SCRIPT = "build.sh"
STEP_TIMEOUT_S = 12 * 3600         # a SqueezeNet implementation takes hours, not days
COPIED = ("spec.json", "spec.weights.npz", "weights_stream.bin")


class BuildError(SqzError):
    """A build that cannot start or a step that failed; the message names the step and the tool's error."""


@dataclass
class Step:
    name: str
    command: list[str]
    outputs: tuple[str, ...]       # files the step must leave behind (relative to the project)


@dataclass
class BuildResult:
    project: Path
    out: Path
    board: str
    built: bool                            # did this run (or an earlier one) make the bitstream
    bitstream: Path | None
    hwh: Path | None
    steps: dict = field(default_factory=dict)   # step -> "done" | "skipped (done before)" | "not run"
    tools: dict = field(default_factory=dict)
    instructions: str = ""
    comparison: list = field(default_factory=list)   # estimate vs report rows, where reports were read
    layer_comparison: list = field(default_factory=list)   # the same per layer (C-synthesis modules)

    def to_json(self) -> dict:
        return {"project": str(self.project), "out": str(self.out), "board": self.board, "built": self.built,
                "bitstream": str(self.bitstream) if self.bitstream else None,
                "hwh": str(self.hwh) if self.hwh else None, "steps": self.steps, "tools": self.tools,
                "instructions": self.instructions or None, "estimate_vs_reports": self.comparison,
                "layers_estimate_vs_csynth": self.layer_comparison}


def find_tools() -> dict[str, str | None]:
    """The HLS tool (vitis_hls, else vitis-run) and vivado on PATH (None where absent)."""
    return {"vitis_hls": shutil.which("vitis_hls"), "vitis-run": shutil.which("vitis-run"),
            "vivado": shutil.which("vivado")}


def tool_version(path: str) -> str | None:
    """The tool's own version line (`vivado -version`: "vivado v2022.2 (64-bit)"), or None if it gives none
    within a minute."""
    try:
        run = subprocess.run([path, "-version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             errors="replace", timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [l.strip() for l in run.stdout.splitlines() if l.strip()]
    return next((l for l in lines if " v20" in l or l.lower().startswith(("vivado", "vitis"))), lines[0] if lines
                else None)


STEP_OUTPUTS = {"hls": ("sqz_hls_prj",), "vivado": (f"{BITSTREAM_DIR}/sqz.bit", f"{BITSTREAM_DIR}/sqz.hwh")}


def steps_for(tools: dict) -> list[Step]:
    hls = ([tools["vitis_hls"], "-f", HLS_SCRIPT] if tools.get("vitis_hls")
           else [tools["vitis-run"], "--mode", "hls", "--tcl", HLS_SCRIPT])
    vivado = [tools["vivado"], "-mode", "batch", "-source", VIVADO_SCRIPT, "-nojournal"]
    return [Step("hls", hls, STEP_OUTPUTS["hls"]), Step("vivado", vivado, STEP_OUTPUTS["vivado"])]


def _stamp(project: Path, step: str) -> Path:
    return project / BUILD_DIR / f"{step}.done"


def _done(project: Path, step: str, key: str) -> bool:
    """Did `step` finish for this project's content key (its stamp says so and its outputs are there)?"""
    stamp = _stamp(project, step)
    return (stamp.exists() and stamp.read_text().strip() == key
            and all((project / o).exists() for o in STEP_OUTPUTS[step]))


def _run_step(project: Path, step: Step, log, timeout_s: float) -> None:
    """Run one tool, streaming its output with the elapsed time; raise BuildError with its ERROR line."""
    logfile = project / BUILD_DIR / f"{step.name}.log"
    t0 = time.monotonic()
    log(f"[{step.name}] {' '.join(Path(step.command[0]).name if i == 0 else a for i, a in enumerate(step.command))}")
    first_error = None
    timed_out = threading.Event()
    with logfile.open("w") as f:
        # its own process group: at the deadline the tool and everything it started are stopped (a child
        # holding the log pipe open would otherwise keep this loop waiting)
        proc = subprocess.Popen(step.command, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", start_new_session=True)

        def kill():
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout_s, kill)
        timer.start()
        try:
            for line in proc.stdout:
                f.write(line)
                line = line.rstrip("\n")
                if first_error is None and line.lstrip().startswith("ERROR:"):   # Vivado's and Vitis HLS's
                    first_error = line.strip()
                elapsed = time.monotonic() - t0
                log(f"[{step.name} {int(elapsed) // 3600:d}:{int(elapsed) // 60 % 60:02d}:{int(elapsed) % 60:02d}] {line}")
            rc = proc.wait()
        finally:
            timer.cancel()
    elapsed = time.monotonic() - t0
    if timed_out.is_set():
        raise BuildError(f"step {step.name}: no result within {timeout_s:g} s; the tool was stopped "
                         f"(log: {logfile})")
    if rc != 0 or first_error:
        raise BuildError(f"step {step.name} failed after {elapsed:.0f} s (exit {rc}): "
                         f"{first_error or 'no ERROR line; see the log'} (log: {logfile})")
    missing = [o for o in step.outputs if not (project / o).exists()]
    if missing:
        raise BuildError(f"step {step.name} ended without {', '.join(missing)} (log: {logfile})")
    log(f"[{step.name}] done in {elapsed:.0f} s")


BUILD_SH = """#!/bin/sh
# The build of this project (generated by sqz hw/build.py): C synthesis + IP export, then the block design,
# implementation and bitstream. Same steps and stamps as `python -m sqz build`; a rerun skips finished steps.
set -e
cd "$(dirname "$0")"
KEY={key}
mkdir -p {build}
if [ "$(cat {build}/hls.done 2>/dev/null)" != "$KEY" ]; then
    if command -v vitis_hls >/dev/null 2>&1; then vitis_hls -f {hls} 2>&1 | tee {build}/hls.log
    else vitis-run --mode hls --tcl {hls} 2>&1 | tee {build}/hls.log; fi
    [ -d sqz_hls_prj ] && ! grep -q '^ERROR:' {build}/hls.log && echo "$KEY" > {build}/hls.done
fi
[ "$(cat {build}/hls.done 2>/dev/null)" = "$KEY" ] || {{ echo "C synthesis failed: {build}/hls.log" >&2; exit 1; }}
if [ "$(cat {build}/vivado.done 2>/dev/null)" != "$KEY" ]; then
    vivado -mode batch -source {vivado} -nojournal 2>&1 | tee {build}/vivado.log
    [ -f {bit}/sqz.bit ] && [ -f {bit}/sqz.hwh ] && ! grep -q '^ERROR:' {build}/vivado.log && echo "$KEY" > {build}/vivado.done
fi
[ "$(cat {build}/vivado.done 2>/dev/null)" = "$KEY" ] || {{ echo "Vivado failed: {build}/vivado.log" >&2; exit 1; }}
echo "bitstream: {bit}/sqz.bit, {bit}/sqz.hwh"
"""


def build(project_dir: str | Path, board: str, out_dir: str | Path | None = None, *, log=print,
          step_timeout_s: float = STEP_TIMEOUT_S, tools: dict | None = None) -> BuildResult:
    """Build the project where the tools are, and write OUT either way (module docstring)."""
    from hw.boards import get_board
    from hw.project import Project, ProjectError

    project = Path(project_dir)
    try:
        manifest = Project(project).manifest
    except ProjectError as e:
        raise BuildError(f"--project: {e}") from None
    board = get_board(board).name
    if manifest.board != board:
        raise BuildError(f"--project {project} was generated for {manifest.board}, not {board}: generate it for "
                         f"{board} (sqz hls --board {board}) or build it for {manifest.board}")
    for script in (HLS_SCRIPT, VIVADO_SCRIPT):
        if not (project / script).exists():
            raise BuildError(f"--project {project}: {script} is missing (regenerate the project with sqz hls)")
    out = Path(out_dir) if out_dir is not None else Path("bitstreams") / board
    if (out / "manifest.json").exists():
        from host.manifest import Manifest

        existing = Manifest.load(out)
        if existing.key != manifest.key:
            raise BuildError(f"--out {out} holds the build of another design (key {existing.key[:12]}, this project "
                             f"{manifest.key[:12]}); choose another folder or remove it")
    elif out.exists() and any(out.iterdir()):
        raise BuildError(f"--out {out}: exists, is not empty and holds no manifest.json; refusing to write into it")

    (project / BUILD_DIR).mkdir(exist_ok=True)
    key = manifest.key
    (project / BUILD_SCRIPT).write_text(BUILD_SH.format(key=key, build=BUILD_DIR, hls=HLS_SCRIPT,
                                                        vivado=VIVADO_SCRIPT, bit=BITSTREAM_DIR))
    tools = find_tools() if tools is None else tools
    have = (tools.get("vitis_hls") or tools.get("vitis-run")) and tools.get("vivado")
    result = BuildResult(project=project, out=out, board=board, built=False, bitstream=None, hwh=None,
                         tools=dict(tools))
    if have:
        for step in steps_for(tools):
            if _done(project, step.name, key):
                result.steps[step.name] = "skipped (done before)"
                log(f"[{step.name}] done before for this project: skipped")
                continue
            _stamp(project, step.name).unlink(missing_ok=True)
            _run_step(project, step, log, step_timeout_s)
            _stamp(project, step.name).write_text(key + "\n")
            result.steps[step.name] = "done"
    else:
        missing = [t for t, p in (("vitis_hls (or vitis-run)", tools.get("vitis_hls") or tools.get("vitis-run")),
                                  ("vivado", tools.get("vivado"))) if not p]
        result.steps = {"hls": "not run", "vivado": "not run"}
        result.instructions = (
            f"{' and '.join(missing)} not on PATH: nothing was synthesised and no bitstream exists. On a machine "
            f"with Vitis HLS and Vivado 2022.2 or later, copy {project} and run:\n"
            f"  python -m sqz build --project {project.name} --board {board} --out {out}\n"
            f"or, without this Python environment, `sh {project.name}/{BUILD_SCRIPT}`, then this command to "
            f"fill {out}.")
    bit = project / BITSTREAM_DIR / "sqz.bit"
    made = all(_done(project, s, key) for s in STEP_OUTPUTS)
    if have:
        hls_tool = tools.get("vitis_hls") or tools.get("vitis-run")
        manifest = dataclasses.replace(manifest, tools=dataclasses.replace(
            manifest.tools, vitis_hls=tool_version(hls_tool), vivado=tool_version(tools["vivado"])))
    if made:
        manifest, result.comparison, result.layer_comparison = _figures_from_reports(project, manifest, log)
    _write_out(project, out, manifest, bit if made else None)
    if made:
        result.built = True
        result.bitstream, result.hwh = out / f"{manifest.model}.bit", out / f"{manifest.model}.hwh"
    return result


CSYNTH_REPORT = "sqz_hls_prj/solution1/syn/report/sqz_top_csynth.rpt"
VIVADO_REPORTS = ("reports/utilization_placed.rpt", "reports/timing_summary.rpt", "reports/power.rpt")


def _figures_from_reports(project: Path, manifest, log):
    """After a build: the manifest's resources from the placed utilization and timing reports (their
    `source`), and the interval from C synthesis; prints the estimate-vs-report table (totals, and the
    C-synthesis modules as the report names them). Reports that are missing leave the estimate in place."""
    from hw.reports import ReportError, read_report

    reports = {}
    for rel in (CSYNTH_REPORT, *VIVADO_REPORTS):
        if (project / rel).exists():
            try:
                reports[rel] = read_report(project / rel)
            except ReportError as e:
                log(f"[reports] {e}: the estimate stays in the manifest for what it would have given")
    est = manifest.resources
    placed = reports.get(VIVADO_REPORTS[0])
    csynth = reports.get(CSYNTH_REPORT)
    timing = reports.get(VIVADO_REPORTS[1])
    rows = []
    for key in ("lut", "dsp", "bram18", "uram"):
        for rep in (csynth, placed):
            if rep is not None and rep.totals.get(key) is not None:
                rows.append({"figure": key, "estimate": getattr(est, key), "report": rep.totals[key],
                             "source": rep.source})
    if csynth is not None and csynth.ii_cycles is not None:
        rows.append({"figure": "ii_cycles", "estimate": est.ii_cycles, "report": csynth.ii_cycles,
                     "source": csynth.source})
    if rows:
        log(f"[reports] {'figure':<10}{'estimate':>12}{'report':>12}  source")
        for r in rows:
            log(f"[reports] {r['figure']:<10}{r['estimate']:>12}{r['report']:>12}  {r['source']}")
    layers = _layers_vs_csynth(project, csynth, log) if csynth is not None else []
    if placed is None:
        return manifest, rows, layers
    t = placed.totals
    ii = csynth.ii_cycles if csynth is not None and csynth.ii_cycles else est.ii_cycles
    clock_mhz = 1000.0 / timing.clock_ns if timing is not None and timing.clock_ns else est.clock_mhz
    source = placed.source + (f" + {csynth.source} (interval)" if csynth is not None and csynth.ii_cycles else "")
    resources = dataclasses.replace(
        est, source=source, dsp=t["dsp"] if t.get("dsp") is not None else est.dsp,
        bram18=t["bram18"] if t.get("bram18") is not None else est.bram18,
        uram=t["uram"] if t.get("uram") is not None else est.uram, lut=t["lut"] if t.get("lut") is not None else est.lut,
        ii_cycles=ii, clock_mhz=clock_mhz, fps=round(clock_mhz * 1e6 / ii, 2),
        wns_ns=timing.wns_ns if timing is not None else None)
    return dataclasses.replace(manifest, resources=resources), rows, layers


CALL_RE = re.compile(r"^\s*\w+::\w+<[^;]*\b(?:\w+_)?config(\d+)>\(.*\);\s*//\s*(\w+)\s*$")
MODULE_CONFIG_RE = re.compile(r"config(\d+)(?:_|$)")
FIGURES = ("lut", "dsp", "bram18", "ii_cycles")


def _layers_vs_csynth(project: Path, csynth, log) -> list[dict]:
    """The estimate per layer (the project's estimate.json) beside its C-synthesis module: the generated
    firmware/myproject.cpp names, on each layer's call, its config struct (`config<N>`) and, in a comment, the
    layer; the csynth module of that config is the first one listed whose name holds `config<N>` (parents
    come before their sub-modules). hls4ml's separate ReLU of a stock conv is added to the conv's row, as the
    estimate counts it. Layers without a module, or modules without an estimate, are printed as such."""
    from hw.project import ESTIMATE_FILE

    try:
        est = {l["name"]: l for l in json.loads((project / ESTIMATE_FILE).read_text())["layers"]}
        calls = (project / "firmware" / "myproject.cpp").read_text().splitlines()
    except (OSError, ValueError, KeyError) as e:
        log(f"[reports] no per-layer table: {e}")
        return []
    modules = {}
    for m in csynth.modules:
        c = MODULE_CONFIG_RE.search(m.name)
        if c and c.group(1) not in modules:
            modules[c.group(1)] = m
    rows = {}
    for line in calls:
        c = CALL_RE.match(line)
        if not c:
            continue
        layer = c.group(2)
        owner = layer if layer in est else layer[:-len("_relu")] if layer.endswith("_relu") and \
            layer[:-len("_relu")] in est else None
        m = modules.get(c.group(1))
        row = rows.setdefault(owner or layer, {"layer": owner or layer, "modules": [],
                                                **{f"estimate_{k}": (est[owner].get(k) if owner else None)
                                                   for k in FIGURES},
                                                **{f"csynth_{k}": None for k in FIGURES}})
        if m is not None:
            row["modules"].append(m.name)
            for k in FIGURES:
                v = getattr(m, k)
                if v is not None:
                    old = row[f"csynth_{k}"]
                    row[f"csynth_{k}"] = v if old is None else (max(old, v) if k == "ii_cycles" else old + v)
    out = list(rows.values())
    log(f"[reports] per layer (estimate / C synthesis): {'layer':<14}" + "".join(f"{k:>16}" for k in FIGURES))
    for r in out:
        cells = "".join(f"{str(r['estimate_' + k]) + ' / ' + str(r['csynth_' + k]):>16}" for k in FIGURES)
        log(f"[reports] per layer (estimate / C synthesis): {r['layer']:<14}{cells}")
    return out


def _write_out(project: Path, out: Path, manifest, bit: Path | None) -> None:
    """OUT, written whole: staging folder first, then swapped in."""
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        for name in COPIED:
            if (project / name).exists():
                shutil.copy2(project / name, staging / name)
        bit_sha256 = None
        if bit is not None:
            shutil.copy2(bit, staging / f"{manifest.model}.bit")
            shutil.copy2(bit.with_suffix(".hwh"), staging / f"{manifest.model}.hwh")
            bit_sha256 = hashlib.sha256(bit.read_bytes()).hexdigest()
        dataclasses.replace(manifest, bit_sha256=bit_sha256).save(staging / "manifest.json")
        if out.exists():
            trash = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
