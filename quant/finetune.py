"""Ristretto's fine-tuning in fixed point: `python -m sqz finetune`.

    python -m sqz finetune --model squeezenet_cifar --spec SPEC.json --calib ../shared/data/cifar10 \\
        --data ../shared/data/cifar10 --out SPEC2.json --json REPORT.json

As Ristretto does it (Gysel et al. 2018, section 4.3): the network keeps full-precision *shadow* weights;
every batch, the forward pass uses them quantized to the QuantSpec's weight formats, and every activation
is cast to its layer's result format, so the loss is the fixed-point network's; the gradients pass
straight through the casts (identity; zero where an activation saturated above its format's range), and
the update goes to the shadow weights. The casts are quant/'s own: weights through
`FixedFormat.quantize` (what `QuantSpec.weight_codes` does for the emulator), the input and every
activation through `arithmetic.quantize` (the emulator's rounding and overflow, `_round_and_overflow`),
the average pool through `arithmetic.global_avgpool`, wrapped as TensorFlow ops with `tf.numpy_function`:
no second definition. The graph is walked by the emulator's `walk`. Where every accumulator stays below
2**24 codes, float32 convolutions of these values are exact and the forward pass gives the emulator's
logits bit for bit (tests/test_finetune.py checks it on real images).

What is trained: the weights; with `--train-biases` the biases too, as Ristretto does (shadow float biases,
each batch rounded to the products' fractional bits, the bias format's, gradients straight through). Frozen
(the default, what the committed results used), the biases stay the trained float biases cast to their
formats. The final spec keeps the input spec's weight and activation formats; its bias and accumulator
formats are re-derived from the new weights and biases (exact accumulation); its weight codes are the shadow
weights rounded to nearest, and with --train-biases its bias codes the shadow biases rounded
(SPEC2.weights.npz, "<layer>:bias"), which every consumer takes through QuantSpec.bias_codes.

Beyond Ristretto, optionally (`--teacher W.npz`, e.g. the float network's own weights): knowledge
distillation during the fine-tuning, the training's (model.cifar_train: `input_teacher_targets`,
`distillation_loss`): the fixed-point network is pulled towards the teachers' softmax at T on each image
and its mirror, not only towards the labels. Off by default.

Starting point: the shadow weights start at the input spec's weight codes (e.g. GPTQ's), so the first
forward pass is exactly the input spec's network. With `--init-from SPEC0` they start at another spec's
weights instead (rounded to this spec's weight formats, bias and accumulator formats re-derived), e.g. one
already fine-tuned at wider activations: progressive quantization (Zhuang et al. 2018, "Towards effective
low-bitwidth convolutional neural networks"), the activations narrowed after the weights have adapted.

Learning rate (`--lr-scale`): "absolute", the default, is Ristretto's one rate for every weight; with batch
norm folded in, the weight steps differ by orders of magnitude between layers (2**-10 in conv1 against 2**-1
in conv10 at 4 bits), so one absolute rate moves conv1 by a tenth of a code per step and conv10 hardly at
all. "step" holds each shadow weight in units of its layer's step (w = v * 2**-frac, exact) and so gives
every layer the same rate in codes.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from model.architecture import Architecture, Conv
from quant import arithmetic as A
from quant.emulator import walk
from quant.fixed_point import FixedFormat
from quant.spec import ConvFormats, QuantSpec, input_formats

LR_SCALES = ("absolute", "step")   # --lr-scale: see the module docstring


class FixedPointTrainer:
    """The QuantSpec's fixed-point network in TensorFlow: shadow weights, quantized forward, STE."""

    def __init__(self, arch: Architecture, params: dict, spec: QuantSpec, train_biases: bool = False,
                 lr_scale: str = "absolute"):
        import tensorflow as tf

        if lr_scale not in LR_SCALES:
            raise ValueError(f"lr_scale {lr_scale!r}: one of {', '.join(LR_SCALES)}")
        self.tf, self.arch, self.spec, self.train_biases = tf, arch, spec, train_biases
        start = spec.effective_params(params)           # shadow weights (and biases) = the spec's codes, as floats
        # the unit each shadow weight is held in (w = v * unit): its layer's weight step for "step", else 1
        self.weight_unit = {n: (spec.layers[n].weight.lsb if lr_scale == "step" else 1.0) for n in start}
        self.weights = {n: tf.Variable(np.ascontiguousarray(w.transpose(2, 3, 1, 0) / self.weight_unit[n]),
                                       name=n.replace("/", "_"))
                        for n, (w, _) in start.items()}   # HWIO
        self.ins = input_formats(arch, spec)
        self.variables = [self.weights[c.name] for c in arch.convs()]
        # biases at their format's values, as the emulator reads them (QuantSpec.bias_codes)
        start_b = {n: spec.layers[n].bias.to_float(spec.bias_codes(n, b)).astype(np.float32)
                   for n, (_, b) in params.items()}
        if train_biases:
            self.bias_vars = {n: tf.Variable(b, name=n.replace("/", "_") + "_bias") for n, b in start_b.items()}
            self.variables += [self.bias_vars[c.name] for c in arch.convs()]
        else:
            self.bias_vars = {n: tf.constant(b) for n, b in start_b.items()}

    def bias_grid(self, name: str) -> FixedFormat:
        """A trained bias's rounding: the products' fractional bits (the bias format respec derives), with
        integer bits to spare (respec then sizes the final format to the trained values)."""
        frac = self.ins[name].frac + self.spec.layers[name].weight.frac
        return FixedFormat(frac + 24, 24, True, "AP_RND", "AP_SAT")

    def bias(self, name: str):
        if not self.train_biases:
            return self.bias_vars[name]
        return self._cast(self.bias_vars[name], self.bias_grid(name), weight=True)

    # -- the casts: quant/'s definitions wrapped as TF ops, gradients straight through ---------------
    def _cast(self, x, fmt, weight: bool = False):
        tf = self.tf

        if weight:
            def fn(v):   # exactly QuantSpec.weight_codes' rounding of float weights
                return fmt.to_float(fmt.quantize(v.astype(np.float64))).astype(np.float32)
        else:
            def fn(v):   # the emulator's input/activation cast (arithmetic.quantize)
                codes, _ = A.quantize(fmt, v)
                return (codes * 2.0 ** -fmt.frac).astype(np.float32)

        @tf.custom_gradient
        def cast(v):
            q = tf.numpy_function(fn, [v], tf.float32, stateful=False)
            q.set_shape(v.shape)

            def grad(dy):
                if weight:
                    return dy
                return dy * tf.cast(v <= fmt.max_value, dy.dtype)   # saturated: no gradient

            return q, grad

        return cast(x)

    def _gap(self, x, layer):
        tf = self.tf
        p = self.spec.layers[layer.name]
        x_fmt = self.ins[layer.name]
        hw = int(x.shape[1]) * int(x.shape[2])

        def fn(v):   # the emulator's average pool on the codes
            codes = v.astype(np.float64) * 2.0 ** x_fmt.frac
            out, _ = A.global_avgpool(codes, p.multiplier, p.shift, x_fmt.frac, p.result)
            return (out * 2.0 ** -p.result.frac).astype(np.float32)

        @tf.custom_gradient
        def gap(v):
            q = tf.numpy_function(fn, [v], tf.float32, stateful=False)
            q.set_shape((v.shape[0], v.shape[3]))

            def grad(dy):
                return tf.broadcast_to(dy[:, None, None, :] / hw, tf.shape(v))

            return q, grad

        return gap(x)

    def logits(self, x):
        """Values of the logit format (codes * 2**-frac) of the fixed-point network, differentiable by STE."""
        tf = self.tf

        def conv(c: Conv, inp):
            f: ConvFormats = self.spec.layers[c.name]
            w = self._cast(self.weights[c.name] * self.weight_unit[c.name], f.weight, weight=True)
            if c.pad:
                inp = tf.pad(inp, [[0, 0], [c.pad, c.pad], [c.pad, c.pad], [0, 0]])
            acc = tf.nn.conv2d(inp, w, c.stride, "VALID") + self.bias(c.name)
            return self._cast(tf.nn.relu(acc) if c.relu else acc, f.result)

        def maxpool(p, inp):
            h, w = int(inp.shape[1]), int(inp.shape[2])
            oh, ow = -(-(h - p.kernel) // p.stride) + 1, -(-(w - p.kernel) // p.stride) + 1
            ph, pw = (oh - 1) * p.stride + p.kernel - h, (ow - 1) * p.stride + p.kernel - w
            inp = tf.pad(inp, [[0, 0], [0, max(ph, 0)], [0, max(pw, 0)], [0, 0]])   # inputs >= 0 (ReLU)
            return tf.nn.max_pool2d(inp, p.kernel, p.stride, "VALID")

        x = self._cast(tf.convert_to_tensor(x, tf.float32), self.spec.input)
        return walk(self.arch, x, conv, maxpool, lambda layer, inp: self._gap(inp, layer),
                    concat=lambda parts: tf.concat(parts, axis=-1))

    def shadow_params(self, params: dict) -> dict:
        """conv name -> (shadow weight OIHW float32, bias: the trained one rounded to its grid, or the
        original float bias)."""
        out = {}
        for n, (_, b) in params.items():
            if self.train_biases:
                g = self.bias_grid(n)
                b = g.to_float(g.quantize(self.bias_vars[n].numpy().astype(np.float64))).astype(np.float32)
            elif self.spec.biases is not None:      # frozen at the input spec's own bias codes
                b = self.bias_vars[n].numpy()
            w = self.weights[n].numpy().astype(np.float64) * self.weight_unit[n]   # a power of two: exact
            out[n] = (w.transpose(3, 2, 0, 1).astype(np.float32), b)
        return out


def respec(spec: QuantSpec, arch: Architecture, params: dict, note: dict, bias_codes: bool = False) -> QuantSpec:
    """The spec for new weights: the same weight and activation formats, weight codes = the weights rounded
    to nearest, bias and accumulator formats re-derived for these codes (exact accumulation); with
    `bias_codes`, the biases rounded to their new format are the spec's own bias codes too."""
    from quant.calibrate import _conv_formats

    ins = input_formats(arch, spec)
    layers = dict(spec.layers)
    codes, biases = {}, {}
    for conv in arch.convs():
        f: ConvFormats = spec.layers[conv.name]
        w, b = params[conv.name]
        codes[conv.name] = f.weight.quantize(np.asarray(w, np.float64))
        layers[conv.name] = _conv_formats(codes[conv.name], b, f.weight, ins[conv.name], f.result,
                                          f.result.rounding)
        biases[conv.name] = layers[conv.name].bias.quantize(np.asarray(b, np.float64))
    calibration = dict(spec.calibration, finetune=note, weight_rounding="finetuned")
    new = QuantSpec(spec.model, spec.input, layers, calibration, weights=codes, biases=biases if bias_codes else None)
    new.validate(arch)
    return new


def finetune(arch: Architecture, params: dict, spec: QuantSpec, images: np.ndarray, labels: np.ndarray,
             epochs: int = 1, lr: float = 1e-5, batch_size: int = 64, seed: int = 0, augment: bool = True,
             say=print, optimizer: str = "adam", train_biases: bool = False, teachers=(), kd_alpha: float = 0.9,
             kd_temperature: float = 4.0, label_smoothing: float = 0.0,
             lr_scale: str = "absolute") -> tuple[dict, QuantSpec, dict]:
    """Fine-tune the weights (and with `train_biases` the biases) of the fixed-point network on (images,
    labels); returns (new params, new spec, log). Adam (or SGD with momentum 0.9), cosine learning rate from
    `lr` to 0 over all steps. `teachers`: float weights files to distil from (the training's distillation,
    model.cifar_train: the teachers' softmax at `kd_temperature` on each image and its mirror, computed once;
    loss (1 - kd_alpha) * cross-entropy + kd_alpha * T^2 * KL), e.g. the float network being quantized.
    `label_smoothing`: the cross-entropy against labels smoothed as `sqz train` smooths them (0.1 there); 0, the
    default, is Ristretto's plain cross-entropy. `lr_scale`: one of LR_SCALES, "absolute" (the default) or
    "step" (`lr` in units of each layer's weight step; why: the module docstring)."""
    import math

    import tensorflow as tf

    from model.cifar_train import augment as random_crop_flip
    from model.cifar_train import (black_input, distill_record, distillation_loss, input_teacher_targets,
                                   targets_line)

    tf.random.set_seed(seed)
    rng = np.random.default_rng(seed)
    black = black_input(arch)          # the crops' padding: black, as in training
    net = FixedPointTrainer(arch, params, spec, train_biases, lr_scale)
    # Adam by default: with batch norm folded in, the layers' weights differ in scale by orders of magnitude
    # (conv1 reads pixels of +-128), and SGD at one rate for all either diverges or lets the network drift
    # (benchmarks/cifar_finetune_lr.py measures both)
    opt = (tf.keras.optimizers.Adam(learning_rate=lr) if optimizer == "adam"
           else tf.keras.optimizers.SGD(learning_rate=lr, momentum=0.9))
    steps = len(images) // batch_size
    total = max(1, steps * epochs)
    soft = None
    if teachers:     # once, before the first step: the targets do not depend on the crops
        t0 = time.perf_counter()
        soft = input_teacher_targets(arch, teachers, images, kd_temperature)
        say(targets_line(teachers, soft, labels, time.perf_counter() - t0))

    @tf.function(autograph=False)   # no Python control flow inside; autograph would re-read this file
    def step(x, y, target):
        with tf.GradientTape() as tape:
            logits = net.logits(x)
            if label_smoothing:     # the training's loss (keras' smoothing: (1 - ls) * one-hot + ls / classes)
                loss = smoothed_ce(tf.one_hot(y, arch.num_classes), logits)
            else:
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
            if soft is not None:
                loss = distillation_loss(loss, logits, target, kd_alpha, kd_temperature)
        grads = tape.gradient(loss, net.variables)
        opt.apply_gradients(zip(grads, net.variables))
        hits = tf.reduce_sum(tf.cast(tf.argmax(logits, -1, output_type=tf.int64) == y, tf.int32))
        return loss, hits

    smoothed_ce = tf.keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing)
    no_target = np.zeros((batch_size, arch.num_classes), np.float32)    # without teachers: unused
    history = []
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(images))
        loss_sum, hits = 0.0, 0
        for s in range(steps):
            opt.learning_rate.assign(lr * 0.5 * (1 + math.cos(math.pi * ((epoch - 1) * steps + s) / total)))
            idx = order[s * batch_size:(s + 1) * batch_size]
            x = images[idx].astype(np.float32)
            if augment:
                x = random_crop_flip(x, rng, fill=black)
            loss, hit = step(x, labels[idx].astype(np.int64), no_target if soft is None else soft[idx])
            loss_sum += float(loss)
            hits += int(hit)
        rec = {"epoch": epoch, "loss": loss_sum / max(steps, 1), "train_acc_fixed": hits / max(steps * batch_size, 1),
               "seconds": time.perf_counter() - t0}
        history.append(rec)
        say(f"finetune epoch {epoch}: loss {rec['loss']:.4f}, fixed-point train top-1 {100 * rec['train_acc_fixed']:.2f} %")
    new_params = net.shadow_params(params)
    log = {"epochs": epochs, "lr": lr, "optimizer": optimizer, "batch_size": batch_size, "seed": seed, "augment": augment,
           "images": int(len(images)), "steps": total, "history": history, "seconds": time.perf_counter() - t0,
           "trained": "weights and biases" if train_biases else "weights (biases frozen)",
           "train_biases": train_biases}
    if teachers:     # only when used: the committed logs without it stay what they were
        log["distill"] = distill_record(teachers, kd_alpha, kd_temperature)
    if label_smoothing:  # the same
        log["label_smoothing"] = label_smoothing
    if lr_scale != "absolute":   # the same
        log["lr_scale"] = lr_scale
    new_spec = respec(spec, arch, new_params, {k: v for k, v in log.items() if k != "history"},
                      bias_codes=train_biases or spec.biases is not None)
    return new_params, new_spec, log


