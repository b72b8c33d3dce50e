"""Provisioning: hardware facts (render-profile and friends come with the profiles work)."""
# No `from __future__ import annotations` here: typer reads the real annotation objects.

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from hearthnet.cli.app import JsonOpt, app, command, emit_json, globals_, make_console, table
from hearthnet.provision import hardware
from hearthnet.storage import atomic_write_text

console = make_console()


@command("detect-hardware")
def detect_hardware_cmd(
    json_out: JsonOpt = False,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the facts (JSON) to this file, atomically.")] = None,
    stable: Annotated[bool, typer.Option("--stable", help="Leave out what changes from run to run (free disk, interfaces): facts to record for render-profile --hardware.")] = False,
) -> None:
    """CPU, RAM, GPUs and VRAM, disk, architecture, Raspberry Pi model, network interfaces, and the tier they give.
    A probe that cannot read anything says unknown (null) instead of failing."""
    facts = hardware.detect(data_dir=globals_().data_dir)
    if stable:
        facts = hardware.stable(facts)
    doc = facts.model_dump(mode="json")
    if out is not None:
        atomic_write_text(out, json.dumps(doc, indent=2) + "\n")
    if json_out:
        emit_json(doc)
        return
    r = hardware.render_facts(facts)
    gpus = ", ".join(f"{g.model} ({g.vram_gb if g.vram_gb is not None else '?'} GiB)" for g in facts.gpus) or "none found"
    console.print(f"arch       {facts.arch}   {facts.os}")
    console.print(f"cpu        {facts.cpu.model}: {facts.cpu.cores or '?'} cores, {facts.cpu.threads or '?'} threads")
    console.print(f"memory     {facts.ram_gb if facts.ram_gb is not None else 'unknown'} GiB (tier {r['ram_tier_gb']} GB)")
    console.print(f"gpus       {gpus}")
    console.print(f"disk free  {facts.disk_free_gb if facts.disk_free_gb is not None else 'unknown'} GiB")
    if facts.raspberry_pi:
        console.print(f"board      {facts.raspberry_pi}")
    for i in facts.interfaces:
        console.print(f"interface  {i.name} {'up' if i.up else 'down'}{' wireless' if i.wireless else ''} {' '.join(i.addresses)}")
    console.print(f"tier       {r['tier']}: {dict(hardware.TIER_RULES)[r['tier']]}")
    if facts.unknown:
        console.print(f"unknown    {', '.join(facts.unknown)}")


profile_app = typer.Typer(help="Profiles (anchor, hearth, spark, bridge).", no_args_is_help=True)
app.add_typer(profile_app, name="profile")


