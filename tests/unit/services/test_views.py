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


def test_chat_view_keeps_only_its_own_conversations_and_honours_only_the_recipients_receipts(community):
    from ulid import ULID

    from hearthnet.services.chat.crypto import seal, unseal
    from hearthnet.services.chat.view import ChatView

    log, root, anchor = community
    bob, eve = keys.generate(), keys.generate()
    for kp, name in ((bob, "bob"), (eve, "eve")):
        log.append_local("community.member.joined", {"node_id": kp.node_id, "level": "member", "display_name": name}, root)
    view = ChatView(anchor.node_id)
    engine = ReplayEngine(log)
    engine.register(view)
    early, to_bob, between_others = str(ULID()), str(ULID()), str(ULID())
    # A receipt that arrives before its message (sync order) is kept and applied when the message comes.
    log.append_local("chat.message.delivered", {"msg_ids": [early]}, bob)
    log.append_local("chat.message.sent", {"msg_id": early, "to": bob.node_id, "box": seal(anchor, bob.node_id, {"body": "first"})}, anchor)
    log.append_local("chat.message.sent", {"msg_id": to_bob, "to": bob.node_id, "box": seal(anchor, bob.node_id, {"body": "second"})}, anchor)
    log.append_local("chat.message.read", {"msg_ids": [to_bob]}, eve)  # not the recipient: ignored
    log.append_local("chat.message.sent", {"msg_id": between_others, "to": eve.node_id, "box": seal(bob, eve.node_id, {"body": "x"})}, bob)
    engine.catch_up()
    got = {m.msg_id: m for m in view.history()}
    assert set(got) == {early, to_bob}  # bob -> eve is not this node's conversation
    assert got[early].delivered_at and got[to_bob].delivered_at is None and got[to_bob].read_at is None
    assert view.pending_recipients() == {bob.node_id} and view.unread() == {}
    assert unseal(bob, anchor.node_id, got[to_bob].box) == {"body": "second"}  # only the two ends can read it
    again = ChatView(anchor.node_id)
    again.restore_state(view.snapshot_state())
    assert [m.msg_id for m in again.history()] == [m.msg_id for m in view.history()]