def start_from(spec: QuantSpec, arch: Architecture, params: dict, path: str) -> QuantSpec:
    """`spec` (its weight and activation formats, its biases) with the weights of the spec at `path`: that
    spec's weight values rounded to `spec`'s weight formats, bias and accumulator formats re-derived (respec).
    Both must be of the same float network: the same model and the same cross-layer equalization (an
    equalized spec's codes are of a rescaled network)."""
    from sqz.cli_common import CliError
    from sqz.files import file_sha256

    init = QuantSpec.load(path, arch)
    if init.model != arch.name:
        raise CliError(f"--init-from {path} is for {init.model}, not {arch.name}")
    theirs, mine = init.calibration.get("equalize"), spec.calibration.get("equalize")
    if theirs != mine:
        rule = lambda e: e["rule"] if e else "none"   # noqa: E731
        raise CliError(f"--init-from {path} was quantized with equalization {rule(theirs)!r}, --spec with "
                       f"{rule(mine)!r} (or other scales): their weights are of differently scaled networks")
    ours = spec.effective_params(params)                 # the biases stay --spec's
    start = {n: (w, ours[n][1]) for n, (w, _) in init.effective_params(params).items()}
    record = {"spec": str(Path(path).resolve()), "sha256": file_sha256(path)}
    new = respec(spec, arch, start, {"init_from": record}, bias_codes=spec.biases is not None)
    new.calibration["init_from"] = record
    return new


