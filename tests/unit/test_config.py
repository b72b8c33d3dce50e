import pytest

from hearthnet import config
from hearthnet import constants as C
from hearthnet.errors import HearthNetError


def test_defaults_come_from_constants(tmp_path):
    cfg = config.load(tmp_path)
    assert cfg.transport.port == C.TRANSPORT_DEFAULT_PORT
    assert cfg.transport.rate_soft_rps_per_cap == C.RATE_LIMIT_SOFT_RPS_PER_CAP
    assert cfg.emergency.probe_targets == []  # never probes the internet by default
    assert cfg.emergency.debounce_seconds == C.EMERGENCY_TRANSITION_DEBOUNCE_SECONDS
    assert cfg.keys_dir == tmp_path / "keys"
    assert set(config.SECTIONS) == {
        "identity", "community", "events", "transport", "discovery", "bus", "llm", "models", "embedding",
        "rag", "file", "market", "chat", "emergency", "ui", "observability",
    }


def test_data_dir_from_env_and_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert config.load().data_dir == tmp_path / "xdg" / "hearthnet"
    monkeypatch.setenv("HEARTHNET_HOME", str(tmp_path / "home"))
    assert config.load().data_dir == tmp_path / "home"
    assert config.load(tmp_path / "explicit").data_dir == tmp_path / "explicit"


def test_file_then_env_precedence(tmp_path, monkeypatch):
    (tmp_path / "hearthnet.toml").write_text('[transport]\nport = 7100\n[discovery]\nstatic_peers = ["https://10.0.0.2:7080"]\n')
    assert config.load(tmp_path).transport.port == 7100
    monkeypatch.setenv("HEARTHNET_TRANSPORT__PORT", "7200")
    cfg = config.load(tmp_path)
    assert cfg.transport.port == 7200
    assert cfg.discovery.static_peers == ["https://10.0.0.2:7080"]


def test_relative_paths_resolve_under_data_dir(tmp_path):
    (tmp_path / "hearthnet.toml").write_text('[identity]\nkeys_dir = "secret"\n[file]\nblobs_dir = "/abs/blobs"\n')
    cfg = config.load(tmp_path)
    assert cfg.keys_dir == tmp_path / "secret"
    assert cfg.path(cfg.file.blobs_dir) == config.Path("/abs/blobs")


@pytest.mark.parametrize(
    "body, key, expected",
    [
        ('[transport]\nport = "abc"\n', "transport.port", "integer"),
        ("[transport]\nport = 70000\n", "transport.port", "less than or equal to 65535"),
        ("[transprt]\nport = 1\n", "transprt", "no such key"),
        ("[transport]\nprot = 1\n", "transport.prot", "no such key"),
        ('[events]\nsynchronous = "OFF"\n', "events.synchronous", "'NORMAL' or 'FULL'"),
        ('[[llm.backends]]\nname = "gpt5"\n', "llm.backends.0.name", "llama_cpp"),
        ('data_dir = "/x"\n', "data_dir", "not a file key"),
    ],
)
def test_bad_config_names_key_value_and_expectation(tmp_path, body, key, expected):
    (tmp_path / "hearthnet.toml").write_text(body)
    with pytest.raises(HearthNetError) as e:
        config.load(tmp_path)
    assert e.value.code == "config_invalid"
    assert key in e.value.message and expected in e.value.message
    assert str(tmp_path / "hearthnet.toml") in e.value.message
    assert "\n" not in e.value.message


def test_bad_toml_syntax(tmp_path):
    (tmp_path / "hearthnet.toml").write_text("[transport\nport=1")
    with pytest.raises(HearthNetError) as e:
        config.load(tmp_path)
    assert e.value.code == "config_invalid" and "not valid TOML" in e.value.message


def test_bad_env_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("HEARTHNET_BUS__LOCAL_LOAD_THRESHOLD", "2.5")
    with pytest.raises(HearthNetError) as e:
        config.load(tmp_path)
    assert "HEARTHNET_BUS__LOCAL_LOAD_THRESHOLD" in e.value.message and "2.5" in e.value.message


def test_explicit_missing_config_is_an_error(tmp_path):
    with pytest.raises(HearthNetError) as e:
        config.load(tmp_path, tmp_path / "nope.toml")
    assert e.value.code == "config_invalid"


def test_set_keys_keeps_comments_and_refuses_bad_values(tmp_path, monkeypatch):
    p = tmp_path / "hearthnet.toml"
    p.write_text("# my village box\n[transport]\nport = 7100 # chosen by Ana\n")
    monkeypatch.setenv("HEARTHNET_UI__PORT", "9999")
    cfg = config.set_keys(p, tmp_path, {"community": {"community_id": "abcdefgh12345678"}})
    text = p.read_text()
    assert "# my village box" in text and "# chosen by Ana" in text and "abcdefgh12345678" in text
    assert "9999" not in text  # environment overrides never leak into the file
    assert cfg.community.community_id == "abcdefgh12345678"
    before = p.read_bytes()
    with pytest.raises(HearthNetError):
        config.set_keys(p, tmp_path, {"transport": {"port": -1}})
    assert p.read_bytes() == before


def test_set_keys_on_a_fresh_file_keeps_one_header(tmp_path):
    cfg = tmp_path / "hearthnet.toml"
    cfg.write_text("# HearthNet node configuration. Keys: docs/configuration.md\n")  # what init writes on defaults
    config.set_keys(cfg, tmp_path, {"community": {"community_id": "abcdefgh12345678"}})
    config.set_keys(cfg, tmp_path, {"transport": {"port": 7101}})
    text = cfg.read_text()
    assert text.count("Keys: docs/configuration.md") == 1
    assert config.load(tmp_path, cfg).transport.port == 7101


def test_set_keys_starts_a_missing_file_with_the_header(tmp_path):
    p = tmp_path / "hearthnet.toml"
    config.set_keys(p, tmp_path, {"transport": {"port": 7101}})
    assert p.read_text().startswith("# HearthNet node configuration")
