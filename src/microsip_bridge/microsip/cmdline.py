"""Windows command-line splitting and quoting, and how MicroSIP runs a cmd* hook (facts §2.3)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from microsip_bridge.errors import CommandError
from microsip_bridge.microsip.crt import WHITESPACE, truncate_utf16
from microsip_bridge.microsip.inifile import profile_value

# The only separators CommandLineToArgvW knows. (The C runtime's parser agrees; newline, CR and
# the other Unicode spaces are ordinary characters to both.)
ARG_SEPARATORS = " \t"
# GetPrivateProfileString fills a caller's buffer; MicroSIP passes 256 TCHARs for the cmd* keys,
# so at most 255 UTF-16 code units are read and the rest is silently dropped (facts §2.1).
PROFILE_BUFFER_CHARS = 256
MAX_PROFILE_VALUE_CHARS = PROFILE_BUFFER_CHARS - 1


# --- CommandLineToArgvW --------------------------------------------------------------------------
#
# Source of truth: Wine's implementation (dlls/shcore/main.c, CommandLineToArgvW, moved there from
# shell32 in 2019), which was written to match Windows' shell32 including its undocumented parts,
# and Chris Wellons' cmdline.c (public domain), fuzzed against the real function. Both agree on:
#
# * argv[0], the program, has its own rules: if it starts with a quote it runs to the next quote,
#   whatever is in between (no backslash processing, and the next argument may start right after
#   the closing quote); otherwise it runs to the first space or tab. A quote inside an unquoted
#   argv[0] is an ordinary character.
# * For the other arguments (Microsoft's "Parsing C++ command-line arguments"): 2n backslashes
#   before a quote give n backslashes and a quote that opens or closes a quoted part; 2n+1 give n
#   backslashes and a literal quote; backslashes not before a quote are literal.
# * Two quotes in a row inside a quoted part: shell32 keeps the *pre-2008* C runtime rule: the
#   second quote is a literal quote AND the quoted part ends (msvcrt since VS 2008 stays inside the
#   quoted part instead). So ``"a ""b"" c"`` splits into ``a "b`` and ``c``, which is what real
#   Windows prints (observed by the 89z/autumn "Talk: command line arguments" notes, comparing
#   CommandLineToArgvW with msvcr100's argv). Wine states it as: counting the opening quote,
#   3n quotes give n quotes, 3n+1 give n and close, 3n+2 give n+1 and close.
# * An empty command line gives the path of the calling executable; we take that as a parameter.
#
# One reported difference we do not follow: a wiki of the winbox-args project says that an
# unquoted argv[0] also ends at control characters (U+0001..U+001F). Wine and Wellons end it at
# space and tab only; we follow them. Nothing the bridge writes contains control characters.


@dataclass(frozen=True, slots=True)
class SplitResult:
    """What CommandLineToArgvW returns, plus whether a quoted part was left open at the end."""

    argv: list[str]
    unterminated_quote: bool


def split_command_line(cmdline: str, *, exe_path: str = "") -> SplitResult:
    """Split like CommandLineToArgvW, and say whether a quote was left open (a likely typo)."""
    if not cmdline:
        return SplitResult([exe_path], False)
    n = len(cmdline)
    # argv[0]
    if cmdline[0] == '"':
        end = cmdline.find('"', 1)
        if end < 0:
            return SplitResult([cmdline[1:]], True)
        argv = [cmdline[1:end]]
        i = end + 1
    else:
        i = 0
        while i < n and cmdline[i] not in ARG_SEPARATORS:
            i += 1
        argv = [cmdline[:i]]
    while i < n and cmdline[i] in ARG_SEPARATORS:
        i += 1
    if i >= n:
        return SplitResult(argv, False)

    current: list[str] | None = []
    qcount = 0  # 0: outside quotes, 1: inside; 2 is folded to 0 (see the 3n rule above)
    bcount = 0  # backslashes just copied, which a following quote may halve
    while i < n:
        c = cmdline[i]
        if c in ARG_SEPARATORS and qcount == 0:
            argv.append("".join(current or []))
            current = []
            bcount = 0
            while i < n and cmdline[i] in ARG_SEPARATORS:
                i += 1
            if i >= n:
                current = None
            continue
        assert current is not None
        if c == "\\":
            current.append(c)
            bcount += 1
            i += 1
            continue
        if c == '"':
            if bcount % 2 == 0:
                # 2n backslashes: keep n, and the quote toggles quoting
                del current[len(current) - bcount // 2 :]
                qcount += 1
            else:
                # 2n+1 backslashes: keep n, and the quote is literal
                del current[len(current) - bcount // 2 - 1 :]
                current.append('"')
            i += 1
            bcount = 0
            while i < n and cmdline[i] == '"':
                qcount += 1
                if qcount == 3:
                    current.append('"')
                    qcount = 0
                i += 1
            if qcount == 2:
                qcount = 0
            continue
        current.append(c)
        bcount = 0
        i += 1
    if current is not None:
        argv.append("".join(current))
    return SplitResult(argv, qcount != 0)


def command_line_to_argv(cmdline: str, *, exe_path: str = "") -> list[str]:
    """Win32 ``CommandLineToArgvW`` (shell32), in pure Python. See the notes above for the rules.

    ``exe_path`` is what Windows returns for an empty command line (the caller's own exe).
    """
    return split_command_line(cmdline, exe_path=exe_path).argv


def quote_arg(arg: str) -> str:
    """A token that CommandLineToArgvW reads back as ``arg`` when it is not the first one.

    Plain tokens are left alone; otherwise the argument is quoted, backslashes before a quote (and
    before the closing quote) are doubled and quotes are escaped with a backslash, so no two quotes
    are ever adjacent and the ``""`` rules never come into play.
    """
    if arg and not any(c in arg for c in ' \t\n\v"'):
        return arg
    out = ['"']
    backslashes = 0
    for c in arg:
        if c == "\\":
            backslashes += 1
            continue
        if c == '"':
            out.append("\\" * (2 * backslashes + 1))
            out.append('"')
        else:
            out.append("\\" * backslashes)
            out.append(c)
        backslashes = 0
    out.append("\\" * (2 * backslashes))
    out.append('"')
    return "".join(out)


def quote_program(program: str) -> str:
    """The argv[0] token for ``program``: quoted only if it holds whitespace (or is empty).

    argv[0] has no escapes at all, so a program name containing a quote cannot be written
    (Windows file names cannot contain one anyway).
    """
    if '"' in program:
        raise CommandError(f"a program path cannot contain a double quote: {program!r}")
    if not program or any(c in ARG_SEPARATORS for c in program):
        return f'"{program}"'
    return program


def join_command_line(argv: Sequence[str]) -> str:
    """The inverse of :func:`command_line_to_argv` for argv[0] without quotes."""
    if not argv:
        raise CommandError("a command line needs at least the program")
    return " ".join([quote_program(argv[0]), *(quote_arg(a) for a in argv[1:])])


# --- GetPrivateProfileString -------------------------------------------------------------------


def profile_string_as_read(raw: str, buffer_chars: int = PROFILE_BUFFER_CHARS) -> str:
    """What MicroSIP gets from GetPrivateProfileString for the text after ``=`` (facts §2.1, §2.6).

    Trimmed, one pair of surrounding quotes removed (:func:`inifile.profile_value`), then cut to
    ``buffer_chars - 1`` UTF-16 code units. Windows' order of quote removal and truncation for
    quoted values longer than the buffer is not documented; we remove the quotes first.
    """
    return truncate_utf16(profile_value(raw), buffer_chars - 1)


# --- MSIP::RunCmd --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShellExecuteCall:
    """The ``lpFile`` and ``lpParameters`` MicroSIP hands to ShellExecuteEx for a hook."""

    file: str
    parameters: str

    @property
    def child_command_line(self) -> str:
        """The command line an .exe target receives: ShellExecute quotes the file (``"%1" %*``)."""
        return f'"{self.file}" {self.parameters}'


def microsip_shell_execute(value: str, number: str) -> ShellExecuteCall | None:
    """Reproduce MSIP::RunCmd's split of a ``cmd*`` value (facts §2.3; S20 lib/MSIP.cpp).

    The value is trimmed and split with CommandLineToArgvW; argv[0] becomes the file; argv[1:] are
    joined with one space each and *no re-quoting* (then right-trimmed), and `` <number>`` is
    appended unquoted, then the whole is left-trimmed. Returns None when nothing would run: an
    empty value (MicroSIP only calls RunCmd for a non-empty key) or an empty program.
    """
    cmd = value.strip(WHITESPACE)
    if not cmd:
        return None
    argv = command_line_to_argv(cmd)
    if not argv[0]:
        return None  # ShellExecuteEx fails silently (SEE_MASK_FLAG_NO_UI)
    params = "".join(arg + " " for arg in argv[1:]).rstrip(WHITESPACE)
    params = (params + " " + number).lstrip(WHITESPACE)
    return ShellExecuteCall(argv[0], params)


def microsip_run_command(value: str, number: str) -> list[str]:
    """The argv a hook program receives when MicroSIP runs ``value`` for a call with ``number``.

    ``value`` is the key as MicroSIP holds it, i.e. :func:`profile_string_as_read` of the ini text.

    ``[]`` when nothing runs. The child's own parser is assumed to be CommandLineToArgvW; a C
    runtime child (Python is one) agrees for everything but ``""`` inside quotes, which neither
    our hook values nor SIP user parts contain.
    """
    call = microsip_shell_execute(value, number)
    if call is None:
        return []
    return command_line_to_argv(call.child_command_line)
