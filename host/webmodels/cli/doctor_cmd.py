"""``webmodels doctor``: check the runtime (and, through `extra_checks`, the rest).

Exit status 0 when no check failed (warnings allowed), 1 otherwise.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from webmodels.catalogs import keeper
from webmodels.cli.main import CliContext
from webmodels.cli.output import human_bytes, print_json
from webmodels.config import Config
from webmodels.doctor import Check, CheckFn, doctor_ok, run_doctor
from webmodels.permissions import loose
from webmodels.registration import check_registrations
from webmodels.store import Store
from webmodels.store.health import store_health
from webmodels.store.preinstalled_index import configured_problems, removed_labels

_MARKS = {"ok": "[ok]  ", "warn": "[warn]", "fail": "[FAIL]"}


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "doctor",
        help="check that ONNX Runtime, the browser registration and the store work",
        description="Check this installation; print what is wrong and how to fix it.",
    )
    # SUPPRESS: `webmodels --json doctor` must stay JSON (a default here would reset it).
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts"
    )
    parser.add_argument(
        "--probe-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long the execution-provider probe may take (default 60)",
    )
    parser.set_defaults(func=run_command)


def extra_checks(config: Config) -> list[CheckFn]:
    """Checks beyond the runtime ones, in report order."""
    return [
        functools.partial(check_registration, config),
        functools.partial(check_permissions, config),  # before the store check opens it
        functools.partial(check_store, config),
        functools.partial(check_catalogs, config),
        functools.partial(check_preinstalled, config),
        functools.partial(check_settings, config),
        functools.partial(check_mirrors, config),
    ]


def check_mirrors(config: Config) -> Check:
    """The mirrors downloads try first, where that setting came from, and whether each
    answers now (a down mirror only costs time: the origin URLs are tried next)."""
    source = config.sources.get("mirrors", "default")
    if not config.mirrors:
        return Check("mirrors", "ok", "no mirrors: downloads use their own URLs")
    from webmodels.fetch.mirrors import probe_mirrors

    probes = probe_mirrors(config.mirrors)
    details = {
        "source": source,
        "mirrors": [
            {"mirror": p.mirror, "url": p.url, "answers": p.answers, "detail": p.detail}
            for p in probes
        ],
    }
    shown = ", ".join(f"{p.mirror} ({p.detail})" for p in probes)
    summary = f"{len(probes)} mirror(s) from {source}: {shown}"
    down = [p.mirror for p in probes if not p.answers]
    if down:
        where = "ask your administrator" if source.startswith("policy") else "fix or remove it"
        fix = f"{', '.join(down)} did not answer: downloads fall back to their URLs; {where}"
        return Check("mirrors", "warn", summary, fix=fix, details=details)
    return Check("mirrors", "ok", summary, details=details)


def check_settings(config: Config) -> Check:
    """Where each setting comes from: an administrator's policy (locked or as a default),
    the command line, the environment, the user's config file or the built-in default."""
    from webmodels.cli.share_cmd import SETTINGS, effective_setting

    found = dict(config.sources)
    with Store.open(config) as store:
        found.update({key: effective_setting(store, key, config)[1] for key in SETTINGS})
    shown = [f"{key}: {source}" for key, source in found.items() if source != "default"]
    policy = config.policy
    details = {
        "sources": found,
        "policy_file": str(policy.path) if policy.path else None,
        "policy_source": policy.source,
        "policy_kind": policy.kind,
    }
    summary = "; ".join(shown) if shown else "every setting has its default"
    if policy.source is not None:
        summary = f"policy {policy.source} ({policy.kind}); {summary}"
    return Check("settings", "ok", summary, details=details)


def check_registration(config: Config) -> Check:
    statuses = check_registrations(config)
    broken = [s for s in statuses if s.installed and s.problems]
    good = [s.browser for s in statuses if s.ok]
    details = {"browsers": [s.to_json() for s in statuses]}
    if broken:
        problems = "; ".join(f"{s.browser}: {', '.join(s.problems)}" for s in broken)
        return Check(
            "registration", "fail", problems, fix="run `webmodels install`", details=details
        )
    if not good:
        return Check(
            "registration",
            "warn",
            "the host is not registered with any browser",
            fix="run `webmodels install` (or `--browser NAME`)",
            details=details,
        )
    return Check("registration", "ok", "registered for " + ", ".join(good), details=details)


def check_permissions(config: Config) -> Check:
    """The store, its index and the logs say which sites the user visited: no other
    local account may read them (PRIVACY.md, hole 7)."""
    found = loose(config)
    if found:
        shown = ", ".join(str(p) for p in found[:3]) + (", ..." if len(found) > 3 else "")
        return Check(
            "permissions",
            "warn",
            f"{len(found)} of the host's files or folders can be read by other users: {shown}",
            fix=f"run `chmod go-rwx {config.home} && chmod -R go-rwx {config.store_dir} "
            f"{config.log_dir}` (the host also does this when it starts)",
            details={"loose": [str(p) for p in found]},
        )
    return Check("permissions", "ok", "the store and the logs are readable by you alone")


