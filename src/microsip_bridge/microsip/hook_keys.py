"""Install, check and remove the eight cmd* hooks by which MicroSIP reports calls (facts §2)."""

from __future__ import annotations

import datetime as dt
import enum
import json
import ntpath
import os
import re
import shutil
import sys
import sysconfig
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from microsip_bridge.errors import BridgeError, FileFormatError, NotFoundError, UnsafeInputError
from microsip_bridge.fileio import atomic_write
from microsip_bridge.microsip.cmdline import (
    MAX_PROFILE_VALUE_CHARS,
    microsip_run_command,
    profile_string_as_read,
    split_command_line,
)
from microsip_bridge.microsip.crt import WHITESPACE, utf16_len
from microsip_bridge.microsip.inifile import IniDocument, profile_value
from microsip_bridge.model import Event
from microsip_bridge.wire import INLINE_CODE, bridge_home

SECTION = "Settings"
# Event -> ini key, in the order MicroSIP's settings.cpp reads them (facts §2.1). cmdCallAnswerVideo
# exists only in 3.22; older versions never read it, so writing it is harmless.
HOOK_KEYS: dict[Event, str] = {
    Event.OUTGOING: "cmdOutgoingCall",
    Event.INCOMING: "cmdIncomingCall",
    Event.RING: "cmdCallRing",
    Event.ANSWER: "cmdCallAnswer",
    Event.ANSWER_VIDEO: "cmdCallAnswerVideo",
    Event.START: "cmdCallStart",
    Event.BUSY: "cmdCallBusy",
    Event.END: "cmdCallEnd",
}
HOOK_PROGRAM = "microsip-bridge-hook"
# The fast form: `"<pythonw.exe>" -I -c<INLINE_CODE> EVENT` starts the hook without pip's
# console-script wrapper (which imports `re`, and on Windows starts a second process), about
# 40% less of MicroSIP's time per event (bench/hook.py). INLINE_CODE has no blank and no double
# quote, so it survives RunCmd's split and unquoted re-join (facts §2.3).
INLINE_ARG = "-c" + INLINE_CODE
# -I (isolated: no PYTHON* variables, no user site, no current folder on sys.path) suits a venv or
# pipx install; -E (no PYTHON* variables) a `pip install --user`, whose user site -I would hide.
FAST_FLAGS = ("-I", "-E")
_PYTHON = re.compile(r"pythonw?(?:\d+(?:\.\d+)?)?(?:\.exe)?")
SAVED_HOOKS_NAME = "saved-hooks.json"
SAVED_HOOKS_VERSION = 1
MAX_SAVED_HOOKS_BYTES = 4 * 1024 * 1024
MAX_HOOK_VALUE_CHARS = MAX_PROFILE_VALUE_CHARS

# Targets that ShellExecute hands to an interpreter instead of starting them: the number MicroSIP
# appends comes from the caller's SIP URI and may hold '&' and the like, so a batch file is a
# command-injection hole (facts §2.3 5); the others are scripts, shortcuts or documents.
SCRIPT_EXTENSIONS = frozenset(
    {
        ".bat",
        ".cmd",
        ".btm",
        ".ps1",
        ".psm1",
        ".vbs",
        ".vbe",
        ".js",
        ".jse",
        ".wsf",
        ".wsh",
        ".hta",
        ".lnk",
        ".url",
        ".pif",
        ".scr",
        ".msc",
    }
)
# Shells and script hosts: they would interpret the arguments MicroSIP appends.
SHELL_NAMES = frozenset(
    {"cmd", "command", "powershell", "powershell_ise", "pwsh", "wscript", "cscript", "mshta"}
    | {"bash", "sh", "wsl", "conhost"}
)
_WINDOWS_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:[\\/]|[\\/]{2}[^\\/])")


# --- the values ----------------------------------------------------------------------------------


def _as_text(program: str | PurePath) -> str:
    if isinstance(program, PurePath):
        return str(program)
    if isinstance(program, str):
        return program
    raise BridgeError(f"a hook program must be a path, not {type(program).__name__}")


def _script_problem(program: str) -> str | None:
    """Why ``program`` would run through a shell or script host, or None."""
    name = ntpath.basename(program).casefold()
    stem, ext = ntpath.splitext(name)
    if ext in SCRIPT_EXTENSIONS:
        return (
            f"{ext} files are not started but interpreted, and MicroSIP appends the caller's "
            "number (which may hold '&', '|' ...) to the command: a command-injection risk"
        )
    if (ext in (".exe", ".com") and stem in SHELL_NAMES) or name in SHELL_NAMES:
        return (
            f"{ntpath.basename(program)} is a shell or script host: it would interpret the "
            "caller's number that MicroSIP appends"
        )
    return None


