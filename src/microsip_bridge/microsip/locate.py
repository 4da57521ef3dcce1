"""Find microsip.ini and Contacts.xml the way MicroSIP itself does (installed vs portable)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

from microsip_bridge.errors import NotFoundError

# MicroSIP's rules (facts §3.1; S22 settings.cpp AccountSettings::Init, S20/S19 alike):
#
# * ini name = exe base name + ".ini"; Contacts.xml keeps its name whatever the exe is called;
# * installed mode when the exe's folder equals the install path read from the default value of
#   HKCU\Software\MicroSIP, else HKLM\Software\MicroSIP, else the InstallLocation of an MSI product
#   named "MicroSIP". Then the ini and Contacts.xml live in %APPDATA%\MicroSIP\ and the log in
#   %LOCALAPPDATA%\MicroSIP\;
# * portable mode in every other case: everything sits beside the exe.
#
# We skip the MSI lookup: it means enumerating every Windows Installer product through msi.dll,
# and the registry value is what the official (NSIS) installer writes. A copy installed from an
# MSI that left no registry value is therefore reported as portable; `--ini` fixes that.

Mode = Literal["installed", "portable", "explicit"]
Hive = Literal["HKCU", "HKLM"]

APP_FOLDER = "MicroSIP"  # _GLOBAL_NAME(_NICE): the %APPDATA% folder and the registry key name
REGISTRY_KEY = r"Software\MicroSIP"
CONTACTS_NAME = "Contacts.xml"
DEFAULT_EXE = "microsip.exe"
DEFAULT_INI = "microsip.ini"
ENV_INI = "MICROSIP_INI"
SEARCH_ADVICE = "pass --microsip FOLDER, --ini PATH or set MICROSIP_INI"

# Programs that sit in a MicroSIP folder but are not MicroSIP (the NSIS uninstaller).
_NOT_MICROSIP = ("uninstall", "uninst", "unins")


class RegistryReader(Protocol):
    """Reads the default (unnamed) string value of a registry key; None when absent."""

    def default_value(self, hive: Hive, key: str) -> str | None:
        """The key's default value as MicroSIP's ``QueryStringValue(NULL, ...)`` sees it."""
        ...


class DictRegistryReader:
    """A registry made of a dict: ``{r"HKCU\\Software\\MicroSIP": r"C:\\Program Files\\MicroSIP"}``.

    Key names compare case-insensitively, as the registry's do. For tests and for machines without
    a registry.
    """

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = {k.lower(): v for k, v in (values or {}).items()}

    def default_value(self, hive: Hive, key: str) -> str | None:
        return self._values.get(f"{hive}\\{key}".lower())


class InstallPath(NamedTuple):
    """The install folder as stored in the registry (verbatim), and the key it came from."""

    path: str
    source: str


@dataclass(frozen=True, kw_only=True)
class MicroSIPLocation:
    """Where one MicroSIP keeps its files.

    ``folder`` is the folder holding the ini and Contacts.xml (beside the exe when portable,
    %APPDATA%\\MicroSIP when installed). The files need not exist: MicroSIP creates the ini at its
    first start and Contacts.xml when a contact is first saved. ``found_by`` says in a few words how
    this was decided (for ``doctor``); ``notes`` carry anything else worth telling the user.
    """

    ini: Path
    contacts: Path
    folder: Path
    mode: Mode
    found_by: str
    exe: Path | None = None
    log: Path | None = None
    notes: tuple[str, ...] = ()


def ini_name_for_exe(exe: str | os.PathLike[str]) -> str:
    """``microsip.exe`` -> ``microsip.ini``; a renamed exe renames its ini (facts §3.1).

    MicroSIP cuts the file name at its last dot (``my.phone.exe`` -> ``my.phone.ini``). Both kinds
    of slash count as separators so a Windows path given as text works on any OS. A name without a
    dot is kept whole (MicroSIP would give ``.ini``, but such an exe cannot be started by name).
    """
    text = os.fspath(exe)
    name = text.replace("\\", "/").rsplit("/", 1)[-1]
    if not name:
        raise NotFoundError("no exe file name given", where=repr(text))
    base = name.rpartition(".")[0] if "." in name else name
    return f"{base}.ini"


def log_name_for_exe(exe: str | os.PathLike[str]) -> str:
    """``microsip.exe`` -> ``microsip_log.txt`` (facts §3.1)."""
    return ini_name_for_exe(exe)[: -len(".ini")] + "_log.txt"


def find_in_folder(folder: Path, name: str) -> Path:
    """``folder/name``, matching the name case-insensitively as Windows does.

    When no entry matches, the path MicroSIP would create (``folder/name``) is returned, so a case
    mismatch never invents a second file on a case-sensitive file system.
    """
    exact = folder / name
    if exact.exists():
        return exact
    wanted = name.lower()
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.lower() == wanted:
                    return folder / entry.name
    except OSError:
        pass
    return exact


def read_install_path(registry: RegistryReader | None) -> InstallPath | None:
    """The install folder MicroSIP reads: HKCU's default value, else HKLM's (facts §3.1)."""
    if registry is None:
        return None
    for hive in ("HKCU", "HKLM"):
        value = registry.default_value(hive, REGISTRY_KEY)
        # MicroSIP falls through to HKLM when HKCU's value is missing *or empty*.
        if value:
            return InstallPath(value, f"{hive}\\{REGISTRY_KEY}")
    return None


def _absolute(path: str | os.PathLike[str]) -> Path:
    """An absolute, ``..``-free path without resolving links, like GetModuleFileName gives."""
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def _win_lower(text: str) -> str:
    """Case-fold text character by character, like CompareNoCase (casefold maps ß to ss)."""
    return text.lower()


def is_install_folder(exe_folder: str | os.PathLike[str], install_path: str) -> bool:
    """Whether MicroSIP in ``exe_folder`` runs in installed mode.

    MicroSIP compares the registry string with the exe folder with ``CompareNoCase``: no
    normalisation of the registry value, so a value with a trailing backslash makes even the
    installed copy portable, and we say the same. Only our side, which may be typed by a user, is
    normalised as GetModuleFileName would give it.
    """
    if not install_path:
        return False
    return _win_lower(install_path) == _win_lower(str(_absolute(exe_folder)))


def same_path(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name the same file, with Windows' case-insensitivity."""
    pa, pb = _absolute(a), _absolute(b)
    if _win_lower(str(pa)).replace("\\", "/") == _win_lower(str(pb)).replace("\\", "/"):
        return True
    try:
        return pa.exists() and pb.exists() and os.path.samefile(pa, pb)
    except OSError:
        return False


