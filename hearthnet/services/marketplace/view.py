"""The marketplace view, rebuilt by replaying market.post.* events.

Rules: the first `created` for a post id wins; `updated` and `expired` count only when
signed by the post's author (so nobody else can edit or end a post); an expired post
takes no updates. Expiry by time is applied when reading (a post past `expires_at` is
out of the listing even before its author's node has swept it), so views agree without
anyone's clock entering the log's order.

The log has already refused any event whose data do not match its market schema.

Search is word-prefix matching over title, body and tags, ranked by where the words
hit (title 3, tag 2, body 1): a village market holds hundreds of posts, not millions.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from hearthnet import clock

from hearthnet.events.types import Event

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class Post:
    post_id: str
    author: str
    category: str
    title: str
    body: str
    tags: list[str]
    created_at: str
    expires_at: str
    updated_at: str | None = None
    expired: str | None = None  # "author" | "ttl"
    lamport: int = 0
    words: dict[str, int] = field(default_factory=dict, repr=False)  # word -> weight

    def index(self) -> None:
        w: dict[str, int] = {}
        for text, weight in ((self.body, 1), (" ".join(self.tags), 2), (self.title, 3)):
            for word in _WORD.findall(text.casefold()):
                w[word] = max(w.get(word, 0), weight)
        self.words = w

    def live(self, now: float) -> bool:
        return self.expired is None and clock.parse_iso(self.expires_at) > now

    def score(self, terms: list[str]) -> int:
        total = 0
        for t in terms:
            best = max((wt for word, wt in self.words.items() if word.startswith(t)), default=0)
            if best == 0:
                return 0
            total += best
        return total

    def public(self, now: float) -> dict[str, Any]:
        d = asdict(self)
        d.pop("words")
        d["live"] = self.live(now)
        return d


class MarketView:
    name = "market"
    event_types = frozenset({"market.post.created", "market.post.updated", "market.post.expired"})

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.posts: dict[str, Post] = {}

    def apply(self, ev: Event) -> None:
        d = ev.data  # the log refused any market event whose data does not match MARKET_SCHEMAS
        with self._lock:
            post = self.posts.get(d["post_id"])
            if ev.event_type == "market.post.created":
                if post is None:
                    p = Post(d["post_id"], ev.author, d["category"], d["title"], d.get("body", ""), list(d.get("tags", [])), ev.wall_clock,
                             d["expires_at"], lamport=ev.lamport)
                    p.index()
                    self.posts[p.post_id] = p
                return
            if post is None or post.author != ev.author or post.expired is not None:
                return
            if ev.event_type == "market.post.updated":
                for k in ("title", "body", "tags", "expires_at"):
                    if d.get(k) is not None:
                        setattr(post, k, list(d[k]) if k == "tags" else d[k])
                post.updated_at, post.lamport = ev.wall_clock, ev.lamport
                post.index()
            else:
                post.expired = d["reason"]

    def get(self, post_id: str) -> Post | None:
        with self._lock:
            return self.posts.get(post_id)

    def query(self, *, category: str | None = None, tag: str | None = None, text: str | None = None, author: str | None = None,
              include_expired: bool = False, limit: int = 50, now: float | None = None,
              skip: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
        now = clock.now() if now is None else now
        terms = _WORD.findall((text or "").casefold())
        with self._lock:
            rows = []
            for p in self.posts.values():
                if (category and p.category != category) or (tag and tag not in p.tags) or (author and p.author != author):
                    continue
                if not include_expired and not p.live(now):
                    continue
                if skip is not None and skip(p.post_id):
                    continue
                s = p.score(terms) if terms else 0
                if terms and s == 0:
                    continue
                rows.append((s, p.lamport, p))
        rows.sort(key=lambda r: (-r[0], -r[1], r[2].post_id))
        return [p.public(now) for _, _, p in rows[:limit]]

    def due(self, author: str, now: float) -> list[str]:
        """Posts of `author` past their expiry that no expired event has closed yet (the sweep's work)."""
        with self._lock:
            return sorted(p.post_id for p in self.posts.values() if p.author == author and p.expired is None
                          and clock.parse_iso(p.expires_at) <= now)

    def snapshot_state(self) -> dict[str, Any]:
        with self._lock:
            return {"posts": [{k: v for k, v in asdict(p).items() if k != "words"} for p in self.posts.values()]}

    def restore_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.posts = {}
            for raw in state.get("posts", []):
                p = Post(**raw)
                p.index()
                self.posts[p.post_id] = p


__all__ = ["MarketView", "Post"]
