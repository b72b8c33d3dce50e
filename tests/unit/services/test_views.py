"""The file and moderation views on their own: real signed events in a real log, replayed, and a snapshot of
each view restored into a fresh one gives the same answers."""

from hearthnet.events.replay import ReplayEngine
from hearthnet.identity import keys
from hearthnet.services.file.view import FileView
from hearthnet.services.moderation.view import ModerationView

CID_A, CID_B = "blake3:" + "a" * 64, "blake3:" + "b" * 64


def test_file_view_tracks_sources_per_advert_and_unpin(community):
    log, root, anchor = community
    other = keys.generate()
    log.append_local("community.member.joined", {"node_id": other.node_id, "level": "member", "display_name": "o"}, root)
    view = FileView()
    engine = ReplayEngine(log)
    engine.register(view)
    log.append_local("file.cid.advertised", {"cid": CID_A, "size_bytes": 10, "filename": "Seed list.txt"}, anchor)
    log.append_local("file.cid.advertised", {"cid": CID_A, "size_bytes": 10, "filename": "other name"}, other)
    log.append_local("file.cid.advertised", {"cid": CID_B, "size_bytes": 5}, other)
    log.append_local("file.cid.unpinned", {"cid": CID_B}, other)
    engine.catch_up()
    assert view.sources(CID_A) == sorted([anchor.node_id, other.node_id])
    assert view.get(CID_A).filename == "Seed list.txt"  # the first advert names it
    assert view.sources(CID_B) == [] and [f["cid"] for f in view.query()] == [CID_A]  # nobody holds B: not listed
    assert [f["cid"] for f in view.query("SEED")] == [CID_A] and view.query("nothing") == []
    again = FileView()
    again.restore_state(view.snapshot_state())
    assert again.query() == view.query() and again.sources(CID_A) == view.sources(CID_A)


def test_moderation_counts_only_authors_trusted_now_and_the_latest_action(community):
    log, root, anchor = community
    mod, member = keys.generate(), keys.generate()
    log.append_local("community.member.joined", {"node_id": mod.node_id, "level": "trusted", "display_name": "mod"}, root)
    log.append_local("community.member.joined", {"node_id": member.node_id, "level": "member", "display_name": "m"}, root)
    view = ModerationView(lambda n: log.membership.level_of(n))
    engine = ReplayEngine(log)
    engine.register(view)
    log.append_local("moderation.item.hidden", {"kind": "market.post", "target": "post-1", "reason": "spam"}, mod)
    log.append_local("moderation.item.hidden", {"kind": "file", "target": CID_A, "reason": "not ours"}, member)  # a member's hide counts for nothing
    log.append_local("moderation.item.hidden", {"kind": "market.post", "target": "post-2", "reason": "rude"}, mod)
    log.append_local("moderation.item.unhidden", {"kind": "market.post", "target": "post-2", "reason": "apologised"}, anchor)
    engine.catch_up()
    assert view.is_hidden("market.post", "post-1") and not view.is_hidden("market.post", "post-2") and not view.is_hidden("file", CID_A)
    assert [(h["target"], h["by"]) for h in view.hidden()] == [("post-1", mod.node_id)]
    again = ModerationView(lambda n: log.membership.level_of(n))
    again.restore_state(view.snapshot_state())
    assert again.hidden() == view.hidden()
    # The moderator loses trust: the hide stops counting everywhere, though its event stays in the log.
    log.append_local("community.member.demoted", {"node_id": mod.node_id, "level": "member"}, root)
    log.refresh()
    assert not view.is_hidden("market.post", "post-1") and view.hidden() == []
