"""``manage.*``: the user's own controls (popup, CLI). Trusted callers only."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from webmodels import STORE_LAYOUT
from webmodels.catalogs import keeper
from webmodels.catalogs.remote import read_source, source_label
from webmodels.commons.status import statuses
from webmodels.context import Origin
from webmodels.dispatch import Call, Dispatcher
from webmodels.manifests import job_sets
from webmodels.methods import forms
from webmodels.paging import PageRequest, fill, search_text
from webmodels.store.listing import Order, Scan, scan

if TYPE_CHECKING:
    from webmodels.app import Host


def register(dispatcher: Dispatcher, host: Host) -> None:
    store = host.store

    def list_models(call: Call) -> Mapping[str, Any]:
        request = PageRequest.parse(call.params, kind="manage.list", shape=(str, str, str))
        what = Scan(Order.LABEL, query=search_text(call.params))
        entries = scan(store.index, what, request.after)
        items, cursor = fill(entries, request, kind="manage.list", render=forms.manage_render(host))
        return {"models": items, "next_cursor": cursor}

    def delete(call: Call) -> Mapping[str, Any]:
        digest = call.params.digest()
        freed = store.delete(digest, force=call.params.boolean("force", default=False))
        return {"sha256": digest.hex, "freed_bytes": freed}

    def pin(call: Call) -> Mapping[str, Any]:
        record = store.pin(call.params.digest(), call.params.boolean("pinned", default=True))
        return {"model": record.manage_info()}

    def stats(call: Call) -> Mapping[str, Any]:
        return {
            **store.stats().to_json(),
            "store_path": str(store.root),
            "store_layout": STORE_LAYOUT,
        }

    def clear_site(call: Call) -> Mapping[str, Any]:
        top_site = Origin.parse(call.params.string("top_site"), field="params.top_site")
        # What this host holds for it in memory first: its sessions, its downloads, its
        # uploads in progress and the session outputs kept for it.
        host.sessions.release_site(str(top_site))
        cancel_downloads(host, str(top_site))
        host.uploads.forget_site(str(top_site))
        host.outputs.forget_site(str(top_site))
        dropped, freed = store.clear_site(str(top_site))
        return {"top_site": str(top_site), "references_dropped": dropped, "freed_bytes": freed}

    def share(call: Call) -> Mapping[str, Any]:
        top_site = Origin.parse(call.params.string("top_site"), field="params.top_site")
        shared = call.params.boolean("shared", default=True)
        record = store.share(call.params.digest(), str(top_site), shared)
        return {"model": record.manage_info()}

    def settings_get(call: Call) -> Mapping[str, Any]:
        reply: dict[str, Any] = {"privacy_mode": "relaxed" if host.commons.relaxed() else "strict"}
        if "privacy_mode" in host.config.policy.locked:
            # The popup says "set by your administrator" and offers no change.
            reply["managed"] = ["privacy_mode"]
        return reply

    def settings_set(call: Call) -> Mapping[str, Any]:
        if "privacy_mode" in call.params.raw:
            host.commons.set_mode(call.params.string("privacy_mode", max_length=16))
        return settings_get(call)

    def jobs(call: Call) -> Mapping[str, Any]:
        request = PageRequest.parse(call.params, kind="manage.jobs", shape=(float, str))
        entries = host.jobs.job_page(before=request.after, count=request.limit + 1)
        items, cursor = fill(entries, request, kind="manage.jobs", render=lambda job: job)
        # A file of a model of several files names its model (the popup groups them).
        return {"jobs": job_sets.tag(store, items), "next_cursor": cursor}

    def catalogs_list(call: Call) -> Mapping[str, Any]:
        request = PageRequest.parse(call.params, kind="manage.catalogs", shape=(str,))
        now = datetime.now(UTC)
        found = keeper.installed(store.index)  # by name; a handful, each parsed anyway
        entries = [((i.catalog.name,), i) for i in found]
        after = [e for e in entries if request.after is None or e[0] > request.after]
        items, cursor = fill(
            after,
            request,
            kind="manage.catalogs",
            render=lambda i: {**i.catalog.summary(now), "source": i.source},
        )
        return {"catalogs": items, "next_cursor": cursor}

    def catalogs_add(call: Call) -> Mapping[str, Any]:
        """Trust a catalog at a URL (or file) with its key: the popup's "Add"."""
        source = call.params.string("source", max_length=2048)
        key = call.params.string("key", max_length=128)
        catalog, changed = keeper.add(
            store.index, read_source(source), key=key, source=source_label(source)
        )
        return {"catalog": catalog.summary(datetime.now(UTC)), "changed": changed}

    def catalogs_remove(call: Call) -> Mapping[str, Any]:
        return {"removed": keeper.remove(store.index, call.params.string("name", max_length=64))}

    def commons_lists(call: Call) -> Mapping[str, Any]:
        """The commons lists, one per key: which are in force, and why not."""
        request = PageRequest.parse(call.params, kind="manage.commons", shape=(str,))
        found = statuses(store.index, host.commons.trust, now=datetime.now(UTC))
        # A handful (one per key): sorted here, each is parsed and checked anyway.
        entries = sorted((((s.listed.key_id,), s) for s in found), key=lambda e: e[0])
        after = [e for e in entries if request.after is None or e[0] > request.after]
        items, cursor = fill(after, request, kind="manage.commons", render=lambda s: s.to_json())
        return {"lists": items, "next_cursor": cursor}

    dispatcher.add("manage.commons.list", commons_lists, trusted_only=True)
    dispatcher.add("manage.catalogs.list", catalogs_list, trusted_only=True)
    dispatcher.add("manage.catalogs.add", catalogs_add, trusted_only=True)
    dispatcher.add("manage.catalogs.remove", catalogs_remove, trusted_only=True)
    dispatcher.add("manage.list", list_models, trusted_only=True)
    dispatcher.add("manage.jobs", jobs, trusted_only=True)
    dispatcher.add("manage.clear_site", clear_site, trusted_only=True)
    dispatcher.add("manage.share", share, trusted_only=True)
    dispatcher.add("manage.settings.get", settings_get, trusted_only=True)
    dispatcher.add("manage.settings.set", settings_set, trusted_only=True)
    dispatcher.add("manage.delete", delete, trusted_only=True)
    dispatcher.add("manage.pin", pin, trusted_only=True)
    dispatcher.add("manage.stats", stats, trusted_only=True)


def cancel_downloads(host: Host, top_site: str) -> int:
    """Cancel this host's requests of downloads made for the site's partitions (the
    rows of other host processes' requests go with `Store.clear_site`)."""
    prefix, mine = f"{top_site} ", f"{host.jobs.owner}/"
    rows = host.store.index.query(
        "SELECT w.waiter, w.partition FROM job_waiters w JOIN jobs j ON j.id = w.job_id "
        "WHERE j.state = 'active' AND substr(w.partition, 1, ?) = ?",
        (len(prefix), prefix),
    )
    waiters = [(r["waiter"], r["partition"]) for r in rows if r["waiter"].startswith(mine)]
    return sum(host.jobs.cancel(w[len(mine) :], partition=p) for w, p in waiters)