def _is_program(name: str) -> bool:
    lower = name.lower()
    return lower.endswith(".exe") and not lower.startswith(_NOT_MICROSIP)


def _programs(folder: Path) -> list[Path]:
    """The .exe files in a folder that could be MicroSIP, sorted by name."""
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if _is_program(e.name) and e.is_file()]
    except OSError:
        return []
    return [folder / n for n in sorted(names, key=str.lower)]


def locate_from_exe(
    exe: str | os.PathLike[str],
    *,
    install_path: str | os.PathLike[str] | None,
    appdata: str | os.PathLike[str] | None,
    localappdata: str | os.PathLike[str] | None = None,
) -> MicroSIPLocation:
    """Where the MicroSIP at ``exe`` keeps its files, by MicroSIP's own rule (facts §3.1).

    ``install_path`` is the registry's install folder, verbatim (see :func:`read_install_path`);
    ``appdata``/``localappdata`` are %APPDATA% and %LOCALAPPDATA%. Nothing is created or moved.
    """
    exe_path = _absolute(exe)
    exe_folder = exe_path.parent
    ini_name = ini_name_for_exe(exe_path)
    log_name = log_name_for_exe(exe_path)
    install = os.fspath(install_path) if install_path is not None else ""

    if install and is_install_folder(exe_folder, install):
        if appdata is None:
            raise NotFoundError(
                "MicroSIP is installed here, so its ini is in %APPDATA%\\MicroSIP, "
                "but APPDATA is not set",
                path=exe_path,
            )
        folder = _absolute(appdata) / APP_FOLDER
        ini = find_in_folder(folder, ini_name)
        contacts = find_in_folder(folder, CONTACTS_NAME)
        local = _absolute(localappdata) / APP_FOLDER if localappdata is not None else None
        notes: list[str] = []
        beside = find_in_folder(exe_folder, ini_name)
        if beside.is_file():
            notes.append(f"{beside} is not used: this copy is installed, so MicroSIP reads {ini}")
        if local is not None:
            # S22 moves these from the Local to the Roaming folder at its next start when the
            # Roaming copy is missing (facts §3.1). We only report it: moving is MicroSIP's job.
            for name, target in ((ini_name, ini), (CONTACTS_NAME, contacts)):
                old = find_in_folder(local, name)
                if not target.exists() and old.is_file():
                    notes.append(
                        f"{old} is from an older MicroSIP; MicroSIP 3.22 moves it to {target} "
                        "at its next start"
                    )
        return MicroSIPLocation(
            ini=ini,
            contacts=contacts,
            folder=folder,
            mode="installed",
            found_by=f"installed: {exe_folder} is the install path in the registry",
            exe=exe_path,
            log=find_in_folder(local, log_name) if local is not None else None,
            notes=tuple(notes),
        )

    if install:
        why = f"{exe_folder} is not the install path {install}"
    else:
        why = "no install path in the registry (MSI installs are not checked)"
    return MicroSIPLocation(
        ini=find_in_folder(exe_folder, ini_name),
        contacts=find_in_folder(exe_folder, CONTACTS_NAME),
        folder=exe_folder,
        mode="portable",
        found_by=f"portable: {why}",
        exe=exe_path,
        log=find_in_folder(exe_folder, log_name),
    )


