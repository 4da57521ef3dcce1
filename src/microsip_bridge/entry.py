"""The `microsip-bridge` program's entry point: the daemon's stop signals are caught first."""

from __future__ import annotations

import sys


def main() -> None:
    """Run the CLI. For `serve`, Ctrl-C and SIGTERM are caught before click and the web stack
    are imported, so a signal during the daemon's start-up stops it cleanly (exit 0)."""
    if "serve" in sys.argv[1:]:
        from microsip_bridge.server.lifecycle import catch_stop_signals

        catch_stop_signals()
    from microsip_bridge.cli import main as cli_main

    cli_main()
