import math

import numpy as np
import pytest

from model.architecture import squeezenet1_0
from model.deep_compression import DEFAULT_PATH, FILE_SIZE, WeightFileError, decode


@pytest.fixture(scope="module")
def layers():
    return decode()


def test_shipped_file_is_the_published_one():
    assert DEFAULT_PATH.stat().st_size == FILE_SIZE


def test_decoder_accounts_for_every_byte(layers):
    header = 4 * 26
    body = sum(4 * 256 + 4 * l.shape[0] + len(l.codes) + (len(l.codes) + 1) // 2 for l in layers.values())
    assert header + body == FILE_SIZE


def test_layer_shapes_follow_the_prototxt(layers):
    arch = squeezenet1_0()
    assert list(layers) == [c.name for c in arch.convs()]
    assert layers["conv1"].shape == (96, 3, 7, 7)
    assert layers["fire2_expand3x3"].shape == (64, 16, 3, 3)
    assert layers["fire9_squeeze1x1"].shape == (64, 512, 1, 1)
    assert layers["conv10"].shape == (1000, 512, 1, 1)
    assert layers["conv10"].caffe_name == "conv_final"
    assert sum(math.prod(l.shape) + l.shape[0] for l in layers.values()) == 1_248_424


def test_sparsity_matches_deep_compression_pruning(layers):
    for name, layer in layers.items():
        d = layer.density
        if name == "conv10":
            assert 0.19 < d < 0.21, (name, d)
        elif layer.shape[2] == 3:
            assert 0.29 < d < 0.34, (name, d)
        elif name != "conv1":
            assert 0.49 < d <= 1.0, (name, d)


def test_each_layer_uses_at_most_256_cluster_values(layers):
    for layer in layers.values():
        w = layer.weight_oihw
        assert len(np.unique(w)) <= 256
        assert set(np.unique(w)) <= set(layer.codebook.tolist())
        assert layer.codebook[0] == 0.0
        np.testing.assert_array_equal(layer.codebook[layer.code_array], w)


def test_truncated_file_names_the_layer(tmp_path):
    data = DEFAULT_PATH.read_bytes()
    bad = tmp_path / "truncated.net"
    bad.write_bytes(data[:-1])
    with pytest.raises(WeightFileError, match=r"truncated\.net.*conv10.*conv_final.*truncated"):
        decode(bad)
    bad.write_bytes(data[:50])
    with pytest.raises(WeightFileError, match="header"):
        decode(bad)


def test_extra_bytes_are_rejected(tmp_path):
    bad = tmp_path / "longer.net"
    bad.write_bytes(DEFAULT_PATH.read_bytes() + b"\0")
    with pytest.raises(WeightFileError, match="1 bytes left over"):
        decode(bad)


def test_altered_count_is_rejected(tmp_path):
    data = bytearray(DEFAULT_PATH.read_bytes())
    count = int.from_bytes(data[4:8], "little")          # fire2_squeeze1x1's stored-entry count
    data[4:8] = (count - 2).to_bytes(4, "little")
    bad = tmp_path / "altered.net"
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightFileError):
        decode(bad)


def test_altered_codebook_zero_is_rejected(tmp_path):
    data = bytearray(DEFAULT_PATH.read_bytes())
    data[4 * 26: 4 * 26 + 4] = np.float32(0.5).tobytes()  # conv1's codebook entry 0
    bad = tmp_path / "altered.net"
    bad.write_bytes(bytes(data))
    with pytest.raises(WeightFileError, match="conv1.*codebook entry 0"):
        decode(bad)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(WeightFileError, match="nope.net"):
        decode(tmp_path / "nope.net")
