"""The popup's own controls from the command line: ``share``/``unshare`` a model with a
site and ``settings`` (the privacy mode). They make the same store changes, with the
same checks, as the ``manage.share`` and ``manage.settings.*`` methods the popup calls."""

from __future__ import annotations

import argparse
from typing import Any

from webmodels import managed
from webmodels.cli.main import CliContext
from webmodels.cli.output import print_json, print_kv
from webmodels.commons.gate import PRIVACY_MODES
from webmodels.config import Config
from webmodels.context import Origin
from webmodels.errors import HostError
from webmodels.store import Store
from webmodels.store.records import ModelRecord

# Each setting the popup offers, with the values it takes and its default.
SETTINGS: dict[str, tuple[frozenset[str], str]] = {"privacy_mode": (PRIVACY_MODES, "strict")}


def register(sub: Any) -> None:
    for name, shared, text in (
        ("share", True, "let every page under SITE see a model (as the popup's Share…)"),
        ("unshare", False, "take back what share gave a site"),
    ):
        p = sub.add_parser(name, help=text, description=text)
        p.add_argument("model", metavar="SHA|NAME", help="SHA-256 (or 6+ hex digits) or name")
        p.add_argument("site", metavar="SITE", help="the site, e.g. https://example.com")
        p.set_defaults(func=cmd_share, shared=shared)
    text = "show or change the settings the popup offers (privacy_mode: strict|relaxed)"
    p = sub.add_parser("settings", help=text, description=text)
    p.add_argument("action", nargs="?", choices=("get", "set"), default="get")
    p.add_argument("key", nargs="?", metavar="KEY")
    p.add_argument("value", nargs="?", metavar="VALUE")
    p.set_defaults(func=cmd_settings)


def parse_site(text: str) -> Origin:
    """An origin as pages have it; ``example.com`` alone means ``https://example.com``."""
    return Origin.parse(text if "://" in text else f"https://{text}", field="SITE")


def find_model(store: Store, text: str) -> ModelRecord:
    """A SHA-256 (or a unique prefix), else a name (``pub/model`` or ``pub/model@VERSION``)
    as `webmodels ls` shows it."""
    from webmodels.cli.store_cmd import catalog_labels, resolve

    if "/" not in text:
        return resolve(store, text)
    name, _, version = text.partition("@")
    labels = catalog_labels(store)
    matches = []
    for record in store.list_models():
        label = labels.get(record.digest, ("", ""))
        shown = (record.name or label[0], record.version or label[1])
        if shown[0] == name and version in ("", shown[1]):
            matches.append(record)
    if not matches:
        raise HostError("not_found", f"no stored model named {text!r} (see `webmodels ls`)")
    if len(matches) > 1:
        raise HostError(
            "bad_request", f"{len(matches)} stored models are named {text!r}; give a SHA-256"
        )
    return matches[0]


def cmd_share(args: argparse.Namespace, ctx: CliContext) -> int:
    site = parse_site(args.site)
    with Store.open(ctx.config) as store:
        record = store.share(find_model(store, args.model).digest, str(site), args.shared)
    if ctx.json:
        print_json({"model": record.manage_info()})
    else:
        done = "shared" if args.shared else "stopped sharing"
        print(f"{done} {record.digest.hex} with {site}")
        print(f"shared with: {', '.join(record.shared_with) or 'no site'}")
    return 0


def cmd_settings(args: argparse.Namespace, ctx: CliContext) -> int:
    with Store.open(ctx.config) as store:
        if args.action == "set":
            _set(store, args.key, args.value, ctx.config)
        elif args.value is not None:
            raise HostError("bad_request", "settings get takes one KEY at most")
        found = {key: effective_setting(store, key, ctx.config) for key in SETTINGS}
    if args.key is not None:
        _check_key(args.key)
        found = {args.key: found[args.key]}
    values = {key: value for key, (value, _) in found.items()}
    if ctx.json:
        print_json({**values, "sources": {key: source for key, (_, source) in found.items()}})
    elif args.action == "get" and args.key is not None:
        print(values[args.key])
    else:
        print_kv({key: f"{value} ({source})" for key, (value, source) in found.items()})
    return 0


def effective_setting(store: Store, key: str, config: Config) -> tuple[str, str]:
    """A setting's value in force and where it comes from: a locked policy, else the
    user's choice (popup or `settings set`), else the config file, policy or default."""
    default = str(getattr(config, key, SETTINGS[key][1]))
    if key in config.policy.locked:
        return default, managed.LOCKED
    chosen = store.setting(key, "")
    if chosen:
        return chosen, managed.SETTING
    return default, config.sources.get(key, managed.DEFAULT)


def _check_key(key: str) -> tuple[frozenset[str], str]:
    if key not in SETTINGS:
        raise HostError("bad_request", f"unknown setting {key!r}; settings: {', '.join(SETTINGS)}")
    return SETTINGS[key]


def _set(store: Store, key: str | None, value: str | None, config: Config) -> None:
    if key is None or value is None:
        raise HostError("bad_request", "usage: webmodels settings set KEY VALUE")
    allowed, _ = _check_key(key)
    config.policy.check_unlocked(key)
    if value not in allowed:
        raise HostError(
            "bad_request", f"{key} must be one of {', '.join(sorted(allowed))}, not {value!r}"
        )
    store.set_setting(key, value)