def check_hook_program(program: str | PurePath) -> str:
    """Refuse a program MicroSIP cannot run safely or reliably as a hook; returns it as text."""
    text = _as_text(program)
    if not text:
        raise BridgeError("the hook program path is empty")
    for c in text:
        if unicodedata.category(c) in ("Cc", "Cs"):
            raise UnsafeInputError(f"the hook program path contains U+{ord(c):04X}: {text!r}")
    if '"' in text:
        raise BridgeError(f"a program path cannot contain a double quote: {text!r}")
    if text != text.strip(WHITESPACE):
        raise BridgeError(f"the hook program path starts or ends with whitespace: {text!r}")
    if not (_WINDOWS_ABSOLUTE.match(text) or text.startswith("/")):
        # MicroSIP runs hooks without a working directory (facts §2.3 3): a relative path would
        # depend on MicroSIP's current directory.
        raise BridgeError(f"the hook program must be an absolute path, not {text!r}")
    problem = _script_problem(text)
    if problem:
        raise UnsafeInputError(f"refusing {text!r} as a hook: {problem}")
    return text


def is_python(program: str | PurePath) -> bool:
    """Whether ``program`` is a Python interpreter (python.exe, pythonw.exe, python3.12...)."""
    return _PYTHON.fullmatch(ntpath.basename(_as_text(program)).casefold()) is not None


def hook_value(program: str | PurePath, event: Event, *, flag: str = "-I") -> str:
    """The ``cmd*`` value that makes MicroSIP run our hook for ``event`` (facts §2.3, §2.6):
    ``program event`` for the microsip-bridge-hook program, or, when ``program`` is a Python
    interpreter, the fast form ``program flag -c<INLINE_CODE> event``.

    Only the program may be quoted, and only when it holds whitespace; the event argument after it
    means the value never starts *and* ends with a quote, which GetPrivateProfileString would strip.
    At most 255 characters, because MicroSIP reads these keys into a 256-character buffer.
    """
    text = check_hook_program(program)
    event = Event(event)
    token = f'"{text}"' if any(c in " \t" for c in text) else text
    if is_python(text):
        if flag not in FAST_FLAGS:
            raise BridgeError(f"the interpreter flag must be one of {', '.join(FAST_FLAGS)}")
        args = [flag, INLINE_ARG, event.value]
    else:
        args = [event.value]
    value = " ".join([token, *args])
    length = utf16_len(value)
    if length > MAX_HOOK_VALUE_CHARS:
        raise BridgeError(
            f"the {HOOK_KEYS[event]} command would be {length} characters but MicroSIP reads "
            f"only {MAX_HOOK_VALUE_CHARS}, so it would run a cut-off path. Install "
            "microsip-bridge under a shorter path (e.g. pipx with PIPX_HOME=C:\\pipx and "
            "PIPX_BIN_DIR=C:\\pipx\\bin), or give the program's 8.3 short path (dir /x shows it)",
            where=text,
        )
    # Self-check through MicroSIP's own machinery: read back, split, run.
    seen = microsip_run_command(profile_string_as_read(value), "1")
    if seen != [text, *args, "1"]:
        raise BridgeError(f"MicroSIP would run {seen!r} for the hook value {value!r}", where=text)
    return value


def fast_hook_program(*, platform: str | None = None) -> tuple[Path, str]:
    """The interpreter and flag for the fast form: this Python (pythonw.exe on Windows, which
    opens no console window), with -E when the package lives in the user site, else -I."""
    import site

    exe = Path(sys.executable)
    if (platform or sys.platform) == "win32":
        windowless = exe.with_name("pythonw.exe")
        if windowless.is_file():
            exe = windowless
    package = Path(__file__).resolve()
    user_site = Path(site.getusersitepackages()).resolve()
    flag = "-E" if user_site in package.parents else "-I"
    return exe.absolute(), flag


