"""Gateway API keys on their own: shown once, stored hashed, revocation seen by another store at once."""

import json
import os

import pytest

from hearthnet.errors import HearthNetError
from hearthnet.gateway.apikeys import ApiKeyStore


def test_a_key_is_stored_hashed_private_and_checked_until_revoked(tmp_path):
    store = ApiKeyStore(tmp_path)
    key, secret = store.create("laptop")
    assert secret.startswith("hn_") and secret not in (tmp_path / "apikeys.json").read_text()  # only its hash is kept
    assert os.stat(tmp_path / "apikeys.json").st_mode & 0o777 == 0o600
    running = ApiKeyStore(tmp_path)  # the node's own store, another object on the same file
    assert running.check(secret).id == key.id
    with pytest.raises(HearthNetError) as e:
        store.create("laptop")
    assert e.value.code == "already_exists"
    store.revoke("laptop")
    with pytest.raises(HearthNetError) as e:
        running.check(secret)  # re-read on change: no restart needed
    assert e.value.code == "unauthorized"
    for bad in ("", "hn_", "sk-something", secret + "x"):
        with pytest.raises(HearthNetError):
            running.check(bad)


def test_bad_names_and_a_damaged_file_are_one_clear_error(tmp_path):
    store = ApiKeyStore(tmp_path)
    for name in ("", " ", "x" * 65):
        with pytest.raises(HearthNetError) as e:
            store.create(name)
        assert e.value.code == "bad_request"
    with pytest.raises(HearthNetError) as e:
        store.revoke("nobody")
    assert e.value.code == "not_found"
    (tmp_path / "apikeys.json").write_text(json.dumps({"keys": [{"id": 1}]}))
    with pytest.raises(HearthNetError) as e:
        store.list()
    assert e.value.code == "db_corrupt"