def locate_from_folder(
    folder: str | os.PathLike[str],
    *,
    install_path: str | os.PathLike[str] | None = None,
    appdata: str | os.PathLike[str] | None = None,
    localappdata: str | os.PathLike[str] | None = None,
) -> MicroSIPLocation:
    """The MicroSIP in a folder: a portable or installed program folder, or a data folder.

    In order:

    1. a program whose ini sits beside it (``Softphone.exe`` + ``Softphone.ini``; names compared
       case-insensitively) -> that program, by :func:`locate_from_exe`;
    2. ``microsip.exe`` -> that program (a portable copy that has not run yet, or an installed one);
    3. a single other program that is installed here or has its ini beside it;
    4. no program: a data folder such as %APPDATA%\\MicroSIP holding ``microsip.ini``, or a single
       ``*.ini`` (the data of a renamed, installed exe);

    otherwise :class:`NotFoundError` says what the folder holds.
    """
    where = _absolute(folder)
    if not where.is_dir():
        raise NotFoundError("no such folder", path=where)
    install = os.fspath(install_path) if install_path is not None else None

    def from_exe(exe: Path) -> MicroSIPLocation:
        return locate_from_exe(
            exe, install_path=install, appdata=appdata, localappdata=localappdata
        )

    programs = _programs(where)
    with_ini = [p for p in programs if find_in_folder(where, ini_name_for_exe(p)).is_file()]
    default = [p for p in programs if p.name.lower() == DEFAULT_EXE]
    if len(with_ini) == 1:
        return from_exe(with_ini[0])
    if len(with_ini) > 1:
        if default and default[0] in with_ini:
            return from_exe(default[0])
        names = ", ".join(p.name for p in with_ini)
        raise NotFoundError(
            f"several MicroSIP programs with their own ini ({names}); pass the exe itself",
            path=where,
        )
    if default:
        return from_exe(default[0])
    if len(programs) == 1:
        # A renamed exe without an ini beside it is MicroSIP only if it is the installed copy;
        # otherwise it is as likely to be any program (a setup.exe in Downloads).
        location = from_exe(programs[0])
        if location.mode == "installed":
            return location

    if not programs:
        ini = find_in_folder(where, DEFAULT_INI)
        if not ini.is_file():
            inis = _ini_files(where)
            if len(inis) > 1:
                names = ", ".join(p.name for p in inis)
                raise NotFoundError(
                    f"no microsip.ini but several .ini files ({names}); pass --ini", path=where
                )
            ini = inis[0] if inis else ini
        if ini.is_file():
            is_appdata = appdata is not None and same_path(where, _absolute(appdata) / APP_FOLDER)
            return MicroSIPLocation(
                ini=ini,
                contacts=find_in_folder(where, CONTACTS_NAME),
                folder=where,
                mode="installed" if is_appdata else "explicit",
                found_by=(
                    f"{where} is %APPDATA%\\MicroSIP"
                    if is_appdata
                    else "a data folder: microsip.ini without a MicroSIP program"
                ),
            )
        raise NotFoundError("no MicroSIP program (.exe) and no microsip.ini here", path=where)

    names = ", ".join(p.name for p in programs)
    raise NotFoundError(
        f"no microsip.exe and no program with its own ini here (found {names}); "
        "pass the exe itself or --ini",
        path=where,
    )


