"""Tests for model/imagenet.py: Caffe preprocessing, modes, bad files, labels, the shipped sample."""

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model.imagenet import (  # noqa: E402
    CROP_SIZE, MEAN_BGR, BadImageError, ImageFolderDataset, LabelsFormatError,
    load_image, load_image_bgr_uint8, read_labels,
)

SAMPLE = ROOT / "data" / "imagenet_sample"
MEAN = np.array(MEAN_BGR, np.float32)


def expect_solid(out, rgb, size=CROP_SIZE):
    """out must be size x size x 3 float32, every pixel exactly (B, G, R) - mean."""
    assert out.shape == (size, size, 3) and out.dtype == np.float32
    want = np.array(rgb[::-1], np.float32) - MEAN
    np.testing.assert_array_equal(out, np.broadcast_to(want, out.shape))


def mode_of(path):
    with Image.open(path) as im:
        return im.mode


def png_bytes(w, h, bitdepth, colortype, rows):
    """A hand-made PNG (Pillow cannot write 16-bit RGB)."""
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, bitdepth, colortype, 0, 0, 0)
    raw = b"".join(b"\x00" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def make_folder(root, files, labels=None):
    """files: {relpath: PIL image | bytes}.  labels.txt lists them with label 0, 1, 2, ..."""
    root = Path(root)
    lines = []
    for i, (rel, content) in enumerate(files.items()):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        elif content is not None:
            content.save(p, format="PNG")
        lines.append(f"{rel} {i if labels is None else labels[i]}\n")
    (root / "labels.txt").write_text("".join(lines))
    return root


# --------------------------------------------------------------------------- modes

def test_grayscale(tmp_path):
    p = tmp_path / "g.png"
    Image.new("L", (300, 260), 77).save(p)
    expect_solid(load_image(p), (77, 77, 77))


def test_cmyk_lossless_and_jpeg(tmp_path):
    p = tmp_path / "c.tif"
    Image.new("CMYK", (240, 240), (0, 255, 255, 0)).save(p)   # pure red in CMYK
    expect_solid(load_image(p), (255, 0, 0))
    j = tmp_path / "c.jpg"
    Image.new("CMYK", (227, 227), (0, 255, 255, 0)).save(j, quality=95)
    assert mode_of(j) == "CMYK"
    out = load_image_bgr_uint8(j)
    assert out.shape == (227, 227, 3)
    np.testing.assert_allclose(out.reshape(-1, 3).mean(0), [0, 0, 255], atol=3)  # BGR


def test_rgba_alpha_dropped(tmp_path):
    a = np.zeros((227, 227, 4), np.uint8)
    a[..., :3] = (10, 20, 30)
    a[:100, :, 3] = 0          # fully transparent part keeps its stored colour
    a[100:, :, 3] = 128
    p = tmp_path / "a.png"
    Image.fromarray(a, "RGBA").save(p)
    expect_solid(load_image(p), (10, 20, 30))


def test_la_alpha_dropped(tmp_path):
    p = tmp_path / "la.png"
    Image.new("LA", (227, 227), (200, 0)).save(p)
    expect_solid(load_image(p), (200, 200, 200))


def test_palette_with_transparency(tmp_path):
    img = Image.new("P", (227, 227), 1)
    img.putpalette([0, 0, 0, 12, 34, 56] + [0] * 762)
    img.info["transparency"] = 1
    p = tmp_path / "p.png"
    img.save(p, transparency=1)
    assert mode_of(p) == "P"
    expect_solid(load_image(p), (12, 34, 56))


def test_gif_palette(tmp_path):
    img = Image.new("P", (260, 260), 3)
    img.putpalette([0, 0, 0] * 3 + [200, 100, 50] + [0] * 756)
    p = tmp_path / "p.gif"
    img.save(p)
    expect_solid(load_image(p), (200, 100, 50))


def test_16bit_gray_png(tmp_path):
    p = tmp_path / "g16.png"
    Image.fromarray(np.full((227, 227), 0x1234, np.uint16)).save(p)
    assert mode_of(p).startswith("I")
    expect_solid(load_image(p), (0x12, 0x12, 0x12))   # high byte, not clipped to 255


def test_16bit_rgb_png(tmp_path):
    px = np.zeros((227, 227, 3), ">u2")
    px[...] = (0x1234, 0xFF00, 0x00FF)
    p = tmp_path / "rgb16.png"
    p.write_bytes(png_bytes(227, 227, 16, 2, [r.tobytes() for r in px]))
    expect_solid(load_image(p), (0x12, 0xFF, 0x00))


def test_32bit_int_mode(tmp_path):
    p = tmp_path / "i32.tif"
    Image.fromarray(np.full((227, 227), 99, np.int32), "I").save(p)
    expect_solid(load_image(p), (99, 99, 99))


def test_png_named_jpeg(tmp_path):
    p = tmp_path / "ILSVRC2012_val_00000001.JPEG"
    Image.new("RGB", (227, 227), (1, 2, 3)).save(p, format="PNG")
    assert p.read_bytes()[:4] == b"\x89PNG"
    expect_solid(load_image(p), (1, 2, 3))


# --------------------------------------------------------------------------- geometry

def test_resize_solid_colour(tmp_path):
    p = tmp_path / "s.png"
    Image.new("RGB", (500, 375), (200, 100, 50)).save(p)
    expect_solid(load_image(p), (200, 100, 50))


def test_centre_crop_position_without_resize(tmp_path):
    # shorter side already 256: no resampling, so the crop offset is visible exactly
    x = np.arange(280, dtype=np.uint8)
    a = np.zeros((256, 280, 3), np.uint8)
    a[..., 0] = x[None, :]                       # R = column
    a[..., 1] = np.arange(256, dtype=np.uint8)[:, None]   # G = row
    p = tmp_path / "grad.png"
    Image.fromarray(a).save(p)
    out = load_image_bgr_uint8(p)
    assert out.shape == (227, 227, 3)
    left, top = (280 - 227) // 2, (256 - 227) // 2
    assert out[0, 0, 2] == left and out[0, 226, 2] == left + 226   # R is channel 2 in BGR
    assert out[0, 0, 1] == top and out[226, 0, 1] == top + 226


def test_resize_then_crop(tmp_path):
    # 512 wide x 1024 tall -> 256 x 512 -> crop rows 142..368: red over blue, split at row 114
    a = np.zeros((1024, 512, 3), np.uint8)
    a[:512] = (255, 0, 0)
    a[512:] = (0, 0, 255)
    p = tmp_path / "tall.png"
    Image.fromarray(a).save(p)
    out = load_image(p)
    assert out.shape == (227, 227, 3)
    np.testing.assert_array_equal(out[0, 0], np.array([0, 0, 255], np.float32) - MEAN)
    np.testing.assert_array_equal(out[226, 226], np.array([255, 0, 0], np.float32) - MEAN)
    np.testing.assert_array_equal(out[110, 5], out[0, 0])
    np.testing.assert_array_equal(out[118, 5], out[226, 226])


def test_crop_size_parameter(tmp_path):
    p = tmp_path / "s.png"
    Image.new("RGB", (400, 300), (9, 8, 7)).save(p)
    expect_solid(load_image(p, size=224), (9, 8, 7), size=224)
    with pytest.raises(ValueError):
        load_image(p, size=299)            # larger than the 256 resize


def test_227_passes_through_untouched(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "n.JPEG"
    Image.fromarray(rng.integers(0, 256, (227, 227, 3), dtype=np.uint8)).save(p, quality=90)
    with Image.open(p) as im:
        rgb = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(load_image_bgr_uint8(p), rgb[:, :, ::-1])
    np.testing.assert_array_equal(load_image(p), rgb[:, :, ::-1].astype(np.float32) - MEAN)


# --------------------------------------------------------------------------- bad files

def noise_jpeg(seed=1, size=(227, 227)):
    b = io.BytesIO()
    a = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(a).save(b, "JPEG")
    return b.getvalue()


def test_truncated_and_garbage_raise(tmp_path):
    t = tmp_path / "trunc.JPEG"
    t.write_bytes(noise_jpeg()[:3000])
    with pytest.raises(BadImageError) as ei:
        load_image(t)
    assert ei.value.path == str(t) and str(t) in str(ei.value)
    g = tmp_path / "garbage.JPEG"
    g.write_bytes(b"this is not an image" * 50)
    with pytest.raises(BadImageError, match="garbage.JPEG"):
        load_image(g)
    e = tmp_path / "empty.JPEG"
    e.write_bytes(b"")
    with pytest.raises(BadImageError, match="empty.JPEG"):
        load_image(e)


def test_missing_file_raises(tmp_path):
    with pytest.raises(BadImageError, match="nope.JPEG.*not found"):
        load_image(tmp_path / "nope.JPEG")


def _mixed_folder(tmp_path):
    good = noise_jpeg()
    files = {f"images/{i}.JPEG": good for i in range(5)}
    files["images/1.JPEG"] = good[:2000]                 # truncated
    files["images/3.JPEG"] = None                         # missing
    return make_folder(tmp_path, files)


@pytest.mark.parametrize("workers", [0, 2])
def test_dataset_bad_file_raises(tmp_path, workers):
    ds = ImageFolderDataset(_mixed_folder(tmp_path), workers=workers)
    with pytest.raises(BadImageError, match="1.JPEG"):
        list(ds.batches(2))


@pytest.mark.parametrize("workers", [0, 2])
def test_skip_bad_counts(tmp_path, workers):
    ds = ImageFolderDataset(_mixed_folder(tmp_path), skip_bad=True, workers=workers)
    out = list(ds.batches(2))
    assert [len(b[0]) for b in out] == [2, 1]
    labels = np.concatenate([b[1] for b in out])
    assert labels.tolist() == [0, 2, 4] and labels.dtype == np.int64
    assert [Path(p).name for b in out for p in b[2]] == ["0.JPEG", "2.JPEG", "4.JPEG"]
    assert len(ds.skipped) == 2
    (p1, r1), (p3, r3) = ds.skipped
    assert p1.endswith("1.JPEG") and p3.endswith("3.JPEG") and "not found" in r3
    list(ds.batches(10))
    assert len(ds.skipped) == 2            # reset per pass, not accumulated


# --------------------------------------------------------------------------- labels.txt

@pytest.mark.parametrize("bad_line, msg", [
    ("images/c.JPEG", "expected"),
    ("images/c.JPEG seven", "not an integer"),
    ("images/c.JPEG 1000", "outside"),
    ("images/c.JPEG -1", "outside"),
    ("/abs/c.JPEG 3", "relative"),
    ("images/a.JPEG 3", "twice"),
])
def test_malformed_labels_names_line(tmp_path, bad_line, msg):
    (tmp_path / "labels.txt").write_text(f"images/a.JPEG 1\n\nimages/b.JPEG 2\n{bad_line}\n")
    with pytest.raises(LabelsFormatError) as ei:
        ImageFolderDataset(tmp_path)
    err = ei.value
    assert err.lineno == 4 and "line 4" in str(err) and str(tmp_path / "labels.txt") in str(err)
    assert msg in str(err)


def test_missing_labels_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="labels.txt"):
        ImageFolderDataset(tmp_path)


def test_labels_path_with_spaces_crlf_bom(tmp_path):
    (tmp_path / "labels.txt").write_bytes("\ufeffmy dir/a b.JPEG 5\r\nc.JPEG 6\r\n".encode())
    e = read_labels(tmp_path / "labels.txt")
    assert [(x.relpath, x.label, x.lineno) for x in e] == [("my dir/a b.JPEG", 5, 1), ("c.JPEG", 6, 2)]


# --------------------------------------------------------------------------- selection, names

def test_selection_and_class_names(tmp_path):
    img = Image.new("RGB", (227, 227), (5, 5, 5))
    root = make_folder(tmp_path, {f"{i}.png": img for i in range(10)})
    assert ImageFolderDataset(root).class_names() is None
    calib = ImageFolderDataset(root, stop=4)
    evalu = ImageFolderDataset(root, start=4, limit=3)
    assert calib.indices == [0, 1, 2, 3] and evalu.indices == [4, 5, 6]
    assert not set(calib.indices) & set(evalu.indices)
    assert evalu.line_numbers == [5, 6, 7]
    sel = evalu.selection()
    assert sel["count"] == 3 and sel["start"] == 4 and sel["limit"] == 3 and sel["total_entries"] == 10
    every = ImageFolderDataset(root, step=3)
    assert every.indices == [0, 3, 6, 9]
    picked = ImageFolderDataset(root, indices=[7, 2])
    assert picked.indices == [7, 2] and picked.labels.tolist() == [7, 2]
    with pytest.raises(ValueError):
        ImageFolderDataset(root, indices=[1], start=0)
    with pytest.raises(ValueError):
        ImageFolderDataset(root, indices=[10])
    (root / "synset_words.txt").write_text("".join(f"n{i:08d} thing {i}, other\n" for i in range(1000)))
    ds = ImageFolderDataset(root)
    assert ds.class_names()[3] == "thing 3, other" and ds.wnids()[3] == "n00000003"
    img0, lab0, path0 = ds[0]
    assert img0.shape == (227, 227, 3) and lab0 == 0 and path0.endswith("0.png")


def test_no_tensorflow_import():
    code = "import sys; import model.imagenet; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# --------------------------------------------------------------------------- shipped sample

def test_shipped_sample_loads():
    ds = ImageFolderDataset(SAMPLE)
    assert len(ds) == 100
    names = ds.class_names()
    assert len(names) == 1000 and names[0].startswith("tench")
    sizes, labels = [], []
    for x, y, paths in ds.batches(32):
        assert x.dtype == np.float32 and x.shape[1:] == (227, 227, 3)
        assert x.min() >= -123 and x.max() <= 255 - 104
        sizes.append(len(x))
        labels.extend(y.tolist())
        assert all(Path(p).is_file() for p in paths)
    assert sizes == [32, 32, 32, 4] and ds.skipped == []
    assert all(0 <= v <= 999 for v in labels)
    raw, _, _ = next(ds.batches(4, raw=True))
    assert raw.dtype == np.uint8 and raw.shape == (4, 227, 227, 3)
    total = sum(f.stat().st_size for f in SAMPLE.rglob("*") if f.is_file())
    assert total < 5_000_000
