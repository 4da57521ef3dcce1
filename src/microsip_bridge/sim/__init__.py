"""A MicroSIP simulator following the facts file: for our tests and for trying integrations.

* :mod:`.folder` creates a portable MicroSIP folder (microsip.ini as MicroSIP writes it, and
  Contacts.xml);
* :mod:`.engine` simulates calls: it fires the cmd* hooks in MicroSIP's orders and runs them as
  MSIP::RunCmd does (:mod:`.runcmd`), measuring how long each blocks, and writes [Calls];
* :mod:`.channel` takes MicroSIP command strings over a loopback stand-in for WM_COPYDATA;
* :mod:`.scenario` plays timed calls from TOML or JSON files; :mod:`.clock` runs them in real,
  sped-up or virtual time; :mod:`.runner` is the session behind ``microsip-bridge sim``.
"""

from __future__ import annotations

from microsip_bridge.sim.channel import CommandChannel, request_close, send_command
from microsip_bridge.sim.clock import RealClock, SimClock, VirtualClock
from microsip_bridge.sim.engine import (
    FiredEvent,
    HangupBy,
    RemoteAction,
    RemoteBehaviour,
    SimCall,
    Simulator,
    SimulatorError,
)
from microsip_bridge.sim.folder import SimFolder, create_folder, open_folder
from microsip_bridge.sim.runcmd import HookRun
from microsip_bridge.sim.scenario import Scenario, Step, load_scenario, run_scenario

__all__ = [
    "CommandChannel",
    "FiredEvent",
    "HangupBy",
    "HookRun",
    "RealClock",
    "RemoteAction",
    "RemoteBehaviour",
    "Scenario",
    "SimCall",
    "SimClock",
    "SimFolder",
    "Simulator",
    "SimulatorError",
    "Step",
    "VirtualClock",
    "create_folder",
    "load_scenario",
    "open_folder",
    "request_close",
    "run_scenario",
    "send_command",
]
