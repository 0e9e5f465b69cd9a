"""host/manifest.py: the manifest round-trips through JSON (with its AXI packing and weight stream), and a
malformed one is refused with the file and the field named."""
from __future__ import annotations

import copy
import json

import pytest

from host.axi import AxiPacking, WeightStream
from host.manifest import (_TOP_LEVEL, MANIFEST_FILE, ControlRegisters, InputInfo, Manifest, ManifestError,
                           OutputInfo, Resources, ToolVersions)
from sqz.errors import SqzError


class _Fmt:
    """Stands in for quant's FixedFormat (host/ needs only .width and .signed)."""

    def __init__(self, width, signed):
        self.width, self.signed = width, signed


def sample(loadable: bool = True) -> Manifest:
    axi = AxiPacking.for_formats(34, 34, 3, _Fmt(9, True), 10, _Fmt(16, False))
    stream = WeightStream.for_arrays([("conv10", "sqz_w_conv10", 240, _Fmt(8, True)),
                                      ("conv11", "sqz_w_conv11", 100, _Fmt(12, True))]) if loadable else None
    return Manifest(
        key="ab" * 32, model="tiny_fire", weights="trained", weights_sha256="0123456789abcdef" * 4,
        board="zcu104", part="xczu7ev-ffvc1156-2-e", board_part="xilinx.com:zcu104:part0:1.1", clock_mhz=300.0,
        top="sqz_top", input=InputInfo((34, 34, 3), "ap_fixed<9,9,AP_RND,AP_SAT>", 0, cpp_type="input_t",
                                       bridge_name="data"),
        output=OutputInfo(10, "ap_ufixed<16,2,AP_RND,AP_SAT>", 14, cpp_type="result_t"), axi=axi,
        spec={"format": "sqz-quantspec", "version": 1, "model": "tiny_fire", "input": "ap_fixed<9,9>",
              "layers": {"conv1": {"weight": "ap_fixed<8,1>"}}},
        tools=ToolVersions("1.3.0"),
        resources=Resources("estimate", dsp=497, bram18=64, uram=7, lut=32278, ii_cycles=1668, clock_mhz=300.0,
                            fps=179856.12, fits=True),
        weight_load=stream, weight_load_file="weights_stream.bin" if loadable else None,
        control=ControlRegisters() if loadable else None, spec_weights_file="spec.weights.npz",
        class_names=[f"class {i}" for i in range(10)], hls4ml_top="myproject", backend="Vitis", io_type="io_stream",
        fused_fire=True, fifo_depths=[1, 16, 32], csim={"library": "firmware/libsqz_csim.so"},
        reuse={"conv1": 3, "conv10": 4}, trace=[{"name": "fire2", "shape": [7, 7, 16], "format": "ap_ufixed<8,4>",
                                                 "frac": 4}],
        layers=[{"name": "conv1", "kind": "conv", "reuse": 3}])


@pytest.mark.parametrize("loadable", [True, False])
def test_manifest_round_trips_through_json_with_axi_packing_and_weight_stream(loadable, tmp_path):
    m = sample(loadable)
    data = json.loads(json.dumps(m.to_json()))
    again = Manifest.from_json(data)
    assert again == m
    assert again.axi == m.axi and isinstance(again.axi, AxiPacking)
    if loadable:
        assert again.weight_load == m.weight_load and again.weight_load.arrays[1].first_beat == 30
        assert again.control.mode == 0x10 and again.control.ap_ctrl == 0x00
    else:
        assert again.weight_load is None and again.control is None and data["weight_load"] is None
    written = m.save(tmp_path)                       # a folder: manifest.json inside
    assert written == tmp_path / MANIFEST_FILE
    assert Manifest.load(tmp_path) == m == Manifest.load(written)


def test_to_json_writes_exactly_the_fields_from_json_accepts():
    assert set(sample().to_json()) == _TOP_LEVEL


def test_axi_packing_and_weight_stream_round_trip_through_their_own_json():
    m = sample()
    assert AxiPacking.from_json(m.axi.to_json()) == m.axi
    assert WeightStream.from_json(m.weight_load.to_json()) == m.weight_load
    assert m.axi.to_json()["in_beats"] == 34 * 34 and m.weight_load.to_json()["total_beats"] == 1 + 30 + 25