def check_store(config: Config) -> Check:
    with Store.open(config) as store:
        health = store_health(store)
    if health.problems:
        return Check(
            "store",
            "fail",
            "; ".join(health.problems),
            fix=f"move {health.path} aside and re-import your models",
            details=health.to_json(),
        )
    summary = f"{health.models} model(s) at {health.path}, {human_bytes(health.free_bytes)} free"
    if health.warnings:
        return Check(
            "store",
            "warn",
            summary + "; " + "; ".join(health.warnings),
            fix="run `webmodels verify` and `webmodels gc`",
            details=health.to_json(),
        )
    return Check("store", "ok", summary, details=health.to_json())


def check_catalogs(config: Config) -> Check:
    """The catalogs names resolve through: an expired one no longer counts."""
    with Store.open(config) as store:
        found = keeper.installed(store.index)
    now = datetime.now(UTC)
    details = {"catalogs": [{**i.catalog.summary(now), "source": i.source} for i in found]}
    if not found:
        summary = "no catalogs: names resolve through pre-installed models only"
        return Check("catalogs", "ok", summary, details=details)
    expired = [i.catalog for i in found if i.catalog.expired(now)]
    names = ", ".join(f"{i.catalog.name} v{i.catalog.version}" for i in found)
    if expired:
        gone = ", ".join(f"{c.name} (expired {c.summary(now)['expires']})" for c in expired)
        return Check(
            "catalogs",
            "warn",
            f"{gone}: its names no longer resolve",
            fix="run `webmodels update` (or `webmodels catalog add` a newer one)",
            details=details,
        )
    return Check("catalogs", "ok", f"{len(found)} catalog(s): {names}", details=details)


def check_preinstalled(config: Config) -> Check:
    """Pre-installed folders: one the user named that is missing, or a models.json entry
    that is skipped or whose file has another hash, would otherwise go unnoticed."""
    with Store.open(config) as store:
        found = configured_problems(store, config)
        count = len(store.index.query("SELECT path FROM preinstalled WHERE state = 'ok'"))
        removed = removed_labels(store)
    details = {
        "folders": [str(d) for d in config.preinstalled_dirs],
        "problems": found,
        "labels_removed": removed,
    }
    cleaned = _cleaned_words(removed)
    if found:
        return Check(
            "preinstalled",
            "warn",
            "; ".join(found) + cleaned,
            fix="correct the folder's models.json, or stop naming the folder "
            "(--preinstalled, WEBMODELS_PREINSTALLED, `preinstalled` in the config file)",
            details=details,
        )
    summary = f"{count} pre-installed file(s) in use{cleaned}"
    return Check("preinstalled", "ok", summary, details=details)


def _cleaned_words(removed: list[dict[str, str | None]]) -> str:
    """What the upgrade cleaned, in words: labels an older release had left behind."""
    if not removed:
        return ""
    shown = ", ".join(
        " ".join(filter(None, (r["name"], r["version"], f"({(r['sha256'] or '')[:12]})")))
        for r in removed[:5]
    )
    more = f" and {len(removed) - 5} more" if len(removed) > 5 else ""
    return (
        f"; removed {len(removed)} label(s) an older release had copied from pre-installed "
        f"folders no longer configured: {shown}{more}"
    )


def run_command(args: argparse.Namespace, ctx: CliContext) -> int:
    checks = run_doctor(
        ctx.config, extra_checks(ctx.config), probe_timeout_s=float(args.probe_timeout)
    )
    ok = doctor_ok(checks)
    if ctx.json:
        print_json({"ok": ok, "checks": [c.to_json() for c in checks]})
    else:
        sys.stdout.write(format_report(checks))
    return 0 if ok else 1


def format_report(checks: Sequence[Check]) -> str:
    """One line per check, then how to fix each one that is not ok."""
    width = max((len(c.name) for c in checks), default=0)
    lines = [f"{_MARKS[c.status]} {c.name.ljust(width)}  {c.summary}" for c in checks]
    fixes = [c for c in checks if c.status != "ok" and c.fix]
    if fixes:
        lines += ["", "To fix:"]
        lines += [f"  {c.name}: {c.fix}" for c in fixes]
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    lines += ["", _verdict(failed, warned)]
    return "\n".join(lines) + "\n"


def _verdict(failed: int, warned: int) -> str:
    if failed:
        return f"{failed} check(s) failed, {warned} warning(s)."
    return f"All checks passed, {warned} warning(s)." if warned else "All checks passed."
