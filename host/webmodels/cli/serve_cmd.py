"""``webmodels serve``: the native-messaging host that browsers launch."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from webmodels import __version__
from webmodels.cli.main import CliContext
from webmodels.errors import HostError
from webmodels.logs import setup_logging
from webmodels.permissions import restrict_umask, tighten
from webmodels.serve import FrameWriter, ServeOptions, Server, claim_stdio

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the native-messaging host on stdin/stdout (browsers start this)",
        description="Serve the native-messaging protocol on stdin/stdout. Browsers pass "
        "the calling extension's origin as an argument.",
    )
    parser.add_argument(
        "--trusted-stdio",
        action="store_true",
        help="treat requests without context as the trusted CLI (tests, scripts)",
    )
    parser.add_argument("caller", nargs="*", help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    caller = " ".join(args.caller) or None
    if args.trusted_stdio and caller is not None:
        # A browser passes its extension origin; such a host never trusts bare requests.
        raise HostError("access_denied", "--trusted-stdio cannot be used by a browser")
    restrict_umask()  # what the host and its workers create is the user's alone
    tightened = tighten(ctx.config)  # an install from before: PRIVACY.md, hole 7
    log_path = setup_logging(ctx.config)
    in_fd, out_fd = claim_stdio()
    log.info("host %s starting (caller=%s, log=%s)", __version__, caller, log_path)
    if tightened:
        log.info("made %d of the host's files and folders private", tightened)
    # Imported here: every other command builds the parser without the host's modules.
    from webmodels.app import build_dispatcher, build_host

    host = build_host(ctx.config, caller=caller)
    try:
        writer = FrameWriter(out_fd)
        options = ServeOptions(
            trusted_stdio=args.trusted_stdio,
            caller=caller,
            max_workers=ctx.config.max_workers,
            on_page_request=host.sessions.compiler.note_request,
        )
        return Server(build_dispatcher(host), options, writer).run(in_fd)
    except Exception:
        log.exception("host crashed")
        print("webmodels serve: internal error, see " + log_path, file=sys.stderr)
        return 1
    finally:
        host.close()
