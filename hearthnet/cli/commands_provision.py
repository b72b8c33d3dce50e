"""Provisioning: hardware facts (render-profile and friends come with the profiles work)."""
# No `from __future__ import annotations` here: typer reads the real annotation objects.

import json
from pathlib import Path
from typing import Annotated

import typer

from hearthnet.cli.app import JsonOpt, command, emit_json, globals_, make_console
from hearthnet.provision import hardware
from hearthnet.storage import atomic_write_text

console = make_console()


@command("detect-hardware")
def detect_hardware_cmd(
    json_out: JsonOpt = False,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the facts (JSON) to this file, atomically.")] = None,
) -> None:
    """CPU, RAM, GPUs and VRAM, disk, architecture, Raspberry Pi model, network interfaces, and the tier they give.
    A probe that cannot read anything says unknown (null) instead of failing."""
    facts = hardware.detect(data_dir=globals_().data_dir)
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
