"""QuantSpec: round trip, and bad specs rejected with the file, layer and field named."""
import json

import pytest

from model.architecture import squeezenet1_0
from quant.spec import QuantSpec, SpecError
from tests.tiny_net import tiny_arch


@pytest.fixture(scope="module")
def spec_json(tiny):
    return tiny["spec"].to_json()


def load(tmp_path, data, arch=None):
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(data))
    return QuantSpec.load(path, arch or tiny_arch())


def test_round_trip_is_exact(tmp_path, spec_json):
    spec = load(tmp_path, spec_json)
    assert spec.to_json() == spec_json
    assert spec_json["version"] == 1 and spec_json["format"] == "sqz-quantspec"
    assert set(spec_json["layers"]["conv1"]) == {"weight", "bias", "accum", "result"}
    assert spec_json["layers"]["pool10"]["reciprocal"]["multiplier"] > 0
    assert str(spec.logit_format) == spec_json["layers"]["pool10"]["result"]      # the logits' format


def test_missing_layer_is_named(tmp_path, spec_json):
    bad = json.loads(json.dumps(spec_json))
    del bad["layers"]["fire3_expand3x3"]
    with pytest.raises(SpecError, match=r"spec\.json: layer fire3_expand3x3 .* has no formats"):
        load(tmp_path, bad)


def test_unknown_layer_is_named(tmp_path, spec_json):
    bad = json.loads(json.dumps(spec_json))
    bad["layers"]["fire99_squeeze1x1"] = bad["layers"]["conv1"]
    with pytest.raises(SpecError, match="fire99_squeeze1x1 is not a quantized layer"):
        load(tmp_path, bad)


@pytest.mark.parametrize("text", ["ap_fixed<0,3>", "ap_fixed<8>", "float", "ap_fixed<8,3,AP_NOPE,AP_SAT>", 8])
def test_impossible_format_names_layer_and_field(tmp_path, spec_json, text):
    bad = json.loads(json.dumps(spec_json))
    bad["layers"]["fire2_squeeze1x1"]["weight"] = text
    with pytest.raises(SpecError, match=r"layer fire2_squeeze1x1 field 'weight'"):
        load(tmp_path, bad)


def test_inexact_accumulator_is_rejected(tmp_path, spec_json):
    bad = json.loads(json.dumps(spec_json))
    bad["layers"]["conv1"]["accum"] = "ap_fixed<32,30,AP_TRN,AP_WRAP>"
    with pytest.raises(SpecError, match="conv1 field 'accum'.*must be exact"):
        load(tmp_path, bad)


def test_fire_expands_must_share_a_result_format(tmp_path, spec_json):
    bad = json.loads(json.dumps(spec_json))
    bad["layers"]["fire2_expand3x3"]["result"] = "ap_ufixed<7,4,AP_RND,AP_SAT>"
    with pytest.raises(SpecError, match="fire2_expand1x1 and fire2_expand3x3"):
        load(tmp_path, bad)


def test_wrong_version_and_not_json(tmp_path, spec_json):
    bad = dict(spec_json, version=99)
    with pytest.raises(SpecError, match="version 99"):
        load(tmp_path, bad)
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(SpecError, match="broken.json: not valid JSON"):
        QuantSpec.load(path)
    with pytest.raises(SpecError, match="cannot read"):
        QuantSpec.load(tmp_path / "absent.json")


def test_spec_for_another_model_is_rejected(tmp_path, spec_json):
    with pytest.raises(SpecError, match="a QuantSpec for .* not for .squeezenet1_0."):
        load(tmp_path, spec_json, squeezenet1_0())
