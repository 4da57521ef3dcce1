"""A MicroSIP simulator following the facts file: for our tests and for trying integrations.

* :mod:`.folder` creates a portable MicroSIP folder (microsip.ini as MicroSIP writes it, and
  Contacts.xml);
* :mod:`.simulator` is the simulated MicroSIP (:class:`Simulator`): its life cycle, schedule and
  events, in rooms by job: :mod:`.calls` runs the calls' state machine and the remote parties,
  firing the cmd* hooks in MicroSIP's orders, run as MSIP::RunCmd does (:mod:`.runcmd`),
  measuring how long each blocks; :mod:`.settings` holds what it read from the ini;
  :mod:`.history` writes [Calls] and [Dialed]; :mod:`.dispatch` acts on commands;
  :mod:`.records` holds the records they share (a call, a fired event, a command);
* :mod:`.channel` takes MicroSIP command strings over a loopback stand-in for WM_COPYDATA;
* :mod:`.scenario` plays timed calls from TOML or JSON files; :mod:`.clock` runs them in real,
  sped-up or virtual time; :mod:`.runner` is the session behind ``microsip-bridge sim``.
"""

from __future__ import annotations

from microsip_bridge.sim.calls import HangupBy, RemoteAction, RemoteBehaviour
from microsip_bridge.sim.channel import CommandChannel, request_close, send_command
from microsip_bridge.sim.clock import RealClock, SimClock, VirtualClock
from microsip_bridge.sim.folder import SimFolder, create_folder, open_folder
from microsip_bridge.sim.records import FiredEvent, SimCall, SimulatorError
from microsip_bridge.sim.runcmd import HookRun
from microsip_bridge.sim.scenario import Scenario, Step, load_scenario, run_scenario
from microsip_bridge.sim.simulator import Simulator

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
