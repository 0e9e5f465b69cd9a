"""Training of the CIFAR-10 Fire networks (`python -m sqz train --model squeezenet_cifar ...`).

The recipe, all of it in the arguments and the log so a run can be repeated:
- data: the 50,000 training images through model.imagenet's loader (BGR, 0..255 minus the
  architecture's integer means, exactly what the emulator and the hardware are given), decoded once
  into a uint8 array cached beside the unpacked images; the 10,000 test images scored after every epoch;
- augmentation: random crop of the image padded by 4 black pixels (0 in the uint8 images, before the
  mean subtraction; fine-tuning pads with the same black) and horizontal flips, drawn from a numpy
  generator seeded by --seed; optionally (--cutout N) an N x N black square in each image as well (Cutout, DeVries & Taylor 2017),
  drawn after the crops and flips so that without it the random stream is the one of the shipped run;
- model: every convolution of model/architecture.py as Conv2D (no bias) -> BatchNormalization -> ReLU,
  the same names and pools as model/squeezenet.build_keras; batch norm is folded into each conv's
  weights and bias at the end (`fold_batchnorm`), so everything after training sees plain convolutions;
- optimiser: SGD with Nesterov momentum 0.9, decoupled weight decay, label smoothing; one-cycle schedule
  (linear warm-up over the first --warmup fraction of the steps, then cosine down to 0), per step;
- optionally (--teacher W.npz ...) knowledge distillation (Hinton et al. 2015) from trained networks of
  the same input: their softmax at temperature T, averaged over the teachers and over each training image
  and its mirror, computed once before the first epoch (the targets do not depend on the random crop, so
  the teachers cost no time per step); the loss is (1 - alpha) * the label-smoothed cross-entropy +
  alpha * T^2 * KL(teacher || student at T);
- a checkpoint after every epoch (weights, optimiser state, generator state, the log so far) in --out;
  rerunning the same command resumes from it. At the end: the folded weights (npz), the log
  (JSON lines), the accuracy-per-epoch plot.
"""
from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path

import numpy as np

from model.architecture import Architecture, Conv, Fire, GlobalAvgPool, MaxPool

PAD = 4


def load_split(folder, split: str, arch: Architecture, workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 NHWC BGR images, int64 labels) of a CIFAR-10 split, decoded once and cached as .npy."""
    from model.cifar10 import unpack
    from model.imagenet import ImageFolderDataset

    root = unpack(folder, split)
    cache_x, cache_y = root / f"{split}_u8.npy", root / f"{split}_labels.npy"
    if cache_x.is_file() and cache_y.is_file():
        return np.load(cache_x), np.load(cache_y)
    # in path order (class by class, as the archive), whatever labels.txt's order: the array, and so the
    # run's random permutations of it, do not depend on the cache layout
    entries = ImageFolderDataset(root, num_classes=arch.num_classes).all_entries
    order = sorted(range(len(entries)), key=lambda i: entries[i].relpath)
    ds = ImageFolderDataset(root, size=arch.input_size, resize=arch.resize, mean_bgr=arch.mean_bgr, workers=workers,
                            indices=order)
    xs, ys = [], []
    for x, y, _ in ds.batches(1000, raw=True):
        xs.append(x.copy())
        ys.append(y)
    x, y = np.concatenate(xs), np.concatenate(ys)
    tmp = root / f".{split}_u8.{os.getpid()}.npy"
    np.save(tmp, x)
    tmp.rename(cache_x)
    np.save(cache_y, y)
    return x, y


def to_input(x_u8: np.ndarray, arch: Architecture) -> np.ndarray:
    """uint8 BGR -> the network input: float32, minus the architecture's integer means."""
    return x_u8.astype(np.float32) - np.asarray(arch.mean_bgr, np.float32)


