"""Issue 13: the CIFAR-10 loader and resolver, squeezenet_cifar, its training (smoke), batch-norm
folding, the trained weights, and Ristretto fine-tuning's fixed-point forward pass."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.cifar10 import ARCHIVES, CLASSES, Cifar10Error, is_cifar10_folder, unpack
from tests.conftest import ROOT

SHARED_CIFAR = ROOT.parent / "shared" / "data" / "cifar10"
SAMPLE = ROOT / "data" / "cifar10_sample"


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def _archive(path: Path, split: str, per_class: int, extra: dict | None = None) -> None:
    with tarfile.open(path, "w:gz") as tar:
        files = {f"{split}/{c}/{i:04d}.jpg": _jpeg(10 * k + i) for k, c in enumerate(CLASSES) for i in range(per_class)}
        files.update(extra or {})
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SQZ_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def tiny_cifar(tmp_path, cache):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    _archive(folder / ARCHIVES["train"], "train", 4)
    _archive(folder / ARCHIVES["test"], "test", 2)
    return folder


# -- loader and resolver -------------------------------------------------------------------------

def test_unpack_once_into_the_cache_interleaved_labels(tiny_cifar, cache):
    from model.imagenet import ImageFolderDataset

    root = unpack(tiny_cifar, "train")
    assert root.parent.parent == cache and not str(root).startswith(str(ROOT))
    lines = (root / "labels.txt").read_text().splitlines()
    assert len(lines) == 40
    assert [int(l.split()[1]) for l in lines[:10]] == list(range(10))     # every class in any prefix
    assert (root / "synset_words.txt").read_text().split() == list(CLASSES)
    stamp = (root / "labels.txt").stat().st_mtime_ns
    assert unpack(tiny_cifar, "train") == root and (root / "labels.txt").stat().st_mtime_ns == stamp  # once
    ds = ImageFolderDataset(root, size=32, resize=32)
    assert ds.num_classes == 10 and len(ds) == 40
    x, y, _ = next(ds.batches(40))
    assert x.shape == (40, 32, 32, 3) and sorted(set(y.tolist())) == list(range(10))


def test_bad_archives_are_refused_with_the_member_named(tmp_path, cache):
    folder = tmp_path / "bad"
    folder.mkdir()
    _archive(folder / ARCHIVES["test"], "test", 1, {"test/unicorn/0000.jpg": _jpeg(0)})
    with pytest.raises(Cifar10Error, match="unicorn"):
        unpack(folder, "test")
    _archive(folder / ARCHIVES["test"], "test", 1, {"../evil.jpg": _jpeg(0)})
    with pytest.raises(Cifar10Error, match="evil"):
        unpack(folder, "test")
    (folder / ARCHIVES["test"]).write_bytes(b"not a gzip file")
    with pytest.raises(Cifar10Error, match="not a readable"):
        unpack(folder, "test")
    with pytest.raises(Cifar10Error, match="not found"):
        unpack(folder, "train")
    assert not list(cache.glob("cifar10/test-*"))        # nothing half-written was left as a split


def test_a_bad_image_is_named_or_skipped_as_for_imagenet(tmp_path, cache):
    from model.imagenet import BadImageError, ImageFolderDataset

    folder = tmp_path / "c"
    folder.mkdir()
    _archive(folder / ARCHIVES["test"], "test", 1, {"test/cat/0001.jpg": b"\xff\xd8 truncated"})
    root = unpack(folder, "test")
    with pytest.raises(BadImageError, match="cat/0001.jpg"):
        list(ImageFolderDataset(root, size=32, resize=32).batches(4))
    ds = ImageFolderDataset(root, size=32, resize=32, skip_bad=True)
    assert sum(len(y) for _, y, _ in ds.batches(4)) == 10 and len(ds.skipped) == 1


def test_resolver_test_for_data_train_for_calib_else_error(tiny_cifar, tmp_path):
    from sqz.cli import main
    from sqz.cli_common import CliError, require_labels

    assert is_cifar10_folder(tiny_cifar) and not is_cifar10_folder(SAMPLE)
    assert Path(require_labels(str(tiny_cifar), "--data")).name.startswith("test-")
    assert Path(require_labels(str(tiny_cifar), "--calib")).name.startswith("train-")
    assert require_labels(str(SAMPLE)) == str(SAMPLE)                 # labels.txt: as it is
    (tmp_path / "empty").mkdir()
    with pytest.raises(CliError, match="no labels.txt"):
        require_labels(str(tmp_path / "empty"))
    assert main(["eval", "--model", "squeezenet_cifar", "--data", str(tmp_path / "empty")]) == 2


def test_the_shared_cifar10_test_split_has_10000_images(cache):
    root = unpack(SHARED_CIFAR, "test")
    lines = (root / "labels.txt").read_text().splitlines()
    assert len(lines) == 10_000
    assert np.bincount([int(l.split()[1]) for l in lines]).tolist() == [1000] * 10


# -- the architecture and the estimator -----------------------------------------------------------

def test_squeezenet_cifar_shapes_and_hardware_ops():
    from hw.ops.registry import build_ops, check_architecture
    from model.architecture import Conv, Fire, get_architecture

    arch = get_architecture("squeezenet_cifar")
    check_architecture(arch)
    assert arch.layers[0] == Conv("conv1", arch.layers[0].filters, 3, stride=1, pad=1)
    sizes = [out[0] for layer, _, out in arch.shapes() if isinstance(layer, Fire)]
    assert set(sizes) == {16, 8} and sizes == sorted(sizes, reverse=True)
    assert arch.shapes()[-1][2] == (1, 1, 10) and arch.num_classes == 10
    kinds = [op.kind for op in build_ops(arch, 8)]
    assert kinds.count("maxpool") == 2 and kinds[-1] == "gap" and "dense" not in kinds


def test_fire_bypass_adds_the_input_and_is_refused_where_not_built():
    import dataclasses

    from hw.ops.base import UnsupportedModelError
    from hw.ops.registry import build_ops
    from model.architecture import ArchitectureError, Fire, bypasses, get_architecture
    from model.squeezenet import build_keras
    from quant.emulator import FloatNetwork

    plain, bypassed = get_architecture("squeezenet_cifar"), get_architecture("squeezenet_cifar_h")
    assert [layer.name for layer in bypassed.layers if isinstance(layer, Fire) and layer.bypass] == ["fire3", "fire6"]
    assert bypasses(bypassed) == ["fire3", "fire6"] and bypasses(plain) == []
    assert bypassed.conv_shapes() == plain.conv_shapes()          # same weights: the bypass has none
    rng = np.random.default_rng(1)
    x = rng.normal(0, 60, (2, 32, 32, 3)).astype(np.float32)
    with_b, without = build_keras(bypassed, softmax=False), build_keras(plain, softmax=False)
    without.set_weights(with_b.get_weights())
    inner = lambda m, name: m.get_layer(name).output      # noqa: E731
    import keras

    probe = keras.Model(with_b.input, [inner(with_b, "fire2_concat"), inner(with_b, "fire3_concat"),
                                       inner(with_b, "fire3_bypass")])
    fire2, fire3, summed = (np.asarray(a) for a in probe.predict_on_batch(x))
    np.testing.assert_allclose(summed, fire2 + fire3, rtol=1e-6)
    assert not np.allclose(with_b.predict_on_batch(x), without.predict_on_batch(x))

    wrong = dataclasses.replace(plain, layers=tuple(dataclasses.replace(layer, bypass=True) if layer.name == "fire4"
                                                    else layer for layer in plain.layers))
    with pytest.raises(ArchitectureError, match="fire4: a bypass .* 96 channels and the output 192"):
        wrong.shapes()
    with pytest.raises(ArchitectureError, match="fire3 has a bypass, which quant/"):
        FloatNetwork(bypassed, {}).logits(x)
    with pytest.raises(UnsupportedModelError, match="fire3 has a bypass, which hw/"):
        build_ops(bypassed, 8)


def test_squeezenet_cifar_estimate_fits_pynq_z2_within_issue_limits():
    from hw.boards import SMALL_BOARD_LIMITS
    from hw.estimate import choose_reuse, estimate
    from model.architecture import get_architecture

    from sqz.demo import BOARD_DEFAULTS

    assert SMALL_BOARD_LIMITS == {"lut": 0.8, "bram18": 0.9}   # issue 13's ceilings; the rest may be used whole
    arch = get_architecture("squeezenet_cifar")
    bits = BOARD_DEFAULTS["pynq-z2"].bits          # the width the PYNQ-Z2 design point uses (6)
    e = estimate(arch, "pynq-z2", bits, choose_reuse(arch, "pynq-z2", bits, utilisation_limit=SMALL_BOARD_LIMITS))
    assert e.fits and e.utilisation["lut"] <= 80 and e.utilisation["bram18"] <= 90
    assert e.clock_mhz == 100 and e.fps >= 900
    held = estimate(arch, "pynq-z2", bits, choose_reuse(arch, "pynq-z2", bits, fps=900))   # what the demo builds
    assert held.fps >= 900 and held.utilisation["lut"] <= e.utilisation["lut"]


# -- training, folding, weights ------------------------------------------------------------------

def test_augment_cutout_is_drawn_after_the_crops_and_flips():
    """Without --cutout the random stream is the shipped run's; with it the same crops and flips, plus one
    zeroed square per image (at most N x N, at least a quarter of it where clipped at a corner)."""
    from model.cifar_train import augment

    x = np.random.default_rng(1).integers(1, 256, (16, 32, 32, 3), dtype=np.uint8)     # no zero pixel
    r0, r1 = np.random.default_rng(7), np.random.default_rng(7)
    plain, cut = augment(x, r0), augment(x, r1, cutout=8)
    changed = cut != plain
    assert np.all(cut[changed] == 0)                       # only zeroing, on top of the same crops and flips
    zeroed = np.all(changed, axis=-1).reshape(16, -1).sum(1)
    padding = np.all(plain == 0, axis=-1).reshape(16, -1).sum(1)
    assert np.all(zeroed <= 64) and np.all(zeroed + padding >= 16) and zeroed.sum() > 16 * 16
    r3, r4 = np.random.default_rng(7), np.random.default_rng(7)
    augment(x, r3)
    augment(x, r4, cutout=0)
    assert r3.bit_generator.state == r4.bit_generator.state          # cutout 0 draws nothing more


def test_training_and_fine_tuning_augment_alike():
    """The same crops, flips, padding and cutout whether the images are uint8 (training) or already
    mean-subtracted (fine-tuning): one rule, black padding in both."""
    from model.architecture import get_architecture
    from model.cifar_train import augment, black_input, to_input

    arch = get_architecture("squeezenet_cifar")
    x = np.random.default_rng(2).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    train = to_input(augment(x, np.random.default_rng(5), cutout=6), arch)
    tune = augment(to_input(x, arch), np.random.default_rng(5), cutout=6, fill=black_input(arch))
    assert np.array_equal(train, tune)
    assert np.any(np.all(tune == black_input(arch), axis=-1))          # there is padding, and it is black


@pytest.mark.parametrize("name", ["squeezenet_cifar", "squeezenet_cifar_h"])    # h: with Fire bypasses
def test_batchnorm_folding_gives_the_trained_network(name):
    import keras

    from model.architecture import get_architecture
    from model.cifar_train import build_train_model, fold_batchnorm
    from model.squeezenet import build_keras, keras_weights

    arch = get_architecture(name)
    model = build_train_model(arch)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 0.5, c),
                               rng.uniform(0.5, 2.0, c)])
    x = rng.normal(0, 60, (4, 32, 32, 3)).astype(np.float32)
    folded = build_keras(arch, softmax=False, weights=keras_weights(fold_batchnorm(model, arch)))
    np.testing.assert_allclose(folded.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-4, atol=1e-4)


def test_train_smoke_checkpoints_and_resumes(tiny_cifar, tmp_path):
    from model.architecture import get_architecture
    from model.cifar_train import train
    from model.trained import load_params

    arch = get_architecture("squeezenet_cifar")
    out, weights = tmp_path / "run", tmp_path / "w.npz"
    first = train(arch, str(tiny_cifar), out, epochs=2, batch_size=8, stop_after=1, say=lambda m: None)
    assert len(first["history"]) == 1 and (out / "checkpoint.npz").is_file()
    said = []
    s = train(arch, str(tiny_cifar), out, epochs=2, batch_size=8, weights_out=weights, plot=tmp_path / "p.png",
              say=said.append)
    assert said[0].startswith("resumed") and [h["epoch"] for h in s["history"]] == [1, 2]
    assert s["history"][0] == first["history"][0]
    params, meta = load_params(weights, arch)
    assert set(params) == {c.name for c in arch.convs()} and meta["config"]["epochs"] == 2
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert s["folded_test_acc"] == pytest.approx(s["test_acc"], abs=0.051)   # 20 test images: one may flip


def test_distillation_targets_are_the_teachers_softmax_same_for_a_mirror():
    from model.architecture import get_architecture
    from model.cifar_train import softmax, teacher_targets, to_input
    from model.squeezenet import build_keras, keras_weights
    from model.trained import trained_params, weights_path

    p = softmax(np.array([[0.0, 1.0, 2.0], [5.0, 5.0, 5.0]]))
    assert p.sum(-1) == pytest.approx([1, 1]) and p[1] == pytest.approx([1 / 3] * 3) and p[0].argmax() == 2
    assert softmax(np.array([[0.0, 4.0]]), temperature=4.0) == pytest.approx(softmax(np.array([[0.0, 1.0]])))
    arch = get_architecture("squeezenet_cifar")
    x = np.random.default_rng(3).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    teacher = weights_path("squeezenet_cifar")
    t1 = teacher_targets(arch, [teacher], x, temperature=1.0)
    np.testing.assert_allclose(t1.sum(-1), 1.0, rtol=1e-5)
    mirrored = teacher_targets(arch, [teacher], x[:, :, ::-1].copy(), temperature=1.0)
    np.testing.assert_allclose(mirrored, t1, rtol=1e-4, atol=1e-6)
    # at T = 1: the mean of the teacher's softmax on the image and on its mirror
    net = build_keras(arch, weights=keras_weights(trained_params("squeezenet_cifar")))    # softmax out
    both = (net.predict(to_input(x, arch), verbose=0) + net.predict(to_input(x[:, :, ::-1], arch), verbose=0)) / 2
    np.testing.assert_allclose(t1, both, rtol=1e-4, atol=1e-6)
    # a higher temperature spreads the targets; a twice-listed teacher is the teacher
    entropy = lambda p: -np.sum(p * np.log(p), -1)
    assert np.all(entropy(teacher_targets(arch, [teacher], x, temperature=4.0)) > entropy(t1))
    np.testing.assert_allclose(teacher_targets(arch, [teacher, teacher], x, 1.0), t1, rtol=1e-5)


def test_train_with_a_teacher_records_it_and_will_not_resume_with_another(tiny_cifar, tmp_path):
    import shutil

    from model.architecture import get_architecture
    from model.cifar_train import train
    from model.trained import weights_path
    from sqz.cli import main
    from sqz.errors import SqzError
    from sqz.files import file_sha256

    arch = get_architecture("squeezenet_cifar")
    teacher = tmp_path / "teacher.npz"
    shutil.copy(weights_path("squeezenet_cifar"), teacher)
    said = []
    s = train(arch, str(tiny_cifar), tmp_path / "run", epochs=2, batch_size=8, stop_after=1, say=said.append,
              teachers=[teacher], kd_alpha=0.5, kd_temperature=2.0)
    assert said[0].startswith("distillation targets of 1 teacher(s) on 40 images")
    assert s["config"]["distill"] == {"teachers": [{"path": str(teacher), "sha256": file_sha256(teacher)}],
                                      "alpha": 0.5, "temperature": 2.0}
    assert np.isfinite(s["history"][0]["loss"]) and s["history"][0]["loss"] > 0
    shutil.copy(tmp_path / "run" / "checkpoint.npz", teacher)       # the same path, other contents
    with pytest.raises(SqzError, match="checkpoint of a different run"):
        train(arch, str(tiny_cifar), tmp_path / "run", epochs=2, batch_size=8, say=lambda m: None,
              teachers=[teacher], kd_alpha=0.5, kd_temperature=2.0)
    base = ["train", "--data", str(tiny_cifar), "--out", str(tmp_path / "cli")]
    assert main(base + ["--teacher", str(tmp_path / "none.npz")]) == 2
    assert main(base + ["--teacher", str(weights_path("squeezenet_cifar")), "--kd-alpha", "0"]) == 2
    assert main(base + ["--teacher", str(weights_path("squeezenet_cifar_b"))]) == 2    # other shapes
    assert not (tmp_path / "cli").exists()


def test_trained_weights_ship_and_score_on_the_sample(tmp_path):
    from sqz.cli import main

    out = tmp_path / "eval.json"
    assert main(["eval", "--model", "squeezenet_cifar", "--json", str(out), "--quiet"]) == 0   # default: the sample
    r = json.loads(out.read_text())
    assert r["n"] == 200 and r["top1"] > 0.7


# -- fine-tuning ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cifar_spec():
    from model.architecture import get_architecture
    from model.trained import trained_params
    from quant.calibrate import Calibration
    from sqz.cli_common import image_dataset

    arch = get_architecture("squeezenet_cifar")
    params = trained_params("squeezenet_cifar")
    x, y, _ = next(image_dataset(str(SAMPLE), arch).batches(200))
    cal = Calibration(arch, params)
    cal.add_batch(x[:100])
    return arch, params, cal, x, y


def test_given_activation_integer_lengths_replace_the_rule_and_the_formats_follow(cifar_spec):
    """make_spec(activation_integers=): the given result formats are taken (a Fire module's expands as one),
    every other format is the rule's, consumers read the new format, and a split Fire pair or an unknown
    layer is refused with the layers named."""
    from quant.calibrate import make_spec
    from quant.spec import input_formats

    arch, params, cal, x, _ = cifar_spec
    base = make_spec(cal, 4, 4, "minmse", "minmse")
    e1, e3 = "fire3_expand1x1", "fire3_expand3x3"
    i = base.layers[e1].result.integer + 1
    moved = make_spec(cal, 4, 4, "minmse", "minmse", activation_integers={e1: i, e3: i})
    for n in base.layers:
        if n in (e1, e3):
            assert moved.layers[n].result.integer == i and moved.layers[n].result.width == 4
        elif hasattr(base.layers[n], "weight"):
            assert moved.layers[n].result == base.layers[n].result
    assert input_formats(arch, moved)["fire4_squeeze1x1"].integer == i != \
        input_formats(arch, base)["fire4_squeeze1x1"].integer
    with pytest.raises(ValueError, match="fire3_expand1x1 and fire3_expand3x3 share one result format"):
        make_spec(cal, 4, 4, "minmse", "minmse", activation_integers={e1: i, e3: i - 1})
    with pytest.raises(ValueError, match="no convolution 'fire9_squeeze1x1'"):
        make_spec(cal, 4, 4, "minmse", "minmse", activation_integers={"fire9_squeeze1x1": 2})


@pytest.mark.parametrize("bits, train_biases", [(8, False), (4, False), (4, True)])
def test_finetune_forward_pass_is_the_emulator_bit_for_bit(cifar_spec, bits, train_biases):
    """Also with the spec's own bias codes (moved off the float biases) and the biases trained."""
    import dataclasses

    from quant.calibrate import make_spec
    from quant.emulator import FixedPointEmulator
    from quant.finetune import FixedPointTrainer
    from tests.tiny_net import moved_biases

    arch, params, cal, x, _ = cifar_spec
    spec = make_spec(cal, bits, bits)
    if train_biases:
        spec = dataclasses.replace(spec, biases=moved_biases(spec, params, step=0.05))
    ref = FixedPointEmulator(arch, params, spec).logit_codes(x[100:])
    net = FixedPointTrainer(arch, params, spec, train_biases=train_biases)
    got = net.logits(x[100:]).numpy() * 2.0 ** spec.logit_format.frac
    assert np.array_equal(got, ref)
    assert len(net.variables) == len(arch.convs()) * (2 if train_biases else 1)


def test_finetune_cli_writes_a_spec_the_emulator_and_hls_read(cifar_spec, tmp_path):
    from quant.emulator import FixedPointEmulator
    from quant.spec import QuantSpec
    from sqz.cli import main

    arch, params, cal, x, y = cifar_spec
    from quant.calibrate import make_spec

    spec0 = tmp_path / "q4.json"
    make_spec(cal, 4, 4).save(spec0)
    out, report = tmp_path / "ft.json", tmp_path / "report.json"
    assert main(["finetune", "--model", "squeezenet_cifar", "--spec", str(spec0), "--calib", str(SAMPLE),
                 "--calib-stop", "100", "--data", str(SAMPLE), "--start", "100", "--epochs", "1", "--batch-size", "50",
                 "--lr", "0.01", "--out", str(out), "--json", str(report), "--quiet"]) == 0
    r = json.loads(report.read_text())
    for key in ("float", "fixed", "before", "n", "weight_bits", "activation_bits", "saturations", "finetune"):
        assert key in r
    assert r["n"] == 100 and r["finetune"]["images"] == 100
    new = QuantSpec.load(out, arch)
    old = QuantSpec.load(spec0, arch)
    assert new.weights is not None and new.weight_bits() == old.weight_bits()
    changed = sum(int(np.count_nonzero(new.weights[n] != old.weights[n])) for n in new.weights)
    assert changed > 0                                         # the update reached the weight codes
    FixedPointEmulator(arch, params, new).logit_codes(x[:4])   # accumulators re-derived: the emulator accepts it
    assert new.biases is None and r["finetune"]["train_biases"] is False
    # --train-biases: the spec carries bias codes, moved off the float biases' rounding, read by the emulator
    assert main(["finetune", "--model", "squeezenet_cifar", "--spec", str(spec0), "--calib", str(SAMPLE),
                 "--calib-stop", "100", "--data", str(SAMPLE), "--start", "100", "--epochs", "1", "--batch-size", "50",
                 "--lr", "0.01", "--train-biases", "--out", str(out), "--json", str(report), "--quiet"]) == 0
    r, new = json.loads(report.read_text()), QuantSpec.load(out, arch)
    assert r["finetune"]["train_biases"] is True and sorted(new.biases) == sorted(new.weights)
    moved = sum(int(np.count_nonzero(new.biases[n] != new.layers[n].bias.quantize(params[n][1].astype(np.float64))))
                for n in new.biases)
    assert moved > 0
    emulator = FixedPointEmulator(arch, params, new)
    assert np.mean(np.argmax(emulator.logit_codes(x[100:]), -1) == y[100:]) == pytest.approx(r["fixed"]["top1"])
    assert main(["finetune", "--model", "squeezenet_cifar", "--spec", str(spec0), "--calib", str(SAMPLE),
                 "--data", str(SAMPLE), "--out", str(out), "--quiet"]) == 2          # overlapping images


def test_finetune_init_from_starts_at_another_specs_weights(cifar_spec, tmp_path):
    """--init-from: the shadow weights start at a w4a6 spec's weights under w4a4 formats (progressive
    quantization): the 'before' top-1 is that combination's, the record names the file, a spec of another
    model is refused before any work."""
    import dataclasses

    from quant.calibrate import make_spec
    from quant.emulator import FixedPointEmulator
    from quant.finetune import start_from
    from quant.spec import QuantSpec
    from sqz.cli import main
    from sqz.files import file_sha256
    from tests.tiny_net import moved_biases

    arch, params, cal, x, y = cifar_spec
    a4, a6 = make_spec(cal, 4, 4), make_spec(cal, 4, 6)
    # a6 with other weight codes than a4's (one code step off wherever a6's GPTQ codes are even)
    moved = {n: np.clip(c + (c % 2 == 0), a6.layers[n].weight.min_code, a6.layers[n].weight.max_code)
             for n, c in a6.weights.items()}
    a6 = dataclasses.replace(a6, weights=moved)
    spec0, init, out, report = (tmp_path / f for f in ("q_w4a4.json", "ft_w4a6.json", "ft.json", "report.json"))
    a4.save(spec0)
    a6.save(init)
    combined = start_from(a4, arch, params, str(init))
    for n in a4.weights:                                    # same 4-bit weight formats: a6's codes, a4's formats
        assert combined.layers[n].weight == a4.layers[n].weight and combined.layers[n].result == a4.layers[n].result
        assert np.array_equal(combined.weights[n], moved[n])
    assert combined.calibration["init_from"]["sha256"] == file_sha256(init)
    with_biases = dataclasses.replace(a4, biases=moved_biases(a4, params, step=0.05))
    kept = start_from(with_biases, arch, params, str(init))     # the biases stay --spec's own codes
    assert all(np.array_equal(kept.biases[n], with_biases.biases[n]) for n in with_biases.biases)
    base = ["finetune", "--model", "squeezenet_cifar", "--spec", str(spec0), "--calib", str(SAMPLE), "--calib-stop",
            "100", "--data", str(SAMPLE), "--start", "100", "--epochs", "1", "--batch-size", "50", "--lr", "1e-9",
            "--out", str(out), "--json", str(report), "--quiet"]
    other = tmp_path / "b.json"
    QuantSpec.load(init, arch).save(other)
    data = json.loads(other.read_text())
    data["model"] = "squeezenet_cifar_b"
    other.write_text(json.dumps(data))
    assert main(base + ["--init-from", str(other)]) == 2 and not out.exists()
    data["model"], data["calibration"]["equalize"] = "squeezenet_cifar", {"rule": "weights"}
    other.write_text(json.dumps(data))        # another channel scaling: not the same float network
    assert main(base + ["--init-from", str(other)]) == 2 and not out.exists()
    assert main(base + ["--init-from", str(init)]) == 0
    r = json.loads(report.read_text())
    before = np.mean(np.argmax(FixedPointEmulator(arch, params, combined).logit_codes(x[100:]), -1) == y[100:])
    assert r["before"]["top1"] == pytest.approx(before)
    assert r["finetune"]["init_from"] == {"spec": str(init.resolve()), "sha256": file_sha256(init)}
    new = QuantSpec.load(out, arch)
    assert new.calibration["init_from"]["sha256"] == file_sha256(init)
    assert sum(int(np.count_nonzero(new.weights[n] != moved[n])) for n in moved) < \
        sum(int(np.count_nonzero(new.weights[n] != a4.weights[n])) for n in moved)   # it started at a6's codes


def test_finetune_with_a_teacher_minimises_the_distillation_loss_on_its_targets(cifar_spec, tmp_path):
    """sqz finetune --teacher: the targets are the training's (teacher_targets) of the loader's inputs, and
    the loss of the first step is (1 - a) * cross-entropy + a * T^2 * KL of the fixed-point logits."""
    from model.cifar_train import input_teacher_targets, softmax, teacher_targets
    from model.trained import weights_path
    from quant.calibrate import make_spec
    from quant.emulator import FixedPointEmulator
    from quant.finetune import finetune
    from sqz.cli import main
    from sqz.cli_common import image_dataset
    from sqz.files import file_sha256

    arch, params, cal, x, y = cifar_spec
    teacher = weights_path("squeezenet_cifar")
    raw, _, _ = next(image_dataset(str(SAMPLE), arch).batches(200, raw=True))
    np.testing.assert_allclose(input_teacher_targets(arch, [teacher], x[:50], 4.0),
                               teacher_targets(arch, [teacher], raw[:50], 4.0), rtol=1e-5, atol=1e-7)
    spec = make_spec(cal, 4, 4)
    alpha, t = 0.7, 3.0
    _, new_spec, log = finetune(arch, params, spec, x[:50], y[:50], epochs=1, lr=1e-4, batch_size=50,
                                augment=False, say=lambda m: None, teachers=[teacher], kd_alpha=alpha, kd_temperature=t)
    logits = FixedPointEmulator(arch, params, spec).logit_codes(x[:50]) / 2.0 ** spec.logit_format.frac
    target = input_teacher_targets(arch, [teacher], x[:50], t).astype(np.float64)
    ce = -np.mean(np.log(softmax(logits))[np.arange(50), y[:50]])
    kl = np.mean(np.sum(target * (np.log(target) - np.log(softmax(logits, t))), -1))
    assert log["history"][0]["loss"] == pytest.approx((1 - alpha) * ce + alpha * t * t * kl, rel=1e-4)
    assert log["history"][0]["loss"] != pytest.approx(ce, rel=1e-2)
    assert log["distill"] == {"teachers": [{"path": str(teacher), "sha256": file_sha256(teacher)}],
                              "alpha": alpha, "temperature": t}
    assert new_spec.calibration["finetune"]["distill"] == log["distill"]
    # the CLI: recorded in the report; bad values and files refused before any work
    spec0, out, report = tmp_path / "q4.json", tmp_path / "ft.json", tmp_path / "report.json"
    spec.save(spec0)
    base = ["finetune", "--model", "squeezenet_cifar", "--spec", str(spec0), "--calib", str(SAMPLE), "--calib-stop",
            "100", "--data", str(SAMPLE), "--start", "100", "--epochs", "1", "--batch-size", "50", "--out", str(out),
            "--json", str(report), "--quiet"]
    assert main(base + ["--teacher", str(tmp_path / "none.npz")]) == 2
    assert main(base + ["--teacher", str(teacher), "--kd-temperature", "0"]) == 2
    assert main(base + ["--teacher", str(weights_path("squeezenet_cifar_b"))]) == 2     # other shapes
    assert not out.exists()
    assert main(base + ["--teacher", str(teacher)]) == 0
    r = json.loads(report.read_text())
    assert r["finetune"]["distill"]["teachers"][0]["sha256"] == file_sha256(teacher)
    assert (r["finetune"]["distill"]["alpha"], r["finetune"]["distill"]["temperature"]) == (0.9, 4.0)


def test_finetune_label_smoothing_is_the_trainings_smoothed_cross_entropy(cifar_spec, tmp_path):
    """sqz finetune --label-smoothing LS: the first step's loss is -mean(sum((1-LS)*onehot + LS/10) * log
    softmax) of the fixed-point logits, recorded in the log and the spec; 0 keeps the plain loss and records
    nothing; a value outside [0, 1) is refused before any work."""
    from model.cifar_train import softmax
    from quant.calibrate import make_spec
    from quant.emulator import FixedPointEmulator
    from quant.finetune import finetune
    from sqz.cli import main

    arch, params, cal, x, y = cifar_spec
    spec = make_spec(cal, 4, 4)
    logits = FixedPointEmulator(arch, params, spec).logit_codes(x[:50]) / 2.0 ** spec.logit_format.frac
    logp = np.log(softmax(logits))
    ce = -np.mean(logp[np.arange(50), y[:50]])
    ls = 0.3
    smooth = -np.mean(np.sum(((1 - ls) * np.eye(10)[y[:50]] + ls / 10) * logp, -1))
    assert smooth != pytest.approx(ce, rel=1e-2)
    run = dict(epochs=1, lr=1e-4, batch_size=50, augment=False, say=lambda m: None)
    _, new_spec, log = finetune(arch, params, spec, x[:50], y[:50], label_smoothing=ls, **run)
    assert log["history"][0]["loss"] == pytest.approx(smooth, rel=1e-4)
    assert log["label_smoothing"] == new_spec.calibration["finetune"]["label_smoothing"] == ls
    _, _, plain = finetune(arch, params, spec, x[:50], y[:50], **run)
    assert plain["history"][0]["loss"] == pytest.approx(ce, rel=1e-4) and "label_smoothing" not in plain
    spec0, out = tmp_path / "q4.json", tmp_path / "ft.json"
    spec.save(spec0)
    assert main(["finetune", "--model", "squeezenet_cifar", "--spec", str(spec0), "--calib", str(SAMPLE),
                 "--calib-stop", "100", "--data", str(SAMPLE), "--start", "100", "--out", str(out), "--quiet",
                 "--label-smoothing", "1"]) == 2
    assert not out.exists()


def test_finetune_lr_scale_step_moves_every_layer_by_the_same_fraction_of_its_weight_step(cifar_spec):
    """--lr-scale step: Adam's first step moves each weight by about lr (sign of its gradient); with the
    shadow weights held in units of their layer's weight step it moves them by lr * step, so conv1 (step
    2**-10 at 4 bits here) and conv10 (2**-1) move by the same fraction of a code; the first forward pass is
    the same network either way (the same loss), and the mode is recorded only when used."""
    from quant.calibrate import make_spec
    from quant.finetune import FixedPointTrainer, finetune

    arch, params, cal, x, y = cifar_spec
    spec = make_spec(cal, 4, 4)
    start = spec.effective_params(params)
    steps = {n: spec.layers[n].weight.lsb for n in start}
    assert max(steps.values()) / min(steps.values()) >= 64      # the layers' steps differ by orders of magnitude
    lr, run = 1e-3, dict(epochs=1, batch_size=50, augment=False, say=lambda m: None)
    moved = {}
    for mode in ("absolute", "step"):
        new, _, log = finetune(arch, params, spec, x[:50], y[:50], lr=lr, lr_scale=mode, **run)
        moved[mode] = {n: float(np.max(np.abs(new[n][0].astype(np.float64) - start[n][0]))) for n in start}
        assert ("lr_scale" in log) == (mode == "step")
        moved[mode + "_loss"] = log["history"][0]["loss"]
    assert moved["absolute_loss"] == pytest.approx(moved["step_loss"], rel=1e-6)
    for n in start:
        assert moved["absolute"][n] == pytest.approx(lr, rel=0.02), n
        assert moved["step"][n] == pytest.approx(lr * steps[n], rel=0.02), n
    with pytest.raises(ValueError, match="lr_scale"):
        finetune(arch, params, spec, x[:50], y[:50], lr=lr, lr_scale="per-layer", **run)
    with pytest.raises(ValueError, match="lr_scale"):      # the trainer itself: no silent "absolute"
        FixedPointTrainer(arch, params, spec, lr_scale="Step")


def test_eval_mirror_sums_the_two_passes_logit_codes(cifar_spec, tmp_path):
    from quant.calibrate import make_spec
    from quant.emulator import FixedPointEmulator
    from sqz.cli import main
    from sqz.passes import mirror_sum

    arch, params, cal, x, y = cifar_spec
    spec = make_spec(cal, 6, 6)
    spec.save(tmp_path / "q6.json")
    emulator = FixedPointEmulator(arch, params, spec)
    codes = emulator.logit_codes(x[100:]) + emulator.logit_codes(x[100:, :, ::-1])
    assert (mirror_sum(emulator.logit_codes, x[100:]) == codes).all()     # sqz/passes.py: one batch of 2N
    for mirror in (True, False):
        out = tmp_path / f"eval_{mirror}.json"
        assert main(["eval", "--model", "squeezenet_cifar", "--spec", str(tmp_path / "q6.json"), "--data", str(SAMPLE),
                     "--start", "100", "--json", str(out), "--quiet"] + ["--mirror"] * mirror) == 0
        r = json.loads(out.read_text())
        assert r["mirror"] is mirror and r["n"] == 100
    assert json.loads((tmp_path / "eval_True.json").read_text())["top1"] == pytest.approx(
        np.mean(np.argmax(codes, -1) == y[100:]))
    single = np.mean(np.argmax(emulator.logit_codes(x[100:]), -1) == y[100:])
    assert json.loads((tmp_path / "eval_False.json").read_text())["top1"] == pytest.approx(single)
    # a predictions file resumes only a run of the same number of passes
    preds = tmp_path / "preds.jsonl"
    base = ["eval", "--model", "squeezenet_cifar", "--spec", str(tmp_path / "q6.json"), "--data", str(SAMPLE),
            "--start", "100", "--stop", "110", "--predictions", str(preds), "--quiet"]
    assert main(base + ["--mirror"]) == 0 and main(base + ["--mirror"]) == 0
    assert [json.loads(l)["passes"] for l in preds.read_text().splitlines()] == [2] * 10
    assert main(base) == 2


def test_hls_project_for_pynq_z2_at_900_fps_builds_and_runs_on_the_simulated_board(tmp_path, tiny_cifar, capfd):
    """hls -> build (dry run) -> infer --sim [--mirror], with --data the CIFAR-10 archives' folder (its test split)."""
    from sqz.cli import main

    out = tmp_path / "hls.json"
    from sqz.demo import BOARD_DEFAULTS

    bits = str(BOARD_DEFAULTS["pynq-z2"].bits)
    assert main(["hls", "--model", "squeezenet_cifar", "--bits", bits, "--board", "pynq-z2", "--fps", "900",
                 "--out", str(tmp_path / "prj"), "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["budget"]["met"] and r["fits"] and r["estimate"]["fps"] >= 900
    assert r["estimate"]["lut"] <= 0.8 * 53_200 and r["estimate"]["bram18"] <= 0.9 * 280
    manifest = json.loads((tmp_path / "prj" / "manifest.json").read_text())
    assert manifest["model"] == "squeezenet_cifar"
    assert manifest["input"]["shape"] == [32, 32, 3] and manifest["output"]["n"] == 10
    assert main(["build", "--project", str(tmp_path / "prj"), "--board", "pynq-z2", "--out", str(tmp_path / "bit"),
                 "--json", str(tmp_path / "build.json")]) == 0
    # under the real pynq in the second venv (sqz infer re-runs itself there), the archives unpacked here first
    assert main(["infer", "--bitstream", str(tmp_path / "bit"), "--data", str(tiny_cifar), "--sim", "emulator",
                 "--json", str(tmp_path / "infer.json")]) == 0
    r = json.loads((tmp_path / "infer.json").read_text())
    assert r["model"] == "squeezenet_cifar" and r["board"] == "pynq-z2"
    assert r["n"] == 20 and r["bit_exact"] == 20 and r["top1"] == r["emulator_top1"]    # 2 test images per class
    assert "/test" in r["data"] and r["passes"] == 1

    # --mirror: two frames per image through the simulated board, their codes summed; bit-exact to the
    # emulator's mirror_sum, the top-1 of `sqz eval --mirror` of the folder's spec; resumes only its own kind
    infer = ["infer", "--bitstream", str(tmp_path / "bit"), "--data", str(tiny_cifar), "--sim", "emulator",
             "--batch-size", "3", "--results", str(tmp_path / "m.csv")]
    assert main(infer + ["--mirror", "--limit", "12", "--json", str(tmp_path / "m.json")]) == 0
    assert main(infer + ["--mirror", "--json", str(tmp_path / "m.json"), "--resume"]) == 0
    r = json.loads((tmp_path / "m.json").read_text())
    assert r["passes"] == 2 and r["n"] == 20 and r["resumed"] == 12 and r["bit_exact"] == 20
    assert r["timing"]["frames"] == 2 * 8          # this run's 8 images, two frames each
    assert r["images_per_s"] == pytest.approx(r["frames_per_s"] / 2)
    assert r["estimated_board_images_per_s"] == pytest.approx(r["estimated_board_fps"] / 2)
    assert main(["eval", "--model", "squeezenet_cifar", "--spec", str(tmp_path / "bit" / "spec.json"), "--data",
                 str(tiny_cifar), "--mirror", "--quiet", "--json", str(tmp_path / "eval.json")]) == 0
    assert r["top1"] == r["emulator_top1"] == json.loads((tmp_path / "eval.json").read_text())["top1"]
    capfd.readouterr()
    assert main(infer + ["--json", str(tmp_path / "m.json"), "--resume"]) == 2      # one pass onto mirror rows
    assert "m.csv: rows of 2 pass(es) per image (this run: 1" in capfd.readouterr().err
    rows = (tmp_path / "m.csv").read_text().splitlines()
    (tmp_path / "m.csv").write_text("\n".join(rows[:3] + [rows[3].rsplit(",", 1)[0] + ",two"]) + "\n")
    assert main(infer + ["--mirror", "--json", str(tmp_path / "m.json"), "--resume"]) == 2
    assert "m.csv, line 4: passes 'two' is not a number" in capfd.readouterr().err
