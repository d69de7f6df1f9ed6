"""``webmodels pull oci://…`` and ``webmodels push SHA|NAME oci://…``: OCI registries
as model sources (host/webmodels/oci/). Registry credentials come from the user's
Docker/ORAS ``config.json`` only."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from webmodels.cli.main import CliContext
from webmodels.cli.output import ProgressBar, format_table, human_bytes, print_json
from webmodels.digest import Digest
from webmodels.errors import HostError
from webmodels.fetch.records import DownloadRequest
from webmodels.manifests.pulling import check_room, missing
from webmodels.oci.artifact import Layer
from webmodels.oci.background import plan
from webmodels.oci.client import RegistryClient
from webmodels.oci.credentials import config_path, find_credentials
from webmodels.oci.pull import pull
from webmodels.oci.push import layers_of_manifest, layers_of_model, push
from webmodels.oci.reference import parse_reference
from webmodels.store import Store
from webmodels.store.manifests import find_manifest, load_manifest


def register(sub: Any) -> None:
    p = sub.add_parser(
        "push",
        help="publish a stored model to an OCI registry",
        description="Write a stored model (SHA-256, a prefix of it, or a manifest's name) "
        "to an OCI registry as an artifact that `oras pull` and `webmodels pull oci://…` "
        "read. Credentials come from Docker/ORAS config.json (`docker login`).",
    )
    p.add_argument("model", metavar="SHA|NAME")
    p.add_argument("reference", metavar="oci://REGISTRY/REPO:TAG")
    p.set_defaults(func=cmd_push)


def _client(text: str) -> RegistryClient:
    reference = parse_reference(text)
    credentials = find_credentials(config_path(os.environ, Path.home()), reference.registry)
    return RegistryClient(reference, credentials=credentials)


def cmd_pull_oci(args: argparse.Namespace, ctx: CliContext) -> int:
    """`webmodels pull oci://…` (fetch_cmd hands such URLs here)."""
    if args.sha256 or args.integrity or args.mirror:
        raise HostError(
            "bad_request",
            "pull oci://… takes no --sha256, --integrity or --mirror: "
            "the registry's manifest names every layer's digest (pin one with @sha256:…)",
        )
    client = _client(args.url)
    if args.background:
        return _pull_background(client, ctx)
    bars: dict[Digest, ProgressBar] = {}

    def progress(layer: Layer, loaded: int) -> None:
        if layer.digest not in bars:
            bars[layer.digest] = ProgressBar(
                f"pulling {layer.title or layer.digest.short}", layer.size
            )
        bars[layer.digest].update(loaded)

    try:
        with Store.open(ctx.config) as store:
            pulled = pull(store, client, staging_root=ctx.config.home, progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
        client.close()
    files = [m.manage_info() for m in pulled.models]
    if ctx.json:
        manifest = pulled.manifest.to_json() if pulled.manifest else None
        print_json(
            {
                "result": "pulled",
                "oci_manifest": f"sha256:{pulled.manifest_digest.hex}",
                "models": files,
                "manifest": manifest,
            }
        )
        return 0
    rows = [(m["sha256"][:12], m["format"], human_bytes(m["size"])) for m in files]
    print(format_table(["SHA256", "FORMAT", "SIZE"], rows))
    if pulled.manifest:
        print(f"one model of {len(files)} files: manifest {pulled.manifest.digest.hex}")
    return 0


def _pull_background(client: RegistryClient, ctx: CliContext) -> int:
    """A download job per layer not yet stored, run by the detached runner; several
    titled layers are one model, saved by the runner once all are stored."""
    from webmodels.cli.fetch_cmd import _manager, _spawn_runner
    from webmodels.cli.manifest_pull import pull_in_background

    try:
        planned = plan(client)
    finally:
        client.close()
    with Store.open(ctx.config) as store:
        if planned.one_model:
            return pull_in_background(store, ctx, planned.sources, name=None, version=None)
        check_room(store, planned.sources, quota=ctx.config.quota_total_bytes)
        manager = _manager(store, ctx)
        jobs = [
            manager.join(DownloadRequest(s.digest, s.urls, waiter="", size=s.size, background=True))
            for s in missing(store, planned.sources)
        ]
    if jobs:
        _spawn_runner(ctx)
    manifest = f"sha256:{planned.manifest_digest.hex}"
    if ctx.json:
        print_json({"jobs": jobs, "background": True, "oci_manifest": manifest})
    elif jobs:
        print(f"downloading {len(jobs)} files in the background; see `webmodels jobs`")
    else:
        print("every file is already stored")
    return 0


def cmd_push(args: argparse.Namespace, ctx: CliContext) -> int:
    client = _client(args.reference)
    try:
        with Store.open(ctx.config) as store:
            layers, annotations = _layers(store, args.model)
            pushed = push(store, client, layers, annotations=annotations)
    finally:
        client.close()
    digest = f"sha256:{pushed.manifest_digest.hex}"
    if ctx.json:
        print_json(
            {
                "result": "pushed",
                "reference": str(client.reference),
                "digest": digest,
                "layers": len(pushed.layers),
                "uploaded": pushed.uploaded,
            }
        )
    else:
        print(
            f"pushed {client.reference} ({len(pushed.layers)} files, "
            f"{pushed.uploaded} uploaded): {digest}"
        )
    return 0


def _layers(store: Store, text: str) -> tuple[list[Layer], dict[str, str]]:
    """A model manifest (by name or full SHA-256), else one stored file."""
    from webmodels.cli.store_cmd import resolve

    by_name = find_manifest(store.index, text)
    hex_text = text.lower().removeprefix("sha256:")
    manifest = (
        load_manifest(store.index, by_name or Digest(hex_text))
        if by_name or _is_hex64(hex_text)
        else None
    )
    if manifest is not None:
        title = {"org.opencontainers.image.title": text} if by_name else {}
        return layers_of_manifest(manifest), title
    record = resolve(store, text)
    annotations = {}
    if record.name:
        annotations["org.opencontainers.image.title"] = record.name
    if record.version:
        annotations["org.opencontainers.image.version"] = record.version
    return layers_of_model(record), annotations


def _is_hex64(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)