def augment(x: np.ndarray, rng: np.random.Generator, cutout: int = 0, fill=0) -> np.ndarray:
    """Random crop of the padded image and random horizontal flip, per image; with `cutout`, a cutout x
    cutout square (centre uniform over the image, clipped at its edges) filled too. The fill is black in
    both stages that call this: 0 for training's uint8 images, -mean (`black_input`) for fine-tuning's
    mean-subtracted ones."""
    n, h, w, c = x.shape
    padded = np.empty((n, h + 2 * PAD, w + 2 * PAD, c), x.dtype)
    padded[:] = fill
    padded[:, PAD:PAD + h, PAD:PAD + w] = x
    dy, dx = rng.integers(0, 2 * PAD + 1, n), rng.integers(0, 2 * PAD + 1, n)
    flip = rng.random(n) < 0.5
    out = np.empty_like(x)
    for i in range(n):
        img = padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = img[:, ::-1] if flip[i] else img
    if cutout:
        cy, cx = rng.integers(0, h, n), rng.integers(0, w, n)
        for i in range(n):
            out[i, max(0, cy[i] - cutout // 2):cy[i] + (cutout + 1) // 2,
                max(0, cx[i] - cutout // 2):cx[i] + (cutout + 1) // 2] = fill
    return out


def black_input(arch: Architecture) -> np.ndarray:
    """A black pixel as the network input (after the mean subtraction): augment's fill for such images."""
    return to_input(np.zeros(arch.in_channels, np.uint8), arch)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax over the last axis of logits / temperature (float64 in: the distillation targets' precision)."""
    z = logits / temperature
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def teacher_targets(arch: Architecture, teachers, x_u8: np.ndarray, temperature: float,
                    batch_size: int = 500) -> np.ndarray:
    """The distillation targets of `x_u8` (N, float32 probabilities over the classes): each teacher's
    (folded weights, model/trained.py's format) softmax of logits / temperature on the image and on its
    mirror, averaged over both and over the teachers; the same for an image and its mirror, so the
    training's flips need no second set."""
    return input_teacher_targets(arch, teachers, to_input(x_u8, arch), temperature, batch_size)


def targets_line(teachers, soft: np.ndarray, labels: np.ndarray, seconds: float) -> str:
    """The progress line `sqz train` and `sqz finetune` print once the distillation targets are computed."""
    return (f"distillation targets of {len(teachers)} teacher(s) on {len(labels)} images: teachers' top-1 "
            f"{float(np.mean(soft.argmax(-1) == labels)):.4f} on them, {seconds:.0f} s")


def input_teacher_targets(arch: Architecture, teachers, x: np.ndarray, temperature: float,
                          batch_size: int = 500) -> np.ndarray:
    """teacher_targets of network inputs `x` (mean-subtracted, as the loader's batches and to_input give
    them): what `sqz finetune --teacher` uses, its images being inputs already."""
    from model.squeezenet import build_keras, keras_weights
    from model.trained import load_params
    from sqz.passes import mirrored

    x = np.asarray(x, np.float32)
    total = np.zeros((len(x), arch.num_classes), np.float64)
    for path in teachers:
        net = build_keras(arch, softmax=False, weights=keras_weights(load_params(path, arch)[0]))
        for view in (x, mirrored(x)):
            total += softmax(net.predict(view, batch_size=batch_size, verbose=0).astype(np.float64), temperature)
    return (total / (2 * len(teachers))).astype(np.float32)


def distill_record(teachers, alpha: float, temperature: float) -> dict:
    """What a run distilled from (files by content, so a changed teacher is seen): the training's checkpoint
    config and the fine-tuning's log both record it."""
    from sqz.files import file_sha256

    return {"teachers": [{"path": str(t), "sha256": file_sha256(t)} for t in teachers],
            "alpha": alpha, "temperature": temperature}


def distillation_loss(hard_loss, logits, target, alpha: float, temperature: float):
    """Hinton et al.'s loss (TensorFlow): (1 - alpha) * hard_loss + alpha * T^2 * KL(target || softmax(logits / T)),
    the KL averaged over the batch; `target` the teachers' softmax at T (teacher_targets). Training and
    fine-tuning both call it."""
    import tensorflow as tf

    log_student = tf.nn.log_softmax(logits / temperature, axis=-1)
    kl = tf.reduce_sum(target * (tf.math.log(tf.maximum(target, 1e-12)) - log_student), axis=-1)
    return (1 - alpha) * hard_loss + alpha * temperature ** 2 * tf.reduce_mean(kl)


def build_train_model(arch: Architecture):
    """Keras model for training: each conv of `arch` is Conv2D(no bias) -> BN -> ReLU (logits out)."""
    import keras

    from model.squeezenet import _maxpool

    def cbr(x, conv: Conv):
        if conv.pad and conv.kernel != 2 * conv.pad + 1:
            raise ValueError(f"{conv.name}: only 'same' padding is trained here")
        x = keras.layers.Conv2D(conv.filters, conv.kernel, strides=conv.stride, use_bias=False,
                                padding="same" if conv.pad else "valid", name=conv.name,
                                kernel_initializer="he_normal")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{conv.name}_bn")(x)
        return keras.layers.ReLU(name=f"{conv.name}_relu")(x) if conv.relu else x

    inputs = keras.Input((arch.input_size, arch.input_size, arch.in_channels), name="data")
    x = inputs
    for layer, in_shape, _ in arch.shapes():
        if isinstance(layer, Conv):
            x = cbr(x, layer)
        elif isinstance(layer, MaxPool):
            x = _maxpool(keras, layer, x, in_shape)
        elif isinstance(layer, Fire):
            squeeze, e1, e3 = layer.convs
            s = cbr(x, squeeze)
            y = keras.layers.Concatenate(axis=-1, name=f"{layer.name}_concat")([cbr(s, e1), cbr(s, e3)])
            x = keras.layers.Add(name=f"{layer.name}_bypass")([x, y]) if layer.bypass else y
        elif isinstance(layer, GlobalAvgPool):
            x = keras.layers.GlobalAveragePooling2D(name=layer.name)(x)
    return keras.Model(inputs, x, name=f"{arch.name}_train")


def fold_batchnorm(model, arch: Architecture) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """conv name -> (weight OIHW float32, bias float32) with each conv's batch norm folded in:
    w' = w * gamma / sqrt(var + eps), b' = beta - mean * gamma / sqrt(var + eps)."""
    params = {}
    for conv in arch.convs():
        kernel = model.get_layer(conv.name).get_weights()[0].astype(np.float64)     # HWIO
        bn = model.get_layer(f"{conv.name}_bn")
        gamma, beta, mean, var = (a.astype(np.float64) for a in bn.get_weights())
        scale = gamma / np.sqrt(var + bn.epsilon)
        w = (kernel * scale).transpose(3, 2, 0, 1)                                   # OIHW
        params[conv.name] = (w.astype(np.float32), (beta - mean * scale).astype(np.float32))
    return params


def lr_at(step: int, total: int, peak: float, warmup: float) -> float:
    """One-cycle: linear from peak/10 to peak over the warm-up, then cosine to 0."""
    w = max(1, int(total * warmup))
    if step < w:
        return peak * (0.1 + 0.9 * step / w)
    t = (step - w) / max(1, total - w)
    return peak * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def plot_history(history: list[dict], path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ep, [100 * h["train_acc"] for h in history], label="train (augmented)")
    ax.plot(ep, [100 * h["test_acc"] for h in history], label="test, 10,000 images")
    ax.set_xlabel("epoch")
    ax.set_ylabel("top-1 (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def train(arch: Architecture, data: str, out, epochs: int, batch_size: int = 128, lr: float = 0.1,
          weight_decay: float = 5e-4, warmup: float = 0.15, label_smoothing: float = 0.1, seed: int = 0,
          limit: int | None = None, weights_out=None, plot=None, say=print, command: str = "",
          stop_after: int | None = None, cutout: int = 0, teachers=(), kd_alpha: float = 0.9,
          kd_temperature: float = 4.0) -> dict:
    """Train (or resume) and write the folded weights; returns the summary. `limit`: use only
    N training images (a fixed random subset; smoke tests and probes); the test set is always all of it.
    `stop_after`: return after that many epochs in all, checkpoint written, as an interrupted run would.
    `teachers`: weights files to distil from (module docstring), with `kd_alpha` and `kd_temperature`."""
    import keras
    import tensorflow as tf

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    x_train, y_train = load_split(data, "train", arch)
    x_test, y_test = load_split(data, "test", arch)
    if limit:   # a fixed random subset (the files are sorted by class)
        keep = np.sort(np.random.default_rng(12345).permutation(len(x_train))[:limit])
        x_train, y_train = x_train[keep], y_train[keep]
    n = len(x_train)
    steps_per_epoch = n // batch_size
    total = steps_per_epoch * epochs

    model = build_train_model(arch)
    opt = keras.optimizers.SGD(learning_rate=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    opt.build(model.trainable_variables)
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=label_smoothing)
    rng = np.random.default_rng(seed)
    history: list[dict] = []
    config = dict(model=arch.name, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                  warmup=warmup, label_smoothing=label_smoothing, seed=seed, limit=limit, train_images=n)
    if cutout:      # only when used: the shipped run's checkpoints and meta have no such key
        config["cutout"] = cutout
    if teachers:    # the same: and the files by content, so a changed teacher cannot resume a run
        config["distill"] = distill_record(teachers, kd_alpha, kd_temperature)

    ckpt = out / "checkpoint.npz"
    if ckpt.is_file():
        with np.load(ckpt, allow_pickle=False) as z:
            saved = json.loads(bytes(z["state"]).decode())
            if saved["config"] != config:
                from sqz.errors import SqzError
                raise SqzError(f"{ckpt}: checkpoint of a different run ({saved['config']}); use another --out")
            for i, v in enumerate(model.weights):
                v.assign(z[f"m{i}"])
            for i, v in enumerate(opt.variables):
                v.assign(z[f"o{i}"])
        history = saved["history"]
        rng.bit_generator.state = saved["rng"]
        say(f"resumed from {ckpt} after epoch {len(history)}")

    soft = None
    if teachers:    # before the first step, on every run of the command: a pure function of the files
        t0 = time.perf_counter()
        soft = teacher_targets(arch, teachers, x_train, kd_temperature)
        say(targets_line(teachers, soft, y_train, time.perf_counter() - t0))

    @tf.function(autograph=False)   # no Python control flow inside; autograph would re-read this file
    def train_step(x, y, target):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = (loss_fn(y, logits) if soft is None
                    else distillation_loss(loss_fn(y, logits), logits, target, kd_alpha, kd_temperature))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss, tf.reduce_sum(tf.cast(tf.argmax(logits, -1) == tf.argmax(y, -1), tf.int32))

    @tf.function(autograph=False)   # no Python control flow inside; autograph would re-read this file
    def predict(x):
        return model(x, training=False)

    test_in = to_input(x_test, arch)

    def test_accuracy() -> float:
        hits = 0
        for i in range(0, len(test_in), 500):
            hits += int(np.sum(np.argmax(predict(test_in[i:i + 500]).numpy(), -1) == y_test[i:i + 500]))
        return hits / len(test_in)

    eye = np.eye(arch.num_classes, dtype=np.float32)
    for epoch in range(len(history) + 1, epochs + 1):
        t0 = time.perf_counter()
        order = rng.permutation(n)
        loss_sum, hits = 0.0, 0
        for s in range(steps_per_epoch):
            idx = order[s * batch_size:(s + 1) * batch_size]
            opt.learning_rate.assign(lr_at((epoch - 1) * steps_per_epoch + s, total, lr, warmup))
            xb = to_input(augment(x_train[idx], rng, cutout), arch)
            loss, hit = train_step(xb, eye[y_train[idx]], eye[y_train[idx]] if soft is None else soft[idx])
            loss_sum += float(loss)
            hits += int(hit)
        train_s = time.perf_counter() - t0
        rec = {"epoch": epoch, "loss": loss_sum / steps_per_epoch, "train_acc": hits / (steps_per_epoch * batch_size),
               "test_acc": test_accuracy(), "lr_end": float(opt.learning_rate.numpy()), "train_s": train_s,
               "epoch_s": time.perf_counter() - t0}
        history.append(rec)
        say(json.dumps(rec))
        state = {"config": config, "history": history, "rng": rng.bit_generator.state}
        arrays = {f"m{i}": v.numpy() for i, v in enumerate(model.weights)}
        arrays.update({f"o{i}": v.numpy() for i, v in enumerate(opt.variables)})
        tmp = out / "checkpoint.tmp.npz"
        np.savez(tmp, state=np.frombuffer(json.dumps(state).encode(), np.uint8), **arrays)
        tmp.replace(ckpt)
        (out / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
        if stop_after is not None and epoch >= stop_after and epoch < epochs:
            return {"config": config, "history": history, "interrupted": True}

    params = fold_batchnorm(model, arch)
    # the folded network must score what the trained one does (same images, float32 rounding only)
    from model.squeezenet import build_keras, keras_weights

    folded = build_keras(arch, softmax=False, weights=keras_weights(params))
    folded_acc = float(np.mean(np.argmax(folded.predict(test_in, batch_size=500, verbose=0), -1) == y_test))
    summary = {"config": config, "history": history, "test_acc": history[-1]["test_acc"] if history else None,
               "folded_test_acc": folded_acc, "train_seconds": sum(h["epoch_s"] for h in history),
               "machine": f"{platform.machine()}, {os.cpu_count()} cores", "command": command,
               "tensorflow": tf.__version__}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    if weights_out:
        from model.trained import save_params

        save_params(weights_out, params, {k: v for k, v in summary.items() if k != "history"})
    if plot and history:
        plot_history(history, plot, f"{arch.name} on CIFAR-10")
    return summary