# -- CLI ----------------------------------------------------------------------------------------

def add_commands(sub) -> None:
    from model.cli import add_distill_args
    from quant.cli import add_image_args

    p = sub.add_parser("finetune", help="Ristretto fine-tuning in fixed point (shadow weights, straight-through "
                                        "gradients): a new QuantSpec with new weight codes")
    p.add_argument("--model", default="squeezenet_cifar")
    p.add_argument("--spec", required=True, help="QuantSpec to start from (its formats are kept)")
    add_image_args(p, "fine-tuning")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-5, help="peak learning rate (cosine to 0); 1e-5 at 8 and 6 bits, "
                                                          "1e-4 at 4 bits in BENCHMARKS.md")
    p.add_argument("--optimizer", default="adam", choices=("adam", "sgd"))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-augment", action="store_true", help="no random crops and flips while fine-tuning")
    p.add_argument("--train-biases", action="store_true", help="train the biases too (Ristretto's fine-tuning "
                                                              "updates both); the spec then carries bias codes")
    add_distill_args(p, "fine-tuning")
    p.add_argument("--init-from", metavar="SPEC0", help="start the shadow weights at this spec's weights (rounded "
                                                        "to --spec's weight formats), e.g. one fine-tuned at wider "
                                                        "activations: progressive quantization")
    p.add_argument("--out", required=True, help="the fine-tuned QuantSpec (weight codes beside it, .weights.npz)")
    p.add_argument("--json", help="report JSON (the keys of sqz quantize's report, plus 'before' and 'finetune')")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="smooth the labels of the cross-entropy "
                   "as sqz train does (its default 0.1); default 0, Ristretto's plain cross-entropy")
    p.add_argument("--lr-scale", default="absolute", choices=LR_SCALES,
                   help="absolute (default): --lr in each weight's own units; step: --lr in units of each layer's "
                        "weight step (2**-frac), the same fraction of a code in every layer")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_finetune)