def _ini_files(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if e.name.lower().endswith(".ini") and e.is_file()]
    except OSError:
        return []
    return [folder / n for n in sorted(names, key=str.lower)]


def env_value(env: Mapping[str, str], name: str) -> str | None:
    """An environment variable, matched case-insensitively as on Windows; empty means unset."""
    value = env.get(name)
    if value is None:
        wanted = name.upper()
        value = next((v for k, v in env.items() if k.upper() == wanted), None)
    return value or None


def explicit_file(path: str | os.PathLike[str], what: str, source: str) -> Path:
    """An explicit path for a file: it may not exist yet, but its folder must."""
    target = _absolute(path)
    if target.is_dir():
        raise NotFoundError(
            f"{source} names a folder, not the {what} file (use --microsip FOLDER for a folder)",
            path=target,
        )
    if not target.parent.is_dir():
        raise NotFoundError(
            f"the folder for the {what} given by {source} does not exist", path=target
        )
    return target


def _default_registry() -> RegistryReader | None:
    """The real registry on Windows; None elsewhere."""
    registry: RegistryReader | None = None
    if sys.platform == "win32":
        from microsip_bridge.microsip._win32 import WinRegistryReader

        registry = WinRegistryReader()
    return registry


def locate(
    microsip: str | os.PathLike[str] | None = None,
    ini: str | os.PathLike[str] | None = None,
    contacts: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] = os.environ,
    registry: RegistryReader | None = None,
    configured: str | os.PathLike[str] | None = None,
) -> MicroSIPLocation:
    """Find the MicroSIP files to work on.

    Precedence, most explicit first: ``ini`` (``--ini``; Contacts.xml defaults to the one beside
    it), then ``microsip`` (``--microsip``, an exe or a folder), then the ``MICROSIP_INI``
    environment variable, then ``configured`` (the ``microsip`` setting of config.toml, an exe or
    a folder), then a search of the usual places (:func:`search`). An explicit ``contacts``
    overrides whatever was found. ``found_by`` says which one was used.

    The search needs a registry: on Windows the real one is used when ``registry`` is None;
    elsewhere, with nothing given, :class:`NotFoundError` says what to pass. Every failure is a
    :class:`NotFoundError` naming what was tried.
    """
    location: MicroSIPLocation
    env_ini = env_value(env, ENV_INI)
    if ini is not None:
        location = _located_ini(ini, "--ini", microsip)
    elif microsip is not None:
        location = _locate_given(_absolute(microsip), env, registry, "--microsip")
    elif env_ini is not None:
        location = _located_ini(env_ini, f"the {ENV_INI} environment variable", None)
    elif configured:
        location = _locate_given(
            _absolute(configured), env, registry, "the microsip setting in config.toml"
        )
    else:
        registry = registry if registry is not None else _default_registry()
        if registry is None:
            raise NotFoundError(
                "cannot search for MicroSIP on this system (the search reads the Windows "
                f"registry); {SEARCH_ADVICE}"
            )
        location = search(env, registry)

    if contacts is not None:
        contacts_path = explicit_file(contacts, "Contacts.xml", "--contacts")
        location = replace(
            location,
            contacts=contacts_path,
            found_by=f"{location.found_by}; Contacts.xml given by --contacts",
        )
    return location


def _located_ini(
    ini: str | os.PathLike[str], source: str, microsip: str | os.PathLike[str] | None
) -> MicroSIPLocation:
    ini_path = explicit_file(ini, "ini", source)
    exe: Path | None = None
    if microsip is not None and _absolute(microsip).is_file():
        exe = _absolute(microsip)
    return MicroSIPLocation(
        ini=ini_path,
        contacts=find_in_folder(ini_path.parent, CONTACTS_NAME),
        folder=ini_path.parent,
        mode="explicit",
        found_by=f"given by {source}",
        exe=exe,
    )


def _locate_given(
    target: Path, env: Mapping[str, str], registry: RegistryReader | None, source: str
) -> MicroSIPLocation:
    """``--microsip`` (or the ``microsip`` setting, as ``source`` says) names an exe or a folder."""
    registry = registry if registry is not None else _default_registry()
    install = read_install_path(registry)
    install_path = install.path if install else None
    appdata = env_value(env, "APPDATA")
    localappdata = env_value(env, "LOCALAPPDATA")
    if target.is_dir():
        location = locate_from_folder(
            target, install_path=install_path, appdata=appdata, localappdata=localappdata
        )
    elif target.is_file():
        location = locate_from_exe(
            target, install_path=install_path, appdata=appdata, localappdata=localappdata
        )
    else:
        raise NotFoundError(f"{source} names no existing exe or folder", path=target)
    return replace(location, found_by=f"{source}: {location.found_by}")