def default_hook_program(
    override: str | PurePath | None = None, *, platform: str | None = None
) -> Path:
    """Where ``microsip-bridge-hook`` is: ``override`` if given, else the copy installed with this
    Python (its scripts folder, next to ``sys.executable``, the user scheme's), else the PATH.

    Raises NotFoundError when there is none.
    """
    if override is not None:
        return Path(override)
    windows = (platform or sys.platform) == "win32"
    name = HOOK_PROGRAM + (".exe" if windows else "")
    folders: list[Path] = []
    for scheme in (sysconfig.get_default_scheme(), f"{os.name}_user"):
        try:
            scripts = sysconfig.get_path("scripts", scheme)
        except KeyError:
            continue
        if scripts:
            folders.append(Path(scripts))
    exe_dir = Path(sys.executable).parent
    folders += [exe_dir, exe_dir / ("Scripts" if windows else "bin")]
    for folder in folders:
        candidate = folder / name
        if candidate.is_file():
            return candidate.absolute()
    found = shutil.which(HOOK_PROGRAM)
    if found:
        return Path(found).absolute()
    raise NotFoundError(
        f"cannot find {name}: it is installed with microsip-bridge (pip or pipx install "
        "microsip-bridge); pass its path explicitly if it lives elsewhere",
        where=", ".join(str(f) for f in folders),
    )


# --- status --------------------------------------------------------------------------------------


class HookState(enum.Enum):
    """What a ``cmd*`` key holds, as far as the bridge is concerned."""

    OURS = "ours"  # runs our hook program with this key's event
    OURS_ELSEWHERE = "ours, another install"  # our hook, but at another path than expected
    FOREIGN = "foreign"  # someone else's working command
    MISSING = "missing"  # absent or empty: MicroSIP runs nothing
    DAMAGED = "damaged"  # would not run as written (see the reason)


@dataclass(frozen=True, slots=True)
class HookStatus:
    """One key's state. ``argv`` is what the program receives before the appended number."""

    event: Event
    key: str
    state: HookState
    raw: str | None  # the text after "=", trimmed, quotes kept; None: the key is absent
    value: str | None  # what MicroSIP reads: quotes removed, cut at 255 characters
    argv: tuple[str, ...]
    reason: str
    mine: bool  # the value is a form of our hook (even a damaged one)

    @property
    def ok(self) -> bool:
        return self.state is HookState.OURS


def _same_path(a: str, b: str) -> bool:
    """Windows compares paths case-insensitively and takes / for \\."""
    return ntpath.normcase(ntpath.normpath(a)) == ntpath.normcase(ntpath.normpath(b))


def _is_hook_program(prog: str, program: str | None) -> bool:
    if not prog:
        return False
    if program is not None and _same_path(prog, program):
        return True
    return ntpath.basename(prog).casefold() in (HOOK_PROGRAM, HOOK_PROGRAM + ".exe")


def _names_hook(argv0: str, program: str | None) -> bool:
    """Whether ``argv0``, or a part of it ending before a blank (an unclosed quote swallows the
    arguments into argv[0]), is our hook program."""
    cuts = [len(argv0)] + [i for i, ch in enumerate(argv0) if ch in " \t"]
    return any(_is_hook_program(argv0[:i], program) for i in cuts)


