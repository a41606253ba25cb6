"""edge.spec: the sidecar is parsed strictly and every fault names the key and the fix."""

from __future__ import annotations

import copy
import json

import pytest

from edge.errors import SidecarError
from edge.preprocess import PreprocessSpec
from edge.spec import REQUIRED_KEYS, SCHEMA_VERSION, ModelSpec, load_spec, parse_spec, sidecar_path


@pytest.fixture
def sidecar(golden_sidecar) -> dict:
    """A private, modifiable copy of the golden sidecar."""
    return copy.deepcopy(golden_sidecar)


def test_parses_golden_sidecar(golden_model, golden_sidecar):
    spec = load_spec(golden_model)
    assert isinstance(spec, ModelSpec)
    assert spec.labels == tuple(golden_sidecar["labels"])
    assert spec.input.shape == tuple(golden_sidecar["input"]["shape"])
    assert spec.input.dtype == golden_sidecar["input"]["dtype"]
    assert spec.output.scale == pytest.approx(golden_sidecar["output"]["scale"])
    assert spec.output.zero_point == golden_sidecar["output"]["zero_point"]
    assert spec.output.shape[-1] == len(spec.labels)
    assert isinstance(spec.preprocess, PreprocessSpec)
    assert spec.sha256 == golden_sidecar["sha256"] and len(spec.sha256) == 64
    assert spec.schema_version == SCHEMA_VERSION
    # keys beyond the required ones are kept, and the sidecar survives a JSON round trip
    assert set(spec.extra) == set(golden_sidecar) - set(REQUIRED_KEYS)
    assert parse_spec(json.loads(json.dumps(spec.to_dict()))) == spec
    assert parse_spec(spec.to_dict()) == spec


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_missing_required_key_is_named(sidecar, key):
    del sidecar[key]
    with pytest.raises(SidecarError, match=f"'{key}'"):
        parse_spec(sidecar, "int8.json")


def test_missing_key_in_file_names_file_and_key(golden_copy):
    path = golden_copy / "int8.json"
    data = json.loads(path.read_text())
    del data["labels"]
    path.write_text(json.dumps(data))
    with pytest.raises(SidecarError, match=r"int8\.json lacks required key 'labels'"):
        load_spec(golden_copy / "int8.tflite")


@pytest.mark.parametrize(
    ("section", "typo", "suggestion"),
    [
        ("preprocess", "treshold", "threshold"),
        ("preprocess", "center_of_mas", "center_of_mass"),
        ("input", "zero_pnt", "zero_point"),
    ],
)
def test_unknown_key_suggests_close_match(sidecar, section, typo, suggestion):
    sidecar[section][typo] = sidecar[section].get(suggestion, 0)
    with pytest.raises(SidecarError, match=f"'{section}.{typo}'.*did you mean '{suggestion}'"):
        parse_spec(sidecar)


def test_unknown_key_without_close_match_lists_known(sidecar):
    sidecar["preprocess"]["xyzzy"] = 1
    with pytest.raises(SidecarError, match="known: version, size"):
        parse_spec(sidecar)


@pytest.mark.parametrize("version", [SCHEMA_VERSION + 1, 0, "1", None])
def test_wrong_schema_version(sidecar, version):
    sidecar["schema_version"] = version
    with pytest.raises(SidecarError, match="schema_version"):
        parse_spec(sidecar)


@pytest.mark.parametrize(
    "text",
    [b"{not json", b"", b"\xff\xfe\x00garbage", b'{"labels": [1, 2'],
    ids=["broken", "empty", "not-utf8", "cut"],
)
def test_invalid_json(golden_copy, text):
    (golden_copy / "int8.json").write_bytes(text)
    with pytest.raises(SidecarError, match="not valid JSON"):
        load_spec(golden_copy / "int8.tflite")


@pytest.mark.parametrize("data", [[1, 2], "sidecar", 3, None])
def test_not_an_object(data):
    with pytest.raises(SidecarError, match="not a JSON object"):
        parse_spec(data)


@pytest.mark.parametrize(
    "labels", ["0123456789", [], [0, 1, 2], ["0", 1], None, {"0": "a"}], ids=repr
)
def test_labels_must_be_list_of_strings(sidecar, labels):
    sidecar["labels"] = labels
    with pytest.raises(SidecarError, match="'labels'"):
        parse_spec(sidecar)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("input", "shape", "abc"),
        ("input", "shape", 28),
        ("input", "scale", "big"),
        ("output", "zero_point", [0]),
    ],
)
def test_bad_tensor_values(sidecar, section, key, value):
    sidecar[section][key] = value
    with pytest.raises(SidecarError, match=f"'{section}'"):
        parse_spec(sidecar)


@pytest.mark.parametrize("section", ["input", "output", "preprocess"])
def test_sections_must_be_objects(sidecar, section):
    sidecar[section] = [1, 28, 28, 1]
    with pytest.raises(SidecarError, match=f"'{section}' must be an object"):
        parse_spec(sidecar)


def test_dataset_must_be_object(sidecar):
    sidecar["dataset"] = "mnist"
    with pytest.raises(SidecarError, match="'dataset' must be an object"):
        parse_spec(sidecar)


@pytest.mark.parametrize(
    ("key", "value", "hint"),
    [
        ("polarity", "ink-low", "ink_low"),
        ("threshold", "OTSU", "otsu"),
        ("scale", "minus_one_one", "symmetric"),
        ("center_of_mass", "yes", "bool"),
        ("size", "28", "int"),
        ("transposed", 1, "bool"),
    ],
)
def test_bad_preprocess_values(sidecar, key, value, hint):
    sidecar["preprocess"][key] = value
    with pytest.raises(SidecarError, match=f"'preprocess.{key}'.*{hint}"):
        parse_spec(sidecar)


def test_newer_preprocess_version_refused(sidecar):
    sidecar["preprocess"]["version"] = 99
    with pytest.raises(SidecarError, match="newer.*upgrade"):
        parse_spec(sidecar)


def test_newer_preprocess_version_with_new_keys_says_upgrade(sidecar):
    sidecar["preprocess"] |= {"version": 99, "sharpen": 1.0}
    with pytest.raises(SidecarError, match="newer.*upgrade"):
        parse_spec(sidecar)


def test_sidecar_path_prefers_own_then_model_json(tmp_path):
    folder = tmp_path / "export dir"
    folder.mkdir()
    model = folder / "int8.tflite"
    assert sidecar_path(model) == folder / "int8.json"  # neither exists: name the own one
    (folder / "model.json").write_text("{}")
    assert sidecar_path(model) == folder / "model.json"
    (folder / "int8.json").write_text("{}")
    assert sidecar_path(model) == folder / "int8.json"


def test_missing_sidecar_names_expected_file(golden_copy):
    (golden_copy / "int8.json").unlink()
    with pytest.raises(SidecarError, match=r"no sidecar .*int8\.json"):
        load_spec(golden_copy / "int8.tflite")


def test_shared_model_json_is_read(golden_copy):
    (golden_copy / "int8.json").rename(golden_copy / "model.json")
    assert load_spec(golden_copy / "int8.tflite").labels


def test_same_input_ignores_the_code_version_only():
    from edge.spec import DEFAULT_SPEC, EMNIST_SPEC, PreprocessSpec

    old = PreprocessSpec(version=1)
    assert old.same_input(DEFAULT_SPEC) and DEFAULT_SPEC.same_input(old)
    assert not DEFAULT_SPEC.same_input(EMNIST_SPEC)
    assert not DEFAULT_SPEC.same_input(PreprocessSpec(blur=0.5))
