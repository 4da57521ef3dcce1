"""`python -m microsip_bridge` runs the command-line interface."""

from microsip_bridge.entry import main

main()