@command("show", group=profile_app)
def profile_show_cmd(
    profile: Annotated[str | None, typer.Argument(help="anchor, hearth, spark, bridge or a .yaml path (default: the --host's profile).")] = None,
    site_file: Annotated[Path | None, typer.Option("--site", help="Site manifest, for a host's overrides and corpus presets.")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Host of the site.")] = None,
    hardware_file: Annotated[Path | None, typer.Option("--hardware", help="Recorded facts (detect-hardware --json).")] = None,
    detect: Annotated[bool, typer.Option("--detect", help="Detect this box's hardware (the default without --hardware).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """The effective profile after the implication rules, with where each value came from."""
    from hearthnet.errors import HearthNetError
    from hearthnet.provision.effective import effective
    from hearthnet.provision.site import load_site

    if hardware_file is not None and detect:
        raise HearthNetError("bad_request", "give --hardware FILE or --detect, not both")
    if host is not None and site_file is None:
        raise HearthNetError("bad_request", "--host needs --site")
    site = load_site(site_file) if site_file is not None else None
    h = None
    if site is not None and host is not None:
        h = site.hosts.get(host)
        if h is None:
            raise HearthNetError("not_found", f"no host {host!r} in {site_file} (have: {', '.join(site.hosts)})")
    name = profile or (h.profile if h else None)
    if name is None:
        raise HearthNetError("bad_request", "name a profile, or --site FILE --host H")
    if hardware_file is None and not detect and h is not None and h.hardware:
        hardware_file = site_file.parent / h.hardware  # type: ignore[union-attr]
    facts = hardware.load_facts(hardware_file) if hardware_file is not None else hardware.detect()
    eff = effective(name, facts, site=site, host=host)
    if json_out:
        emit_json(eff.as_dict())
        return
    console.print(f"profile {eff.profile}" + (f"  host {eff.host} ({eff.mode})" if eff.host else "") + f"  tier {eff.hardware['tier']}")
    t = table("key", "value", "from")
    for k, v in sorted(eff.values.items()):
        t.add_row(k, json.dumps(v), eff.sources[k])
    console.print(t)


@command("render-profile")
def render_profile_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output directory (with --all: one subdirectory per host).")],
    profile: Annotated[str | None, typer.Option("--profile", help="anchor, hearth, spark, bridge or a .yaml path (one box, no site).")] = None,
    site_file: Annotated[Path | None, typer.Option("--site", help="Site manifest.")] = None,
    host: Annotated[str | None, typer.Option("--host", help="One host of the site.")] = None,
    all_hosts: Annotated[bool, typer.Option("--all", help="Every host of the site.")] = False,
    hardware_file: Annotated[Path | None, typer.Option("--hardware", help="Recorded facts (detect-hardware --json).")] = None,
    detect: Annotated[bool, typer.Option("--detect", help="Detect this box's hardware.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Print what would change as a unified diff; exit 6 if anything would, 0 if not.")] = False,
    exec_path: Annotated[str, typer.Option("--exec", help="The hearthnet executable the systemd unit runs (a venv's, a store path).")] = "/usr/bin/hearthnet",
    user: Annotated[str | None, typer.Option("--user", help="Static system user the unit runs as (default: systemd's DynamicUser).")] = None,
    config_dir: Annotated[str, typer.Option("--config-dir", help="Where these files live on the box: the unit's --config points into it.")] = "/etc/hearthnet",
    settings_file: Annotated[Path | None, typer.Option("--settings", help="TOML merged over the rendered hearthnet.toml (hashed into the receipt).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Render a box's files (config, model lock, corpora plan, bootstrap plan, systemd unit, receipt), atomically.
    With --json: {"dir", "changed"} per box ({"dir", "changed", "diff"} with --check); a list with --all."""
    from hearthnet import constants as C
    from hearthnet.errors import HearthNetError
    from hearthnet.provision import render
    from hearthnet.provision.site import load_site

    if hardware_file is not None and detect:
        raise HearthNetError("bad_request", "give --hardware FILE or --detect, not both")
    if (profile is None) == (site_file is None):
        raise HearthNetError("bad_request", "give --profile P (one box) or --site FILE with --host H or --all")
    if site_file is not None and (host is None) == (not all_hosts):
        raise HearthNetError("bad_request", "with --site give --host H or --all")
    install = render.Install(exec_path, user, config_dir)
    facts = render.Facts(hardware_file, detect)
    if profile is not None:
        jobs = [(out, render.profile_files(profile, facts(), install, settings_file))]
    else:
        site = load_site(site_file)  # type: ignore[arg-type]
        rendered = render.site_files(site, site_file, list(site.hosts) if all_hosts else [host], facts, install=install,  # type: ignore[arg-type, list-item]
                                     settings_file=settings_file)
        jobs = [(out / name if all_hosts else out, files) for name, files in rendered.items()]

    def report(results: list[dict[str, Any]]) -> None:
        emit_json(results if all_hosts else results[0])

    if check:
        diffs = [(d, render.diff(d, files)) for d, files in jobs]
        if json_out:
            report([{"dir": str(d), "changed": bool(text), "diff": text} for d, text in diffs])
        elif any(text for _, text in diffs):
            sys.stdout.write("".join(text for _, text in diffs))
        if any(text for _, text in diffs):
            raise typer.Exit(C.EXIT_WOULD_CHANGE)
        return
    results = [{"dir": str(d), "changed": render.write(d, files)} for d, files in jobs]  # every job rendered (so validated) before any is written
    if json_out:
        report(results)
        return
    for r in results:
        console.print(f"{r['dir']}: {'written' if r['changed'] else 'unchanged'}")


site_app = typer.Typer(help="The site manifest (one village).", no_args_is_help=True)
app.add_typer(site_app, name="site")


@command("set", group=site_app)
def site_set_cmd(
    host: Annotated[str, typer.Argument(help="Host of the site.")],
    key: Annotated[str, typer.Argument(help="Key under the host, e.g. profile, mode, llm, llm.model, services.rag.")],
    value: Annotated[str, typer.Argument(help='A YAML value: hearth, true, {backend: ollama, model: "qwen2.5:7b"}.')],
    site_file: Annotated[Path, typer.Option("--site", help="Site manifest to edit (comments are kept).")],
    out: Annotated[Path, typer.Option("--out", help="Rendered output of the site (DIR/<host>/), re-rendered.")],
    hardware_file: Annotated[Path | None, typer.Option("--hardware", help="Facts for hosts without recorded ones.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Change one part of a host's intent and re-render; if the result does not validate, nothing changes.
    The manifest is rewritten only when its text changes. --json: {"site_changed", "hosts": {host: changed}}."""
    from hearthnet.provision import render
    from hearthnet.provision.site_edit import parse_value, set_and_render

    def render_all(site, text):  # type: ignore[no-untyped-def]
        # Receipts hash the edited manifest, which is written only after every host rendered.
        rendered = render.site_files(site, site_file, list(site.hosts), render.Facts(hardware_file), text.encode())
        return lambda: {name: render.write(out / name, files) for name, files in rendered.items()}

    site_changed, hosts = set_and_render(site_file, host, key, parse_value(value), render_all)
    if json_out:
        emit_json({"site_changed": site_changed, "hosts": hosts})
        return
    console.print(f"{site_file}: {'written' if site_changed else 'unchanged'}")
    for name, changed in hosts.items():
        console.print(f"{name}: {'written' if changed else 'unchanged'}")


@command("bootstrap")
def bootstrap_cmd(
    plan: Annotated[Path, typer.Option("--plan", help="bootstrap.json from render-profile.")],
    invites: Annotated[Path | None, typer.Option("--invites", help="Invite directory (default: the plan's invites/ beside it).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run the community phase that applies to this box: create the community and issue invites (anchor), or redeem this box's invite.
    Re-running a finished phase changes nothing; what cannot be done yet is listed as pending."""
    import asyncio

    from hearthnet.cli.app import home
    from hearthnet.cli.commands_mesh import call_node
    from hearthnet.provision.actions import bootstrap

    rep = bootstrap.run(home(), plan, invites=invites, call_node=lambda name, body: call_node(name, body, None), run_async=asyncio.run)
    if json_out:
        emit_json(rep.as_dict())
        return
    for line in rep.done:
        console.print(f"done     {line}")
    for line in rep.pending:
        console.print(f"pending  {line}")


state_app = typer.Typer(help="The expected-state record provisioners leave on a box (DATA_DIR/state.json).", no_args_is_help=True)
app.add_typer(state_app, name="state")


@command("record", group=state_app)
def state_record_cmd(
    phases: Annotated[list[str], typer.Argument(metavar="PHASE...", help="install, render, models, community, service or corpora; several at once.")],
    applied_by: Annotated[str, typer.Option("--applied-by", help="ansible, nixos or manual.")],
    render_dir: Annotated[Path | None, typer.Option("--render-dir", help="The box's rendered files (default: the config file's directory).")] = None,
    bundle: Annotated[Path | None, typer.Option("--bundle", help="The bundle the box installed from (install phase).")] = None,
    exec_path: Annotated[str | None, typer.Option("--exec", help="The executable the unit runs (install phase).")] = None,
    extras: Annotated[list[str] | None, typer.Option("--extra", help="An installed extra (install phase); repeat.")] = None,
    inputs: Annotated[str | None, typer.Option("--inputs", help="At the end of a whole run: the provisioner's fingerprint of its inputs (for `state check`).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Read phases' state off this box and write it into DATA_DIR/state.json (only when it changed)."""
    from hearthnet.cli.app import home
    from hearthnet.errors import HearthNetError
    from hearthnet.provision.actions import state

    h = home()
    rdir = render_dir or h.config_path.parent
    readers = state.readers(h, render_dir=rdir, bundle=bundle, exec_path=exec_path, extras=list(extras or []))
    for phase in phases:
        if phase not in readers:
            raise HearthNetError("bad_request", f"phase {phase!r}: one of {', '.join(state.PHASES)}")
    sections = {phase: readers[phase]() for phase in phases}
    profile = h.config.identity.profile if phases != ["install"] else None  # before the first render the config is the data dir's own
    changed = state.record(h, sections, applied_by, profile=profile, inputs=inputs)
    if json_out:
        emit_json({"phases": phases, "changed": changed, "sections": sections})
    else:
        console.print(f"{h.data_dir / state.FILE}: {', '.join(phases)} {'recorded' if changed else 'unchanged'}")


@command("check", group=state_app)
def state_check_cmd(
    inputs: Annotated[str, typer.Option("--inputs", help="The provisioner's fingerprint of its inputs for this run.")],
    bundle: Annotated[Path, typer.Option("--bundle", help="The bundle the box installed from.")],
    render_dir: Annotated[Path | None, typer.Option("--render-dir", help="The box's rendered files (default: the config file's directory).")] = None,
    hardware_file: Annotated[Path | None, typer.Option("--hardware", help="The stable facts the box was rendered with: compared with a fresh detection.")] = None,
    unit_file: Annotated[Path | None, typer.Option("--unit", help="The installed unit file: compared with the rendered one.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Does the last whole run's record still hold here? Exit 0 either way; `converged` says (a provisioner skips a converged box)."""
    from hearthnet.cli.app import home
    from hearthnet.provision.actions import state

    h = home()
    got = state.check(h, inputs=inputs, render_dir=render_dir or h.config_path.parent, bundle=bundle, hardware_file=hardware_file, unit_file=unit_file)
    if json_out:
        emit_json(got)
        return
    console.print("converged: the last whole run's record holds" if got["converged"] else "not converged:")
    for why in got["differs"]:
        console.print(f"  {why}")