def classify_hook(
    event: Event, raw: str | None, program: str | PurePath | None = None
) -> HookStatus:
    """The state of a ``cmd*`` value; ``program`` is our hook's expected path (None: any)."""
    event = Event(event)
    key = HOOK_KEYS[event]
    expected = _as_text(program) if program is not None else None

    def status(
        state: HookState,
        reason: str,
        *,
        value: str | None = None,
        argv: Iterable[str] = (),
        mine: bool = False,
    ) -> HookStatus:
        return HookStatus(event, key, state, raw, value, tuple(argv), reason, mine)

    if raw is None:
        return status(HookState.MISSING, "the key is absent: MicroSIP runs nothing")
    value = profile_string_as_read(raw)
    if not value.strip(WHITESPACE):
        return status(HookState.MISSING, "empty: MicroSIP runs nothing", value=value)
    full = profile_value(raw)
    argv = microsip_run_command(value, "")
    full_argv = microsip_run_command(full, "")
    prog = full_argv[0] if full_argv else ""
    stored = raw.strip(" \t")
    # Ours if MicroSIP would run our program, or if the text as written names it (a value wrapped
    # in quotes loses them when read, and then splits differently).
    as_written = split_command_line(stored).argv[0] if stored else ""
    fast = is_python(prog) and INLINE_ARG in full_argv[1:]
    exact = fast or _is_hook_program(prog, expected)
    mine = exact or _names_hook(prog, expected) or _names_hook(as_written, expected)

    def damaged(reason: str) -> HookStatus:
        return status(HookState.DAMAGED, reason, value=value, argv=argv, mine=mine)

    length = utf16_len(full)
    if length > MAX_HOOK_VALUE_CHARS:
        return damaged(
            f"{length} characters: MicroSIP reads only the first {MAX_HOOK_VALUE_CHARS} "
            f"of a command, so it would run {argv!r}"
        )
    if len(stored) >= 2 and stored[0] == stored[-1] and stored[0] in "\"'":
        return damaged(
            "the whole value is in quotes, which Windows removes when MicroSIP reads it, "
            f"so MicroSIP would run {argv!r}"
        )
    if split_command_line(full.strip(WHITESPACE)).unterminated_quote:
        return damaged(f"a quote is never closed, so MicroSIP would run {argv!r}")
    if not argv:
        return damaged("there is no program to run")
    problem = _script_problem(prog)
    if problem:
        return damaged(f"runs {prog}: {problem}")
    if mine and not exact:
        return damaged(f"names our hook, but MicroSIP would run {prog}")
    if mine:
        args = tuple(full_argv[1:])
        wanted = [(f, INLINE_ARG, event.value) for f in FAST_FLAGS] if fast else [(event.value,)]
        if args not in wanted:
            return damaged(
                f"our hook, but with the arguments {list(args)!r} instead of {list(wanted[0])!r}"
            )
        if expected is not None and not _same_path(prog, expected):
            return status(
                HookState.OURS_ELSEWHERE,
                f"our hook from another install: {prog} (this one is {expected})",
                value=value,
                argv=argv,
                mine=True,
            )
        return status(
            HookState.OURS, f"runs {prog} {event.value}", value=value, argv=argv, mine=True
        )
    return status(HookState.FOREIGN, f"runs {prog}", value=value, argv=argv)


def hooks_status(
    doc: IniDocument, program: str | PurePath | None = None, events: Iterable[Event] | None = None
) -> list[HookStatus]:
    """The state of every ``cmd*`` key (or of ``events``), in MicroSIP's order."""
    wanted = _events(events)
    return [classify_hook(e, doc.get_raw(SECTION, HOOK_KEYS[e]), program) for e in wanted]


def _events(events: Iterable[Event] | None) -> list[Event]:
    if events is None:
        return list(HOOK_KEYS)
    chosen = {Event(e) for e in events}
    return [e for e in HOOK_KEYS if e in chosen]


# --- the store of users' own commands ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SavedValue:
    """What a key held before the bridge took it over. ``value`` None: the key was absent."""

    value: str | None
    saved_at: str
    superseded: tuple[str | None, ...] = ()  # older originals the user replaced in between