def _usual_folders(env: Mapping[str, str]) -> Iterable[tuple[str, Path | None]]:
    """Folders people unpack or install MicroSIP into, with a label for the error message."""
    for var, parts in (
        ("ProgramFiles", (APP_FOLDER,)),
        ("ProgramFiles(x86)", (APP_FOLDER,)),
        ("LOCALAPPDATA", ("Programs", APP_FOLDER)),
    ):
        base = env_value(env, var)
        label = "%" + var + "%\\" + "\\".join(parts)
        yield label, (_absolute(base).joinpath(*parts) if base else None)


def search(env: Mapping[str, str], registry: RegistryReader) -> MicroSIPLocation:
    """Look where MicroSIP usually is, in this order, and take the first with an existing ini:

    1. the install folder from the registry (facts §3.1), in installed mode;
    2. %APPDATA%\\MicroSIP (an installed copy's data, even if the registry value is gone);
    3. %ProgramFiles%\\MicroSIP, %ProgramFiles(x86)%\\MicroSIP and
       %LOCALAPPDATA%\\Programs\\MicroSIP (portable copies, or the install folder).

    When MicroSIP was found but has not created its ini yet, that location is returned with a
    note. Otherwise :class:`NotFoundError` lists every place tried.
    """
    tried: list[str] = []
    pending: MicroSIPLocation | None = None
    appdata = env_value(env, "APPDATA")
    localappdata = env_value(env, "LOCALAPPDATA")
    install = read_install_path(registry)
    install_exe: Path | None = None

    def consider(location: MicroSIPLocation) -> MicroSIPLocation | None:
        nonlocal pending
        if location.ini.is_file():
            return location
        tried.append(f"{location.ini} (missing)")
        if pending is None:
            pending = location
        return None

    if install is None:
        tried.append(f"registry HKCU and HKLM\\{REGISTRY_KEY} (no install path)")
    else:
        folder = _absolute(install.path)
        programs = _programs(folder)
        default = [p for p in programs if p.name.lower() == DEFAULT_EXE]
        candidates = default or (programs if len(programs) == 1 else [])
        if not candidates:
            tried.append(f"install path {install.path} from {install.source} (no microsip.exe)")
        else:
            install_exe = candidates[0]
            try:
                found = consider(
                    locate_from_exe(
                        install_exe,
                        install_path=install.path,
                        appdata=appdata,
                        localappdata=localappdata,
                    )
                )
            except NotFoundError as exc:
                tried.append(f"{install_exe} ({exc.message})")
            else:
                if found is not None:
                    return replace(found, found_by=f"{install.source}: {found.found_by}")

    if appdata is None:
        tried.append("%APPDATA%\\MicroSIP (APPDATA is not set)")
    else:
        data = _absolute(appdata) / APP_FOLDER
        ini = find_in_folder(data, DEFAULT_INI)
        if ini.is_file():
            return MicroSIPLocation(
                ini=ini,
                contacts=find_in_folder(data, CONTACTS_NAME),
                folder=data,
                mode="installed",
                found_by=f"{ini} exists (%APPDATA%\\MicroSIP)",
                exe=install_exe,
            )
        tried.append(f"{ini} (missing)")

    for label, candidate in _usual_folders(env):
        if candidate is None:
            tried.append(f"{label} (variable not set)")
            continue
        if not candidate.is_dir():
            tried.append(f"{candidate} (no such folder)")
            continue
        if install is not None and same_path(candidate, install.path):
            continue  # already looked at as the install folder
        try:
            location = locate_from_folder(
                candidate,
                install_path=install.path if install else None,
                appdata=appdata,
                localappdata=localappdata,
            )
        except NotFoundError as exc:
            tried.append(f"{candidate} ({exc.message})")
            continue
        found = consider(location)
        if found is not None:
            return replace(found, found_by=f"found in {label}: {found.found_by}")

    if pending is not None:
        return replace(
            pending,
            notes=(
                *pending.notes,
                f"{pending.ini} does not exist yet: MicroSIP creates it at its first start",
            ),
        )
    raise NotFoundError(f"MicroSIP's ini was not found; tried {'; '.join(tried)}; {SEARCH_ADVICE}")
