"""`python -m sqz report --run DIR`: the float vs fixed-point report of a demo run, as one self-contained
HTML file (plots and thumbnails inlined as data: URIs, no network) and as Markdown (plots beside it in
report_files/).

Everything is read from the files the demo's steps wrote (demo_plan.json, data/split.json,
quantize/report.json and its per-image predictions, sweep/*/report.json, search/report.json, sqnr.json,
hls.json, build.json, infer.json); a step that did not run is said so in its section, never filled in.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from sqz.cli_common import CliError

Z95 = 1.959963984540054      # two-sided 95 % normal quantile


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k/n (Wilson 1927; good at small n and near 0 or 1,
    where the normal interval is not)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


# -- reading the run ------------------------------------------------------------------------------

def _load(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CliError(f"{path}: not valid JSON ({e}); rerun the demo step that writes it") from None


def _jsonl(path: Path) -> dict[str, dict]:
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                out[rec["path"]] = rec
    return out


@dataclass
class Run:
    folder: Path
    plan: dict
    split: dict | None
    quant: dict
    spec: dict
    float_preds: dict
    fixed_preds: dict
    sweep: list[dict]
    search: dict | None
    sqnr: dict | None
    hls: dict | None
    build: dict | None
    infer: dict | None
    class_names: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, folder: str | Path) -> "Run":
        folder = Path(folder)
        plan = _load(folder / "demo_plan.json")
        quant = _load(folder / "quantize" / "report.json")
        if plan is None or quant is None:
            raise CliError(f"--run {folder}: not a finished demo folder (needs demo_plan.json and "
                           f"quantize/report.json; run python -m sqz demo --out {folder})")
        sweep = []
        for p in sorted((folder / "sweep").glob("*/report.json")):
            sweep.append(_load(p))
        names = []
        synset = folder / "data" / "eval" / "synset_words.txt"
        if synset.exists():
            from model.imagenet import read_synset_words
            names = read_synset_words(synset)[1]
        work = folder / "quantize" / "work"
        return cls(folder, plan, _load(folder / "data" / "split.json"), quant, _load(Path(quant["spec"])) or {},
                   _jsonl(work / "eval_float.jsonl"), _jsonl(work / "eval_fixed.jsonl"), sweep,
                   _load(folder / "search" / "report.json"), _load(folder / "sqnr.json"), _load(folder / "hls.json"),
                   _load(folder / "build.json"), _load(folder / "infer.json"), names)

    def name(self, cls_index: int) -> str:
        if 0 <= cls_index < len(self.class_names):
            return self.class_names[cls_index].split(",")[0]
        return str(cls_index)


# -- figures ----------------------------------------------------------------------------------------

def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return buf.getvalue()


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def width_curve_png(run: Run) -> bytes | None:
    """Weight storage (MB, dense) vs top-1: the uniform sweep, the 8/8 spec, the float line, the search's front."""
    points = [(r["weight_bytes"] / 1e6, r["fixed"]["top1"], _uniform_bits(r["weight_bits"])) for r in run.sweep]
    points.append((run.quant["weight_bytes"] / 1e6, run.quant["fixed"]["top1"],
                   _uniform_bits(run.quant["weight_bits"])))
    points.sort()
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot([p[0] for p in points], [100 * p[1] for p in points], "o-", label="uniform weight width (activations 8 bit)")
    for x, y, b in points:
        ax.annotate(f"{b} bit", (x, 100 * y), textcoords="offset points", xytext=(4, -12), fontsize=8)
    if run.search and run.search.get("pareto"):
        front = sorted(run.search["pareto"], key=lambda p: p.get("weight_bytes", 0))
        xs = [p["weight_bytes"] / 1e6 for p in front if "weight_bytes" in p]
        ys = [100 * p["top1"] for p in front if "weight_bytes" in p]
        if xs:
            ax.plot(xs, ys, "s--", color="tab:green", label="--margin search: Pareto front (search images)")
    ax.axhline(100 * run.quant["float"]["top1"], color="k", lw=1, ls=":", label="float")
    ax.set_xlabel("weight storage, dense (MB)")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(f"{run.plan['model']}: weight width vs accuracy ({run.quant['n']} evaluation images)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def sqnr_png(run: Run) -> bytes | None:
    if not run.sqnr:
        return None
    rows = [r for r in run.sqnr["layers"] if math.isfinite(r["sqnr_db"])]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    ax.bar(range(len(rows)), [r["sqnr_db"] for r in rows], color="tab:blue")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r["layer"].replace("_squeeze1x1", " sq").replace("_expand1x1", " e1")
                        .replace("_expand3x3", " e3") for r in rows], rotation=90, fontsize=7)
    ax.set_ylabel("SQNR (dB)")
    ax.set_title(f"fixed point vs float, per layer output ({run.sqnr['n']} images; higher is better)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def resources_png(run: Run) -> bytes | None:
    """Per-layer share of the board's budget (LUT, DSP, BRAM18), stacked to the total."""
    if not run.hls:
        return None
    from hw.boards import get_board

    budget = get_board(run.hls["board"]).budget()
    layers = [l for l in run.hls["layers"] if l.get("estimate")]
    kinds = [k for k in ("lut", "dsp", "bram18", "uram") if budget[k]]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    left = [0.0] * len(kinds)
    cmap = plt.get_cmap("tab20")
    for i, l in enumerate(layers):
        share = [100 * l["estimate"][k] / budget[k] for k in kinds]
        ax.barh(range(len(kinds)), share, left=left, color=cmap(i % 20), label=l["name"])
        left = [a + b for a, b in zip(left, share)]
    ax.axvline(100, color="k", lw=1)
    ax.set_yticks(range(len(kinds)))
    ax.set_yticklabels([k.upper() for k in kinds])
    ax.set_xlabel(f"% of the {run.hls['board']} budget (ESTIMATE, line: 100 %)")
    ax.legend(fontsize=6, ncol=6, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    fig.tight_layout()
    return _png(fig)


def _uniform_bits(bits: dict) -> str:
    values = sorted(set(bits.values()))
    return str(values[0]) if len(values) == 1 else "/".join(map(str, values))


def _most_common(bits: dict) -> int:
    """The activation width most layers have (the logits may be wider)."""
    values = list(bits.values())
    return max(set(values), key=values.count)


def thumbnail(path: Path, size: int = 96) -> bytes | None:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            if max(img.size) < size:           # CIFAR's 32 x 32: enlarged, pixels kept sharp
                scale = size / max(img.size)
                img = img.resize((round(img.width * scale), round(img.height * scale)), Image.NEAREST)
            img.thumbnail((size, size))
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=85)
            return buf.getvalue()
    except OSError:
        return None


# -- the document --------------------------------------------------------------------------------

class Doc:
    """Builds the HTML and the Markdown side by side from the same calls."""

    def __init__(self, assets: Path):
        self.html: list[str] = []
        self.md: list[str] = []
        self.assets = assets
        self.n_images = 0

    def h(self, level: int, text: str) -> None:
        self.html.append(f"<h{level}>{html.escape(text)}</h{level}>")
        self.md.append(f"\n{'#' * level} {text}\n")

    def p(self, text: str) -> None:
        self.html.append(f"<p>{html.escape(text)}</p>")
        self.md.append(text + "\n")

    def table(self, head: list[str], rows: list[list]) -> None:
        cells = lambda r, t: "".join(f"<{t}>{html.escape(str(c))}</{t}>" for c in r)
        self.html.append('<div class="scroll"><table><thead><tr>' + cells(head, "th") + "</tr></thead><tbody>"
                         + "".join("<tr>" + cells(r, "td") + "</tr>" for r in rows) + "</tbody></table></div>")
        self.md.append("| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
                       + "".join("| " + " | ".join(str(c) for c in r) + " |\n" for r in rows))

    def image(self, data: bytes | None, name: str, alt: str, mime: str = "image/png") -> None:
        if data is None:
            return
        self.n_images += 1
        self.assets.mkdir(parents=True, exist_ok=True)
        (self.assets / name).write_bytes(data)
        uri = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        self.html.append(f'<img src="{uri}" alt="{html.escape(alt)}">')
        self.md.append(f"![{alt}]({self.assets.name}/{name})\n")

    def gallery(self, items: list[tuple[bytes, str, str]]) -> None:
        """(jpeg, file name, caption) thumbnails in a row."""
        self.assets.mkdir(parents=True, exist_ok=True)
        parts, md = [], []
        for data, name, caption in items:
            self.n_images += 1
            (self.assets / name).write_bytes(data)
            uri = f"data:image/jpeg;base64,{base64.b64encode(data).decode()}"
            parts.append(f'<figure><img src="{uri}" alt="{html.escape(caption)}"><figcaption>'
                         f'{html.escape(caption)}</figcaption></figure>')
            md.append(f"| ![{caption}]({self.assets.name}/{name}) | {caption} |")
        self.html.append('<div class="gallery">' + "".join(parts) + "</div>")
        self.md.append("| image | float → fixed |\n|---|---|\n" + "\n".join(md) + "\n")

    def pre(self, text: str) -> None:
        self.html.append(f"<pre>{html.escape(text)}</pre>")
        self.md.append("```\n" + text + "\n```\n")


CSS = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:.85em}td,th{border:1px solid #ccc;padding:2px 6px;
text-align:right}th{background:#f2f2f2}td:first-child{text-align:left}img{max-width:100%}
.gallery{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0;width:150px;font-size:.75em}
figure img{width:96px;height:auto}figcaption{overflow-wrap:anywhere}pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:.8em}
.scroll{overflow-x:auto}.note{background:#fff6d6;padding:.4em .8em;border-left:4px solid #e0b000}"""

# Marks the page once every image has decoded: the browser test reads it (and any failure is listed).
CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.body.setAttribute('data-images', imgs.length);
  document.body.setAttribute('data-images-decoded', imgs.length - bad.length);
});
</script>"""


def _short(fmt: str | None) -> str:
    """ap_fixed<8,1,AP_RND,AP_SAT> -> ap_fixed<8,1,RND,SAT> (the table stays readable)."""
    return "—" if fmt is None else fmt.replace("AP_", "")


def _reuse(r) -> str:
    return "/".join(map(str, r.values())) if isinstance(r, dict) else ("" if r is None else str(r))


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def _ci(k: int, n: int) -> str:
    lo, hi = wilson_interval(k, n)
    return f"{100 * lo:.1f}–{100 * hi:.1f} %"


def build_report(run: Run) -> tuple[str, str, int]:
    """(html, markdown, number of images in it)."""
    doc = Doc(run.folder / "report_files")
    plan, q = run.plan, run.quant
    n = q["n"]
    doc.h(1, f"sqz: {plan['model']} on {plan['board']} — fixed point vs float")
    split = run.split or {}
    doc.p(f"Calibration: {split.get('calib', {}).get('n', '?')} images; evaluation: {n} other images of "
          f"{split.get('source', q['evaluation']['data'])} ({split.get('rule', '')}; "
          f"{len(split.get('dropped', []))} evaluation images dropped as duplicates of calibration images). "
          f"Every resource and speed figure below is an ESTIMATE unless its source says otherwise.")
    if not plan["fit"]["fits"]:
        over = ", ".join(f"{k.upper()} {plan['fit']['utilisation'][k]:.0f} %" for k in plan["fit"]["over"])
        doc.p(f"NOTE: {plan['model']} does not fit {plan['board']} by the estimate (over budget: {over}); the "
              f"build and the board run were not done.")

    # 1. accuracy
    doc.h(2, "Accuracy: float vs fixed point")
    paths = [p for p in run.fixed_preds if p in run.float_preds]
    k = {"float": {}, "fixed": {}}
    for which, preds in (("float", run.float_preds), ("fixed", run.fixed_preds)):
        k[which]["top1"] = sum(preds[p]["top5"][0] == preds[p]["label"] for p in paths)
        k[which]["top5"] = sum(preds[p]["label"] in preds[p]["top5"] for p in paths)
    m = len(paths)
    rows = [[which, f"{k[which]['top1']}/{m}", _pct(k[which]['top1'] / m if m else None), _ci(k[which]['top1'], m),
             f"{k[which]['top5']}/{m}", _pct(k[which]['top5'] / m if m else None), _ci(k[which]['top5'], m)]
            for which in ("float", "fixed")]
    doc.table(["model", "top-1", "%", "95 % CI (Wilson)", "top-5", "%", "95 % CI"], rows)
    agree = sum(run.float_preds[p]["top5"][0] == run.fixed_preds[p]["top5"][0] for p in paths)
    lost = [p for p in paths if run.float_preds[p]["top5"][0] == run.float_preds[p]["label"]
            != run.fixed_preds[p]["top5"][0]]
    gained = [p for p in paths if run.fixed_preds[p]["top5"][0] == run.fixed_preds[p]["label"]
              != run.float_preds[p]["top5"][0]]
    doc.p(f"Agreement: fixed point picks the same class as float on {agree}/{m} images "
          f"({_pct(agree / m if m else None)}, 95 % CI {_ci(agree, m)}). Of the differences, {len(lost)} images "
          f"float got right and fixed point got wrong, {len(gained)} the other way (paired: only these change "
          f"the top-1 difference, {len(gained) - len(lost):+d} images).")
    doc.p(f"Weights: {_uniform_bits(q['weight_bits'])} bit, activations {_uniform_bits(q['activation_bits'])} bit; "
          f"weight storage (dense) {q['weight_bytes'] / 1e6:.3f} MB. Spec: {q['spec']}.")

    # 2. per-layer formats
    doc.h(2, "Per-layer formats and saturations")
    sat, wsat = q.get("saturations", {}), q.get("weight_saturations", {})
    rows = []
    for name, f in run.spec.get("layers", {}).items():
        rows.append([name, *(_short(f.get(k)) for k in ("weight", "bias", "accum", "result")),
                     wsat.get(name, "—"), sat.get(name, 0)])
    doc.table(["layer", "weight", "bias", "accumulator", "result", "weights clipped", "results saturated"], rows)
    doc.p(f"Input: {run.spec.get('input', '?')} (saturated input values: {sat.get('input', 0)}). Saturation counts "
          f"are over the {n} evaluation images (every value of every feature map).")

    # 3. bit-width curve
    doc.h(2, "Bit width vs accuracy")
    doc.image(width_curve_png(run), "width_curve.png", "weight storage vs top-1")
    rows = [[f"{_uniform_bits(r['weight_bits'])}/{_most_common(r['activation_bits'])}",
             f"{r['weight_bytes'] / 1e6:.3f}", _pct(r["fixed"]["top1"]), _pct(r["fixed"]["top5"]),
             f"{100 * (r['fixed']['top1'] - r['float']['top1']):+.2f}"]
            for r in sorted(run.sweep + [q], key=lambda r: -r["weight_bytes"])]
    doc.table(["weights/activations (bit)", "weight MB", "top-1", "top-5", "top-1 vs float (points)"], rows)
    if run.search:
        s = run.search
        doc.p(f"--margin {s.get('margin')} search: {s['weight_bytes'] / 1e6:.3f} MB at top-1 {_pct(s['fixed']['top1'])} "
              f"on the evaluation images ({100 * (s['fixed']['top1'] - s['float']['top1']):+.2f} points).")
    else:
        doc.p("The per-layer width search (its Pareto front) is not in this run: python -m sqz demo --search "
              "adds it (about 30 minutes).")

    # 4. distributions
    doc.h(2, "Weight and activation distributions with the chosen ranges")
    for p in q.get("plots", []):
        path = Path(p)
        if path.exists() and path.stem in ("weights", "activations"):
            doc.image(path.read_bytes(), f"dist_{path.name}", f"{path.stem} distributions vs formats")

    # 5. SQNR
    doc.h(2, "Per-layer error: fixed point vs float (SQNR)")
    if run.sqnr:
        doc.image(sqnr_png(run), "sqnr.png", "per-layer SQNR")
        worst = min((r for r in run.sqnr["layers"] if r["layer"] != "logits"), key=lambda r: r["sqnr_db"])
        logits = next(r for r in run.sqnr["layers"] if r["layer"] == "logits")
        doc.p(f"Lowest: {worst['layer']} {worst['sqnr_db']:.1f} dB; logits {logits['sqnr_db']:.1f} dB "
              f"(error accumulated through the network, on {run.sqnr['n']} images).")
    else:
        doc.p("not run")

    # 6. changed images
    doc.h(2, "Images whose class changed")
    changed = [p for p in paths if run.float_preds[p]["top5"][0] != run.fixed_preds[p]["top5"][0]]
    items = []
    for i, p in enumerate(changed[:24]):
        thumb = thumbnail(Path(p))
        if thumb is None:
            continue
        fl, fx, label = run.float_preds[p]["top5"][0], run.fixed_preds[p]["top5"][0], run.float_preds[p]["label"]
        items.append((thumb, f"changed_{i}.jpg",
                      f"{Path(p).name}: float {run.name(fl)}{' ✓' if fl == label else ''} → fixed "
                      f"{run.name(fx)}{' ✓' if fx == label else ''} (true: {run.name(label)})"))
    if items:
        doc.gallery(items)
        if len(changed) > len(items):
            doc.p(f"({len(changed) - len(items)} more not shown)")
    else:
        doc.p("None: fixed point and float agree on every evaluation image.")

    # 7. bit-exact checks
    doc.h(2, "Bit-exact checks")
    rows = []
    cs = (run.hls or {}).get("csim")
    rows.append(["HLS C simulation vs emulator", f"{cs['bit_exact']}/{cs['n']}" if cs else "not run",
                 "hls4ml + sqz kernels compiled with g++ (the hardware model)"])
    inf = run.infer
    if inf:
        be = inf.get("bit_exact")
        rows.append(["host driver on the simulated board vs emulator",
                     f"{be}/{inf['n']}" if be is not None else "n/a",
                     f"{inf.get('sim', 'simulated board')}: packing, DMA framing, driver; top-1 {_pct(inf.get('top1'))}"])
    else:
        rows.append(["host driver on the simulated board vs emulator", "not run",
                     "the design does not fit" if not plan["fit"]["fits"] else "step not run"])
    doc.table(["check", "bit-exact images", "what it proves"], rows)

    # 8. resources
    doc.h(2, "Resources and throughput against the board")
    if run.hls:
        from hw.boards import get_board

        b = get_board(run.hls["board"]).budget()
        est = run.hls["estimate"]
        src = run.hls.get("estimate_source", "estimate")
        doc.image(resources_png(run), "resources.png", "per-layer share of the board budget")
        rows = []
        for l in run.hls["layers"]:
            e = l.get("estimate")
            if e:
                rows.append([l["name"], e["kind"], _reuse(e.get("reuse")), e["dsp"], e["bram18"], e["uram"], e["lut"],
                             e["ii_cycles"]])
        rows.append(["total", "", "", est["dsp"], est["bram18"], est["uram"], est["lut"], est["ii_cycles"]])
        rows.append(["board budget", "", "", b["dsp"], b["bram18"], b["uram"], b["lut"], ""])
        rows.append(["utilisation", "", "", *(f"{100 * est[k] / b[k]:.0f} %" if b[k] else "—"
                                              for k in ("dsp", "bram18", "uram", "lut")), ""])
        doc.table(["layer", "kind", "reuse", "DSP", "BRAM18", "URAM", "LUT", "cycles/frame"], rows)
        doc.p(f"Source: {src}. Throughput {est['fps']:.1f} frames/s at {est['clock_mhz']:g} MHz (slowest stage "
              f"{est['ii_cycles']} cycles); fits: {run.hls['fits']}.")
        if inf and inf.get("frames_per_s"):
            doc.p(f"Measured by the driver on the simulated board: {inf['frames_per_s']:.1f} frames/s (the "
                  f"simulator's rate, not the board's); the manifest's estimate: {inf.get('estimated_board_fps')}.")
    else:
        doc.p("not run")

    # 9. next
    doc.h(2, "What to run next")
    lines = []
    if run.build:
        lines.append("# on a machine with Vitis HLS and Vivado (the build folder is complete):")
        lines.append(run.build.get("instructions") or "")
        lines.append(f"python -m sqz build --project {run.folder / ('hls_' + plan['board'])} --board {plan['board']} "
                     f"--out bitstreams/{plan['board']}")
        lines.append("# on the board (PYNQ image): copy bitstreams/<board>/ and host/, then")
        lines.append(f"python -m sqz infer --bitstream bitstreams/{plan['board']} --data DIR --json infer.json")
    else:
        lines.append(f"# {plan['model']} does not fit {plan['board']}: pick a board it fits or a smaller model")
    doc.pre("\n".join(l for l in lines if l))

    body = "\n".join(doc.html)
    page = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sqz report: "
            f"{html.escape(plan['model'])} on {html.escape(plan['board'])}</title><style>{CSS}</style></head>"
            f"<body>\n{body}\n{CHECK_SCRIPT}</body></html>\n")
    return page, "\n".join(doc.md), doc.n_images


def write_report(folder: str | Path) -> dict:
    run = Run.read(folder)
    page, md, n_images = build_report(run)
    out = Path(folder)
    for name, text in (("report.html", page), ("report.md", md)):
        tmp = out / (name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out / name)
    return {"html": str(out / "report.html"), "markdown": str(out / "report.md"), "images": n_images}


def add_commands(sub) -> None:
    p = sub.add_parser("report", help="the float vs fixed-point report of a demo folder (HTML and Markdown)")
    p.add_argument("--run", required=True, help="the demo's --out folder")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    r = write_report(args.run)
    print(f"report: {r['html']} ({r['images']} images inlined) and {r['markdown']}")
    return 0
