"""`hearthnet bootstrap --plan bootstrap.json`: the community phase that applies to this box.

Invites are bound to node ids, so a village comes up in phases, and each run does the
next one that can be done — re-running a finished phase changes nothing:

    every box      init (a node key; its id goes into the site: `hearthnet id --json`)
    the anchor     create the community with the site's name and policy (once)
    the anchor     with its node running: one invite per host whose node id the site
                   knows, written to invites/<host>.txt (kept while valid)
    every other    redeem its own invite once (invites/<host>.txt beside its plan)

What cannot be done yet (no node id for a host, the anchor's node not running, no
invite delivered yet) is reported as pending, not as an error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hearthnet.errors import HearthNetError
from hearthnet.events.types import PolicyData
from hearthnet.home import Home
from hearthnet.provision.profiles import load_yaml, validate
from hearthnet.storage import atomic_write_text, ensure_private_dir, read_text

CallNode = Callable[[str, dict[str, Any]], Any]  # (capability, body) -> answer of this box's running node; raises no_node


class CreatePlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1]
    action: Literal["create_community"]
    name: str = Field(min_length=1, max_length=120)
    policy: PolicyData | None = None
    invites: str = "invites"
    hosts: dict[str, str | None] = Field(default_factory=dict)


class RedeemPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1]
    action: Literal["redeem_invite"]
    bootstrap: list[str] = Field(default_factory=list)
    invite: str


@dataclass
class Report:
    action: str
    done: list[str] = field(default_factory=list)  # what holds now, whether this run did it or found it done
    pending: list[str] = field(default_factory=list)
    changed: int = 0  # what this run changed (a provisioner's `changed`)

    def did(self, line: str) -> None:
        self.done.append(line)
        self.changed += 1

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "done": self.done, "pending": self.pending, "complete": not self.pending, "changed": self.changed}


def load_plan(path: Path) -> CreatePlan | RedeemPlan:
    raw = load_yaml(path)
    action = raw.get("action") if isinstance(raw, dict) else None
    model = {"create_community": CreatePlan, "redeem_invite": RedeemPlan}.get(str(action))
    if model is None:
        raise HearthNetError("bad_request", f"{path}: action must be create_community or redeem_invite, not {action!r}")
    return validate(model, raw, Path(path))


def _valid_invite_file(p: Path, node_id: str) -> bool:
    from hearthnet.identity.invite import check_for, decode

    try:
        inv, _ = decode(read_text(p))
        check_for(inv, node_id)
        return True
    except HearthNetError:
        return False


def run_create(home: Home, plan: CreatePlan, invites_dir: Path, call_node: CallNode) -> Report:
    rep = Report("create_community")
    if home.community_id is None:
        home.init(create_community=plan.name, policy=plan.policy)
        rep.did(f"community {plan.name} created")
    else:
        with home.open_log() as log:
            st = log.membership
            if st.name != plan.name or home.root_key() is None:
                raise HearthNetError("conflict", f"this box belongs to community {st.name!r} (without its root key?), not {plan.name!r}")
            members = {n for n in st.members if st.is_member(n)}
        rep.done.append(f"community {plan.name} exists")
        for host, node_id in sorted(plan.hosts.items()):
            if node_id is None:
                rep.pending.append(f"{host}: no node id yet (run `hearthnet id --json` there and set hosts.{host}.node_id in the site)")
            elif node_id in members:
                rep.done.append(f"{host}: member")
            elif _valid_invite_file(invites_dir / f"{host}.txt", node_id):
                rep.done.append(f"{host}: invite ready")
            else:
                try:
                    res = call_node("community.invite", {"node_id": node_id})
                except HearthNetError as exc:
                    if exc.code != "no_node":
                        raise
                    rep.pending.append(f"{host}: invite waits for this box's node to run (start it, then bootstrap again)")
                    continue
                atomic_write_text(ensure_private_dir(invites_dir) / f"{host}.txt", res["invite"] + "\n", mode=0o600)
                rep.did(f"{host}: invite issued")
        return rep
    rep.pending.extend(f"{h}: invite after the node runs" for h in sorted(plan.hosts))
    return rep


async def run_redeem(home: Home, plan: RedeemPlan, invite_file: Path) -> Report:
    from hearthnet.community.membership import redeem_invite

    rep = Report("redeem_invite")
    if not home.key_path.exists():
        home.init()
        rep.did("node key created")
    if home.community_id is not None:
        with home.open_log() as log:
            if log.membership.is_member(home.identity().node_id):
                rep.done.append(f"member of {log.membership.name}")
                return rep
    if not invite_file.exists():
        rep.pending.append(f"no invite at {invite_file} yet: the anchor issues it once the site has this box's node id")
        return rep
    res = await redeem_invite(home, read_text(invite_file, "invite"))
    rep.did(f"joined {res['name']} as {res['level']}")
    return rep


def run(home: Home, plan_path: Path, *, invites: Path | None, call_node: CallNode, run_async: Callable[[Awaitable[Any]], Any]) -> Report:
    plan = load_plan(plan_path)
    base = plan_path.resolve().parent
    if isinstance(plan, CreatePlan):
        return run_create(home, plan, invites or base / plan.invites, call_node)
    target = (invites / Path(plan.invite).name) if invites else base / plan.invite
    return run_async(run_redeem(home, plan, target))


__all__ = ["CreatePlan", "RedeemPlan", "Report", "load_plan", "run", "run_create", "run_redeem"]