def cmd_finetune(args) -> int:
    from model.architecture import get_architecture
    from model.cli import check_distill_args
    from model.squeezenet import build_keras, keras_weights
    from quant.emulator import FixedPointEmulator
    from quant.search import weight_bytes
    from quant.cli import image_sets
    from sqz.cli_common import CliError, machine, print_table, selection_summary, trained_params, write_json
    from sqz.evaluate import evaluate

    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0:
        raise CliError("--epochs, --batch-size and --lr must be positive")
    if not 0 <= args.label_smoothing < 1:
        raise CliError(f"--label-smoothing {args.label_smoothing}: must be at least 0 and below 1")
    arch = get_architecture(args.model)
    check_distill_args(args, arch)
    spec = QuantSpec.load(args.spec, arch)
    if spec.model != arch.name:
        raise CliError(f"--spec {args.spec} is for {spec.model}, not {arch.name}")
    params = trained_params(args.model)
    if args.init_from:
        spec = start_from(spec, arch, params, args.init_from)
    calib, evalset = image_sets(args, arch, "fine-tuning")
    say = (lambda m: None) if args.quiet else (lambda m: print(m, flush=True))

    xs, ys = [], []
    for x, y, _ in calib.batches(500):
        xs.append(x.astype(np.int16) if np.array_equal(x, np.round(x)) else x.copy())
        ys.append(y)
    if not xs:
        raise CliError(f"{args.calib}: no images")
    images, labels = np.concatenate(xs), np.concatenate(ys)
    say(f"fine-tuning on {len(images)} images of {args.calib}")

    before = FixedPointEmulator(arch, params, spec)
    fx0 = evaluate(before.logit_codes, evalset, 100, None, progress=not args.quiet)
    new_params, new_spec, log = finetune(arch, params, spec, images, labels, args.epochs, args.lr, args.batch_size,
                                         args.seed, not args.no_augment, say, args.optimizer, args.train_biases,
                                         args.teacher, args.kd_alpha, args.kd_temperature, args.label_smoothing,
                                         args.lr_scale)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    new_spec.calibration["finetune"].update({"data": str(Path(args.calib).resolve()),
                                            "selection": selection_summary(calib), "from_spec": str(Path(args.spec).resolve())})
    if args.init_from:      # where the shadow weights started: in the spec's record and the report's
        log["init_from"] = new_spec.calibration["finetune"]["init_from"] = spec.calibration["init_from"]
    new_spec.save(out)
    keras_model = build_keras(arch, weights=keras_weights(params))
    fl = evaluate(keras_model.predict_on_batch, evalset, 100, None, progress=not args.quiet)
    emulator = FixedPointEmulator(arch, params, new_spec)     # the new codes come from the spec
    fx = evaluate(emulator.logit_codes, evalset, 100, None, progress=not args.quiet)

    wbits, abits = new_spec.weight_bits(), new_spec.activation_bits()
    report = {
        "model": args.model, "spec": str(out.resolve()), "from_spec": str(Path(args.spec).resolve()),
        "float": {"top1": fl["top1"], "top5": fl["top5"]},
        "fixed": {"top1": fx["top1"], "top5": fx["top5"], "images_per_s": fx["images_per_s"]},
        "before": {"top1": fx0["top1"], "top5": fx0["top5"]},
        "n": fx["n"], "weight_bits": wbits, "activation_bits": abits, "weight_bytes": weight_bytes(arch, wbits),
        "pareto": [], "saturations": emulator.saturation_report(), "weight_saturations": emulator.weight_saturations,
        "margin": None, "rules": {k: spec.calibration.get(k) for k in ("weight_rule", "activation_rule", "percentile",
                                                                        "weight_rounding")},
        "calibration": {"data": str(Path(args.calib).resolve()), "selection": selection_summary(calib),
                        "images": int(len(images)), "seconds": log["seconds"]},
        "evaluation": {"data": str(Path(args.data).resolve()), "selection": selection_summary(evalset),
                       "skipped": [{"path": p, "reason": r} for p, r in evalset.skipped]},
        "finetune": log, "machine": machine(),
    }
    write_json(args.json, report)
    print_table(f"{args.model}: fixed point before / after fine-tuning, {fx['n']} images of {args.data}", [
        ("float top-1", f"{100 * fl['top1']:.2f} %"),
        ("fixed top-1 before", f"{100 * fx0['top1']:.2f} %"),
        ("fixed top-1 after", f"{100 * fx['top1']:.2f} %"),
        ("fine-tuning", f"{len(images)} images x {args.epochs} epochs, {log['seconds']:.0f} s"),
        ("spec", str(out))])
    return 0
