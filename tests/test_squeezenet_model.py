import json

import numpy as np
import pytest

from tests.conftest import SAMPLE_DIR
from model.architecture import get_architecture, pool_out
from model.imagenet import ImageFolderDataset, load_image


@pytest.fixture(scope="module")
def keras_model():
    from model.squeezenet import load_pretrained
    return load_pretrained()


def test_caffe_sizes_round_pools_up():
    assert pool_out(111, 3, 2) == 55 and pool_out(56, 3, 2) == 28 and pool_out(28, 3, 2) == 14
    v10 = {l.name: out for l, _, out in get_architecture("squeezenet1_0").shapes()}
    assert v10["conv1"] == (111, 111, 96) and v10["pool1"] == (55, 55, 96)
    assert v10["pool4"] == (27, 27, 256) and v10["pool8"] == (13, 13, 512)
    assert v10["conv10"] == (15, 15, 1000)          # pad 1 on the 1x1 kernel (Deep Compression deploy file)
    v11 = {l.name: out for l, _, out in get_architecture("squeezenet1_1").shapes()}
    assert v11["conv1"] == (113, 113, 64) and v11["pool3"] == (28, 28, 128) and v11["pool5"] == (14, 14, 256)
    assert v11["conv10"] == (14, 14, 1000)


def test_keras_layer_names_are_stable(keras_model):
    names = [l.name for l in keras_model.layers]
    assert "input" not in names and names[0] == "data"
    for n in ("conv1", "pool1", "fire2_squeeze1x1", "fire2_expand1x1", "fire2_expand3x3", "fire2_concat",
              "pool4", "pool8", "conv10", "pool10", "prob"):
        assert n in names


def test_v11_keras_matches_caffe_round_up_pooling():
    from model.squeezenet import build_keras
    m = build_keras("squeezenet1_1")
    assert tuple(m.get_layer("pool3").output.shape[1:]) == (28, 28, 128)
    assert tuple(m.get_layer("pool5").output.shape[1:]) == (14, 14, 256)
    assert tuple(m.output.shape) == (None, 1000)


def test_output_is_a_probability_distribution(keras_model):
    ds = ImageFolderDataset(SAMPLE_DIR, limit=4)
    x, _, _ = next(ds.batches(4))
    p = keras_model.predict_on_batch(x)
    assert p.shape == (4, 1000)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert (p >= 0).all()


@pytest.mark.parametrize("name,label", [("ILSVRC2012_val_00000347.JPEG", 472), ("ILSVRC2012_val_00001750.JPEG", 877),
                                        ("ILSVRC2012_val_00002579.JPEG", 382), ("ILSVRC2012_val_00002957.JPEG", 78)])
def test_known_images_are_classified_correctly(keras_model, name, label):
    x = load_image(SAMPLE_DIR / "images" / name)[None]
    assert int(np.argmax(keras_model.predict_on_batch(x))) == label


def test_numpy_float_network_equals_keras(keras_model):
    from model.deep_compression import decode, float_params
    from quant.emulator import FloatNetwork
    from model.squeezenet import load_pretrained

    params = float_params(decode())
    ds = ImageFolderDataset(SAMPLE_DIR, limit=3)
    x, _, _ = next(ds.batches(3))
    logits_np = FloatNetwork(get_architecture("squeezenet1_0"), params).logits(x)
    logits_keras = load_pretrained(softmax=False).predict_on_batch(x)
    np.testing.assert_allclose(logits_np, logits_keras, rtol=1e-4, atol=1e-4)


def test_eval_cli_writes_the_contract_keys(tmp_path):
    from sqz.cli import main
    out = tmp_path / "eval.json"
    preds = tmp_path / "preds.jsonl"
    assert main(["eval", "--data", str(SAMPLE_DIR), "--limit", "8", "--batch-size", "4", "--json", str(out),
                 "--predictions", str(preds), "--quiet"]) == 0
    d = json.loads(out.read_text())
    assert {"model", "precision", "n", "top1", "top5", "images_per_s"} <= set(d)
    assert d["model"] == "squeezenet1_0" and d["precision"] == "float" and d["n"] == 8
    assert 0 <= d["top1"] <= d["top5"] <= 1 and d["images_per_s"] > 0
    assert len(preds.read_text().splitlines()) == 8
    # a rerun resumes from the predictions file: nothing left to time, same figures
    assert main(["eval", "--data", str(SAMPLE_DIR), "--limit", "8", "--json", str(out),
                 "--predictions", str(preds), "--quiet"]) == 0
    d2 = json.loads(out.read_text())
    assert d2["resumed"] == 8 and d2["top1"] == d["top1"] and d2["images_per_s"] is None


def test_eval_cli_reports_a_missing_folder(tmp_path, capsys):
    from sqz.cli import main
    assert main(["eval", "--data", str(tmp_path / "nowhere"), "--quiet"]) == 2
    assert "nowhere" in capsys.readouterr().err
