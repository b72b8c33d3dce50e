"""The site manifest: the worked example, its JSON Schema, and errors that name file and key."""

import json

import jsonschema
import pytest
import yaml

from hearthnet.errors import HearthNetError
from hearthnet.provision import corpora, profiles, site

EXAMPLE = profiles.PROFILES_DIR / "examples" / "site.yaml"
SCHEMA = profiles.PROFILES_DIR / "schemas" / "site.schema.json"


def test_schema_file_is_the_models_schema():
    assert json.loads(SCHEMA.read_text()) == json.loads(json.dumps(site.schema(), sort_keys=True))


def test_the_example_site():
    s = site.load_site(EXAMPLE)
    jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text())).validate(yaml.safe_load(EXAMPLE.read_text()))
    assert s.community.name == "Milldorf" and s.community.policy.min_signatures_to_promote == 2
    assert {h.profile for h in s.hosts.values()} == set(profiles.NAMES)
    assert s.hosts["teachers-laptop"].mode == "dev" and s.hosts["kitchen"].mode == "prod"
    # Every corpus a profile names is a preset (the site's or a built-in one), and every recorded hardware file exists.
    for h in s.hosts.values():
        assert set(profiles.load_profile(h.profile).corpora) <= set(s.corpora) | set(corpora.BUILTIN)
        if h.hardware:
            assert (EXAMPLE.parent / h.hardware).is_file()


BASE = {"community": {"name": "X"}, "bootstrap": ["https://a.local:7080"], "hosts": {"a": {"profile": "anchor"}}}


@pytest.mark.parametrize("change, key, words", [
    ({"hosts": {"a": {"profile": "hearth"}}}, "(top)", "exactly one anchor"),
    ({"hosts": {"a": {"profile": "anchor"}, "b": {"profile": "anchor"}}}, "(top)", "exactly one anchor"),
    ({"hosts": {"Bad_Name": {"profile": "anchor"}}}, "(top)", "DNS label"),
    ({"bootstrap": ["http://a.local:7080"]}, "(top)", "https://"),
    ({"bootstrap": []}, "bootstrap", "at least 1"),
    ({"hosts": {"a": {"profile": "anchor", "colour": "red"}}}, "hosts.a.colour", "Extra inputs"),
    ({"hosts": {"a": {"profile": "anchor", "node_id": "me"}}}, "hosts.a.node_id", "pattern"),
    ({"hosts": {"a": {"profile": "anchor", "mode": "test"}}}, "hosts.a.mode", "'dev' or 'prod'"),
    ({"community": {"name": "X", "policy": {"min_signatures_to_revoke": 0}}}, "community.policy.min_signatures_to_revoke", "greater than"),
])
def test_bad_sites(tmp_path, change, key, words):
    f = tmp_path / "site.yaml"
    f.write_text(yaml.safe_dump({**BASE, **change}))
    with pytest.raises(HearthNetError) as e:
        site.load_site(f)
    assert e.value.code == "config_invalid" and e.value.details["key"] == key and words in e.value.message and str(f) in e.value.message