def _broken(mutate):
    data = json.loads(json.dumps(sample().to_json()))
    mutate(data)
    return data


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["axi"].update(in_lane="x"), "manifest.json: field 'axi.in_lane': expected an int, got 'x'"),
    (lambda d: d["axi"].update(out_signed=1), "field 'axi.out_signed': expected true or false, got 1"),
    (lambda d: d["axi"].update(in_lane=12), "field 'axi.in_lane': must be one of [8, 16, 32], got 12"),
    (lambda d: d["axi"].update(out_beats=4), "field 'axi.out_beats': 4 differs from 3"),
    (lambda d: d.pop("key"), "field 'key': missing"),
    (lambda d: d.update(version=1), "field 'version': version 1 is not supported"),
    (lambda d: d.update(format="sqz-hls-project"), "field 'format': expected 'sqz-manifest'"),
    (lambda d: d.update(clock_mhz="300"), "field 'clock_mhz': expected a number, got '300'"),
    (lambda d: d.update(weights_sha256="ABC"), "field 'weights_sha256': expected 64 lowercase hex digits"),
    (lambda d: d.update(extra=1), "field 'extra': unknown field"),
    (lambda d: d["input"].update(shape=[34, 33, 3]), "field 'input.shape': [34, 33, 3] differs from the AXI"),
    (lambda d: d["input"].update(shape=[34, "34", 3]), "field 'input.shape[1]': expected an int, got '34'"),
    (lambda d: d["output"].update(n=1000), "field 'output.n': 1000 differs from the AXI packing's n_out 10"),
    (lambda d: d["weight_load"]["arrays"][1].update(first_beat=29), "field 'weight_load.arrays[1].first_beat': 29"),
    (lambda d: d["weight_load"]["arrays"][0].pop("lane"), "field 'weight_load.arrays[0].lane': missing"),
    (lambda d: d["weight_load"].update(magic=1), "field 'weight_load.magic': 1 differs from"),
    (lambda d: d["weight_load"].pop("file"), "field 'weight_load.file': missing"),
    (lambda d: d.update(control=None), "field 'control': missing: a design with a weight-load stream"),
    (lambda d: d["control"].update(mode="0x10"), "field 'control.mode': expected an int, got '0x10'"),
    (lambda d: d["spec"].update(model="squeezenet1_0"), "field 'spec.model': 'squeezenet1_0' differs"),
    (lambda d: d["resources"].pop("source"), "field 'resources.source': missing"),
    (lambda d: d["resources"].update(fits="yes"), "field 'resources.fits': expected true or false, got 'yes'"),
    (lambda d: d.update(class_names=["a", 2]), "field 'class_names[1]': expected a string, got 2"),
    (lambda d: d["trace"][0].pop("frac"), "field 'trace[0].frac': missing"),
    (lambda d: d["reuse"].update(conv1="3"), "field 'reuse.conv1': expected an int, got '3'"),
    (lambda d: d["tools"].update(hls4ml=1), "field 'tools.hls4ml': expected a string or null, got 1"),
])
def test_malformed_manifest_is_refused_naming_the_field(mutate, message):
    with pytest.raises(ManifestError) as err:
        Manifest.from_json(_broken(mutate))
    assert message in str(err.value)
    assert isinstance(err.value, SqzError)


def test_the_unmodified_sample_is_accepted():
    """The mutations above are what breaks it: the sample itself passes (else those tests prove nothing)."""
    Manifest.from_json(_broken(lambda d: None))
    assert copy.deepcopy(sample()) == sample()


def test_unreadable_manifest_files_name_the_file(tmp_path):
    with pytest.raises(ManifestError, match="cannot read the manifest"):
        Manifest.load(tmp_path / "nowhere.json")
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ManifestError, match=f"{tmp_path / MANIFEST_FILE}: not valid JSON"):
        Manifest.load(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text("[1, 2]")
    with pytest.raises(ManifestError, match="expected a JSON object, got"):
        Manifest.load(tmp_path)
