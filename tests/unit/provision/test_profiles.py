"""The four profile manifests, their exported JSON Schema, and clear errors for bad ones."""

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from hearthnet.errors import HearthNetError
from hearthnet.provision import profiles

SCHEMA = profiles.PROFILES_DIR / "schemas" / "profile.schema.json"


def test_schema_file_is_the_models_schema():
    assert json.loads(SCHEMA.read_text()) == json.loads(json.dumps(profiles.schema(), sort_keys=True))


@pytest.mark.parametrize("name", profiles.NAMES)
def test_every_profile_loads_and_validates_in_an_editor(name):
    p = profiles.load_profile(name)
    assert p.profile == name
    raw = yaml.safe_load((profiles.PROFILES_DIR / f"{name}.yaml").read_text())
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(raw)


def test_roles_differ_as_designed():
    a, h, s, b = (profiles.load_profile(n) for n in profiles.NAMES)
    assert a.trust_role == "anchor" and a.llm.by_tier["gpu-xl"] is not None
    assert "micro" not in s.llm.by_tier and not s.services.rag  # a spark asks the mesh
    assert b.emergency.probes and b.llm.internet and all(c.api_key_env for c in b.llm.internet)
    assert not (a.emergency.probes or h.emergency.probes or s.emergency.probes)  # only the bridge probes the internet


@pytest.mark.parametrize("text, key", [
    ("profile: hearth\nservices: {llm: maybe}\n", "services.llm"),
    ("profile: hearth\ncolour: blue\n", "colour"),
    ("profile: hearth\nllm: {by_tier: {huge: null}}\n", "llm.by_tier.huge"),
    ("profile: hearth\nllm: {by_tier: {cpu: {backend: gpt, model: x}}}\n", "llm.by_tier.cpu.backend"),
    ("profile: castle\n", "profile"),
    ("profile: spark\n", "profile"),  # the file is hearth.yaml
])
def test_bad_profiles_name_file_and_key(tmp_path, text, key):
    (tmp_path / "hearth.yaml").write_text(text)
    with pytest.raises(HearthNetError) as e:
        profiles.load_profile("hearth", tmp_path)
    assert e.value.code == "config_invalid" and e.value.details["key"] == key and str(tmp_path / "hearth.yaml") in e.value.message


def test_yaml_syntax_and_missing_files(tmp_path):
    f = tmp_path / "x.yaml"
    f.write_text("profile: hearth\nservices: {llm: true\n")
    with pytest.raises(HearthNetError) as e:
        profiles.load_profile(f)
    assert e.value.code == "config_invalid" and "line" in e.value.message
    with pytest.raises(HearthNetError) as e:
        profiles.load_profile(tmp_path / "nope.yaml")
    assert e.value.code == "not_found"
    with pytest.raises(HearthNetError) as e:
        profiles.load_profile("castle")
    assert e.value.code == "not_found"
    assert Path(profiles.PROFILES_DIR).is_dir()