class SavedHooks:
    """The users' own ``cmd*`` commands that installing replaced, kept until uninstall restores
    them: a small JSON file in the bridge's home, keyed by the resolved ini path."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else bridge_home() / SAVED_HOOKS_NAME

    @staticmethod
    def ini_key(ini: str | PurePath) -> str:
        # normcase: on Windows one file has many spellings (case, slashes).
        return os.path.normcase(str(Path(ini).resolve()))

    def load(self) -> dict[str, dict[str, SavedValue]]:
        """Every ini's saved values; {} when the file does not exist."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise BridgeError(f"cannot read: {exc.strerror or exc}", path=self.path) from exc
        if size > MAX_SAVED_HOOKS_BYTES:
            raise UnsafeInputError(
                f"is {size:,} bytes, far more than saved hook commands take", path=self.path
            )
        try:
            data = json.loads(self.path.read_bytes().decode("utf-8"))
        except OSError as exc:
            raise BridgeError(f"cannot read: {exc.strerror or exc}", path=self.path) from exc
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FileFormatError(f"not valid JSON: {exc}", path=self.path) from exc
        return self._parse(data)

    def _parse(self, data: object) -> dict[str, dict[str, SavedValue]]:
        def bad(what: str, where: str | None = None) -> FileFormatError:
            return FileFormatError(what, path=self.path, where=where)

        if not isinstance(data, dict) or not isinstance(data.get("inis"), dict):
            raise bad("expected an object with an 'inis' object")
        if data.get("version") != SAVED_HOOKS_VERSION:
            raise bad(f"version {data.get('version')!r}: this bridge reads {SAVED_HOOKS_VERSION}")
        out: dict[str, dict[str, SavedValue]] = {}
        for ini, entries in data["inis"].items():
            if not isinstance(entries, dict):
                raise bad("expected an object of keys", where=ini)
            parsed: dict[str, SavedValue] = {}
            for key, entry in entries.items():
                where = f"{ini} {key}"
                if not isinstance(entry, dict):
                    raise bad("expected an object", where=where)
                value = entry.get("value")
                saved_at = entry.get("saved_at", "")
                superseded = entry.get("superseded", [])
                if value is not None and not isinstance(value, str):
                    raise bad("'value' must be text or null", where=where)
                if not isinstance(saved_at, str) or not isinstance(superseded, list):
                    raise bad("'saved_at' must be text and 'superseded' a list", where=where)
                if not all(v is None or isinstance(v, str) for v in superseded):
                    raise bad("'superseded' must hold text or null", where=where)
                parsed[key] = SavedValue(value, saved_at, tuple(superseded))
            out[ini] = parsed
        return out

    def entries(self, ini: str | PurePath) -> dict[str, SavedValue]:
        return self.load().get(self.ini_key(ini), {})

    def update(self, ini: str | PurePath, changes: Mapping[str, SavedValue | None]) -> None:
        """Set (None: drop) entries of one ini; re-reads the file first and writes atomically."""
        everything = self.load()
        ini_key = self.ini_key(ini)
        entries = everything.setdefault(ini_key, {})
        for key, entry in changes.items():
            if entry is None:
                entries.pop(key, None)
            else:
                entries[key] = entry
        if not entries:
            del everything[ini_key]
        document = {
            "version": SAVED_HOOKS_VERSION,
            "inis": {
                ini_name: {
                    key: {
                        "value": entry.value,
                        "saved_at": entry.saved_at,
                        "superseded": list(entry.superseded),
                    }
                    for key, entry in sorted(entries_of_ini.items())
                }
                for ini_name, entries_of_ini in sorted(everything.items())
            },
        }
        data = (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BridgeError(
                f"cannot create the folder: {exc.strerror or exc}", path=self.path
            ) from exc
        atomic_write(self.path, data)


# --- install and uninstall -----------------------------------------------------------------------


class HookAction(enum.StrEnum):
    KEEP = "keep"  # already our hook: nothing to do
    INSTALL = "install"  # was empty, absent or someone else's (saved first)
    UPDATE = "update"  # our hook from another install, or a damaged one of ours
    RESTORE = "restore"  # uninstall: the saved original is put back
    DELETE = "delete"  # uninstall: the key was absent before we added it
    CLEAR = "clear"  # uninstall: ours, nothing saved: emptied ("cmdX=" means no hook)
    LEAVE = "leave"  # uninstall: not ours, left as it is


@dataclass(frozen=True, slots=True)
class HookChange:
    """One key in a plan: its text after ``=`` before and after (None: no such key)."""

    event: Event
    key: str
    action: HookAction
    old: str | None
    new: str | None
    note: str = ""

    @property
    def changes_ini(self) -> bool:
        return self.old != self.new


@dataclass
class HookPlan:
    """What install or uninstall did to an IniDocument in memory, and will do to the store.

    The order that loses nothing: :meth:`save_first` keeps the users' own commands that the ini
    change is about to overwrite (install), *before* the ini is written; then the caller saves the
    ini; then :meth:`commit` forgets the saved commands that the ini change put back (uninstall).
    A failure or a kill at any point leaves every user's command in the ini, in the store, or in
    both, never in neither.
    """

    ini: str
    changes: list[HookChange]
    store: SavedHooks
    store_updates: dict[str, SavedValue | None] = field(default_factory=dict)
    committed: bool = False
    saved_first: bool = False

    @property
    def changes_ini(self) -> bool:
        return any(c.changes_ini for c in self.changes)

    def save_first(self) -> None:
        """Persist the commands to keep (idempotent); call it before writing the ini. Raises
        BridgeError when the store cannot be written: then the ini must not be written either."""
        keep = {k: v for k, v in self.store_updates.items() if v is not None}
        if not self.saved_first and keep:
            self.store.update(self.ini, keep)
        self.saved_first = True

    def commit(self) -> None:
        """After the ini is written: forget the commands it put back (idempotent; also runs
        :meth:`save_first` if the caller did not)."""
        self.save_first()
        drop: dict[str, SavedValue | None] = {
            k: None for k, v in self.store_updates.items() if v is None
        }
        if not self.committed and drop:
            self.store.update(self.ini, drop)
        self.committed = True


def _ini_key(doc: IniDocument, ini: str | PurePath | None) -> str:
    path = ini if ini is not None else doc.path
    if path is None:
        raise BridgeError("the ini has no path: saved hook commands are kept per ini file")
    return SavedHooks.ini_key(path)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def install_hooks(
    doc: IniDocument,
    program: str | PurePath,
    saved: SavedHooks,
    events: Iterable[Event] | None = None,
    *,
    ini: str | PurePath | None = None,
    flag: str = "-I",
) -> HookPlan:
    """Point the ``cmd*`` keys at ``program`` in ``doc`` (in memory) and return the plan
    (``flag``: the interpreter flag of the fast form, see :func:`hook_value`).

    Someone else's command, and an empty or absent key, is recorded in the plan's store updates
    before it is overwritten; our own hook never is. Installing twice changes nothing. ``ini``
    names the file for the store when ``doc`` has no path. Then: ``plan.save_first()``,
    ``doc.save()``, ``plan.commit()``.
    """
    text = check_hook_program(program)
    wanted = _events(events)
    values = {e: hook_value(text, e, flag=flag) for e in wanted}  # fails before any change
    ini_key = _ini_key(doc, ini)
    existing = saved.entries(ini_key)
    plan = HookPlan(ini_key, [], saved)
    for event in wanted:
        key = HOOK_KEYS[event]
        st = classify_hook(event, doc.get_raw(SECTION, key), text)
        new = values[event]
        if st.state is HookState.OURS:
            plan.changes.append(HookChange(event, key, HookAction.KEEP, st.raw, st.raw, st.reason))
            continue
        if st.mine:
            action, note = HookAction.UPDATE, st.reason
        else:
            action, note = HookAction.INSTALL, st.reason
            previous = existing.get(key)
            if previous is None:
                plan.store_updates[key] = SavedValue(st.raw, _now())
            elif previous.value != st.raw:
                # The key was changed since an earlier install: the newer command wins, the
                # older one is kept in the file.
                plan.store_updates[key] = SavedValue(
                    st.raw, _now(), (*previous.superseded, previous.value)
                )
            if st.raw:
                note = f"{st.reason}; saved for uninstall"
        doc.set(SECTION, key, new)
        plan.changes.append(HookChange(event, key, action, st.raw, new, note))
    return plan


def uninstall_hooks(
    doc: IniDocument,
    saved: SavedHooks,
    events: Iterable[Event] | None = None,
    *,
    ini: str | PurePath | None = None,
    program: str | PurePath | None = None,
) -> HookPlan:
    """Remove our hooks from ``doc`` (in memory), putting back what install saved.

    A key that held nothing gets ``cmdX=`` back (or disappears if it was absent), so a file that
    came with empty keys is restored byte for byte. Keys holding someone else's command are left
    alone. Then: ``plan.save_first()``, ``doc.save()``, ``plan.commit()``.
    """
    wanted = _events(events)
    ini_key = _ini_key(doc, ini)
    existing = saved.entries(ini_key)
    plan = HookPlan(ini_key, [], saved)
    for event in wanted:
        key = HOOK_KEYS[event]
        st = classify_hook(event, doc.get_raw(SECTION, key), program)
        previous = existing.get(key)
        if st.mine:
            if previous is None:
                doc.set(SECTION, key, "")
                change = HookChange(event, key, HookAction.CLEAR, st.raw, "", "nothing was saved")
            elif previous.value is None:
                doc.delete(SECTION, key)
                change = HookChange(event, key, HookAction.DELETE, st.raw, None, "was absent")
            else:
                doc.set(SECTION, key, previous.value)
                change = HookChange(
                    event, key, HookAction.RESTORE, st.raw, previous.value, "saved at install"
                )
            plan.store_updates[key] = None
            plan.changes.append(change)
            continue
        note = st.reason
        if previous is not None:
            if previous.value == st.raw:
                plan.store_updates[key] = None  # the original is already in place
            else:
                note += (
                    f"; the command saved at install ({previous.value!r}) stays in "
                    f"{saved.path.name}"
                )
        plan.changes.append(HookChange(event, key, HookAction.LEAVE, st.raw, st.raw, note))
    return plan
