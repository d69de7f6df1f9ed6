"""``scripts/package``: build the extension's release artifacts into ``dist/``.

* ``webmodels-VERSION.zip``: for the Chrome Web Store (which refuses a manifest ``key``).
* ``webmodels-VERSION.xpi``: for Firefox (its ID is the manifest's gecko id).
* with ``--key PEM --base-url URL``: ``webmodels-VERSION.crx`` signed with that RSA key
  and ``updates.xml``, the update manifest Chrome's ``ExtensionInstallForcelist`` policy
  points at (``ID;URL/updates.xml``). The key must live outside the repository.

The archives hold the extension's runtime files only (no tests, no type declarations),
sorted and with fixed timestamps, so a release is the same bytes wherever it is built.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from package_lib import crx3

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {"test", "types", "node_modules"}
SKIP_FILES = {"README.md", "package.json"}
ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def release_files(source: Path) -> list[Path]:
    """The files a browser loads: everything but tests, types and Node's package.json."""
    found = []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_file() and rel.parts[0] not in SKIP_DIRS and str(rel) not in SKIP_FILES:
            found.append(rel)
    return found


def chromium_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """The Web Store refuses a ``key`` (a CRX carries its key in its header); Chromium
    takes the service worker and ignores Firefox's settings."""
    background = {k: v for k, v in manifest["background"].items() if k != "scripts"}
    drop = {"key", "browser_specific_settings"}
    return {**{k: v for k, v in manifest.items() if k not in drop}, "background": background}


def firefox_manifest(manifest: dict[str, Any]) -> dict[str, Any]:
    """Firefox runs background scripts (no service worker); its ID is the gecko id.
    (No ``data_collection_permissions``: Firefox 140 added it, the manifest asks for 128.)"""
    background = {k: v for k, v in manifest["background"].items() if k != "service_worker"}
    shipped = {k: v for k, v in manifest.items() if k != "key"}
    return {**shipped, "background": background}


def read_manifest(source: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((source / "manifest.json").read_text("utf-8"))
    return manifest


def release_zip(source: Path, manifest: dict[str, Any]) -> bytes:
    """The zip of the release files, with `manifest` as manifest.json."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel in release_files(source):
            info = zipfile.ZipInfo(rel.as_posix(), ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            data = (source / rel).read_bytes()
            if rel.as_posix() == "manifest.json":
                data = (json.dumps(manifest, indent=2) + "\n").encode("utf-8")
            archive.writestr(info, data)
    return buffer.getvalue()


def update_manifest(app_id: str, version: str, codebase: str) -> str:
    """Chrome's update manifest (gupdate protocol 2.0) for a self-hosted CRX."""
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        "<gupdate xmlns='http://www.google.com/update2/response' protocol='2.0'>\n"
        f"  <app appid={quoteattr(app_id)}>\n"
        f"    <updatecheck codebase={quoteattr(codebase)} version={quoteattr(version)} />\n"
        "  </app>\n"
        "</gupdate>\n"
    )


def check_key_path(path: Path) -> Path:
    """A signing key inside the repository would end up committed: refuse it."""
    resolved = path.expanduser().resolve()
    if resolved == ROOT or ROOT in resolved.parents:
        raise SystemExit(
            f"package: refusing the key {path}: it is inside the repository; keep the "
            "signing key outside it, where a CI secret would be"
        )
    return resolved


def write_crx(args: argparse.Namespace, archive: bytes, manifest: dict[str, Any]) -> None:
    key = crx3.load_key(check_key_path(args.key).read_bytes())
    public_der = crx3.public_key_der(key)
    app_id = crx3.extension_id(public_der)
    version = str(manifest["version"])
    name = f"webmodels-{version}.crx"
    (args.out / name).write_bytes(crx3.build_crx(archive, key))
    base = args.base_url.rstrip("/")
    (args.out / "updates.xml").write_text(update_manifest(app_id, version, f"{base}/{name}"))
    print(f"{args.out / name}  (extension ID {app_id})")
    print(f"{args.out / 'updates.xml'}  (ExtensionInstallForcelist: {app_id};{base}/updates.xml)")
    manifest_key = manifest.get("key")
    if isinstance(manifest_key, str) and base64.b64decode(manifest_key) != public_der:
        print(
            "package: warning: the manifest's key is not this key's public half: an "
            "unpacked copy of the extension has another ID than this CRX",
            file=sys.stderr,
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/package", description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=ROOT / "extension", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (dist/)")
    parser.add_argument("--key", type=Path, help="RSA private key (PEM) that signs the CRX")
    parser.add_argument("--base-url", help="where updates.xml and the CRX will be served")
    args = parser.parse_args(argv)
    if (args.key is None) != (args.base_url is None):
        parser.error("--key and --base-url go together (the CRX and its update manifest)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(args.source)
    version = str(manifest["version"])
    archive = release_zip(args.source, chromium_manifest(manifest))
    for suffix, data in (
        ("zip", archive),
        ("xpi", release_zip(args.source, firefox_manifest(manifest))),
    ):
        (args.out / f"webmodels-{version}.{suffix}").write_bytes(data)
        print(args.out / f"webmodels-{version}.{suffix}")
    if args.key is not None:
        write_crx(args, archive, manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
