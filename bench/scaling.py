"""Benchmark: every reader linear in its input, and its memory bounded by the input's size.

    python bench/scaling.py [--quick] [--runs N] [--only NAME] [--big]

For each reader it builds an input of size N, 2N and 4N, runs the reader in a fresh Python process
(so each peak RSS is that run's own), and prints the median time of the runs, the ratio of each
doubling (target: at most about 2.0, i.e. linear; a quadratic reader shows ~4.0) and the peak
RSS: in MB, and what the reader added to the interpreter's own (imports done) as a multiple of
the input file's size (target: at most 4x for Contacts.xml and the ini).
The readers, on the path users take:

* ``ini``: a microsip.ini with many keys in UTF-16LE, loaded, its [Calls] history read and the
  settings ``doctor`` looks at fetched (IniDocument.load + read_history + get);
* ``contacts``: an ordinary Contacts.xml (read_contacts);
* ``contacts-quotes``: one tag holding a long run of quotes (a hostile file);
* ``contacts-json``: Contacts.xml exported as directory JSON (the whole pipeline);
* ``table``: a table with one very long cell, cut to a 120-column terminal (format_table).

``--quick`` uses small sizes and one run (the suite's smoke test); the baseline for each ratio is
the same reader on the smaller input, measured in the same run. ``--big`` then reads a 50 MB
Contacts.xml and exports it as directory JSON, and prints the peak RSS of each (target: under
250 MB in all), and of the export as ``contacts export --format directory-json -o FILE`` runs it
today (the text encoded whole before it is written).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

LINEAR_RATIO = 2.0
RSS_FACTOR = 4.0

# Each reader runs in a child: it gets the input's path and prints {"s": seconds, "rss": bytes,
# "grew": bytes}. The peak is Linux's VmHWM, reset once the imports are done (so "grew" is the
# reader's own); ru_maxrss where /proc cannot do that.
CHILD = r"""
import json, re, resource, sys, time
from pathlib import Path
from microsip_bridge.contacts.formats import WriteOptions, get_format
from microsip_bridge.microsip.contacts_xml import read_contacts
from microsip_bridge.microsip.directory import to_directory_json
from microsip_bridge.microsip.history import read_history
from microsip_bridge.microsip.inifile import IniDocument
from microsip_bridge.tables import format_table


def memory(key):
    try:
        with open("/proc/self/status") as fh:
            return int(re.search(key + r":\s+(\d+)", fh.read()).group(1)) * 1024
    except (OSError, AttributeError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


name, path = sys.argv[1], Path(sys.argv[2])
try:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # the peak so far: imports only
    before = memory("VmRSS")
except OSError:
    before = memory("VmHWM")
t = time.perf_counter()
if name == "ini":
    doc = IniDocument.load(path)
    read_history(doc)
    for key in ("callsLastKey", "cmdCallRing", "cmdCallEnd", "denyIncoming", "autoAnswer"):
        doc.get("Settings", key)
elif name in ("contacts", "contacts-quotes"):
    try:
        read_contacts(path, max_bytes=1 << 30)
    except Exception:  # a hostile file may be refused: what counts is how fast
        pass
elif name == "contacts-json":
    to_directory_json(read_contacts(path, max_bytes=1 << 30).contacts, max_bytes=None)
elif name == "export-directory-json":
    # What `contacts export --format directory-json -o FILE` does: read, build, encode, write.
    contacts = read_contacts(path, max_bytes=1 << 30).contacts
    text = get_format("directory-json").write(contacts, WriteOptions())
    path.with_suffix(".json").write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
elif name == "table":
    format_table(
        ["name", "number"], [(path.read_text(encoding="utf-8"), "1001")], max_width=80, width=120
    )
else:
    raise SystemExit(f"unknown reader {name}")
seconds = time.perf_counter() - t
after = memory("VmHWM")
print(json.dumps({"s": seconds, "rss": after, "grew": after - before}))
"""


def make_ini(path: Path, keys: int) -> None:
    lines = ["[Settings]", "callsLastKey=999", "autoAnswer=0"]
    lines += [f"setting{i}=value number {i}" for i in range(keys)]
    lines += ["[Calls]"]
    lines += [f"{k}=10{k:04d};Caller {k};{k % 4};{1700000000 + k};{k % 300};" for k in range(1000)]
    path.write_bytes(b"\xff\xfe" + ("\r\n".join(lines) + "\r\n").encode("utf-16-le"))


def make_contacts(path: Path, count: int) -> None:
    rows = [
        f'<contact name="Caller {i} &amp; Sons" number="+44 20 7946 {i:06d}" firstname="Ann" '
        f'lastname="Caller{i}" phone="" mobile="07700 {i:06d}" email="c{i}@example.com" '
        f'address="" city="" state="" zip="" comment="" id="" info="" presence="0" starred="0" '
        f'directory="0"/>'
        for i in range(count)
    ]
    text = '<?xml version="1.0"?>\r\n<contacts>\r\n' + "\r\n".join(rows) + "\r\n</contacts>\r\n"
    path.write_bytes(text.encode("utf-8"))


def make_quotes(path: Path, size: int) -> None:
    path.write_bytes(b'<?xml version="1.0"?>\n<contacts>\n<contact name="' + b'"' * size + b"/>")


def make_cell(path: Path, size: int) -> None:
    path.write_text("x" * size, encoding="utf-8")


READERS: dict[str, tuple[Callable[[Path, int], None], str, int, int, bool]] = {
    # name: (maker, file name, full size, quick size, RSS checked)
    # 4x the base stays under the ini reader's 16 MiB limit.
    "ini": (make_ini, "microsip.ini", 55_000, 5_000, True),
    "contacts": (make_contacts, "Contacts.xml", 100_000, 2_000, True),
    "contacts-quotes": (make_quotes, "Contacts.xml", 5_000_000, 50_000, True),
    "contacts-json": (make_contacts, "Contacts.xml", 100_000, 2_000, True),
    "table": (make_cell, "cell.txt", 400_000, 10_000, False),
}


# --big: an ordinary Contacts.xml of about 50 MB (make_contacts writes ~267 bytes a contact).
BIG_CONTACTS = 187_500
BIG_TARGET_MB = 250
BIG_READERS = {
    "contacts": "read_contacts",
    "contacts-json": "read_contacts + to_directory_json",
    "export-directory-json": "the same + encode + write (the CLI's export)",
}


def measure(name: str, path: Path) -> tuple[float, int, int]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, name, str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(result["s"]), int(result["rss"]), int(result["grew"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small inputs, one run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", choices=sorted(READERS), action="append")
    parser.add_argument("--big", action="store_true", help="also a 50 MB Contacts.xml (slow)")
    args = parser.parse_args(argv)
    runs = 1 if args.quick else max(args.runs, 1)
    failed = False
    print(f"median of {runs} run(s); each input at 1x, 2x and 4x its base size")
    print(
        f"{'reader':<16} {'size':>10} {'file MB':>8} {'seconds':>8} {'ratio':>6} "
        f"{'peak MB':>8} {'grew/file':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or READERS:
            maker, file_name, full, quick, rss_checked = READERS[name]
            base = quick if args.quick else full
            previous: float | None = None
            for factor in (1, 2, 4):
                size = base * factor
                path = Path(tmp) / f"{name}-{factor}" / file_name
                path.parent.mkdir()
                maker(path, size)
                samples = [measure(name, path) for _ in range(runs)]
                seconds = statistics.median(s for s, _, _ in samples)
                peak = max(r for _, r, _ in samples)
                grew = max(g for _, _, g in samples)
                file_bytes = path.stat().st_size
                ratio = "" if previous is None else f"{seconds / previous:.2f}"
                grew_x = grew / file_bytes
                print(
                    f"{name:<16} {size:>10,} {file_bytes / 1e6:>8.1f} {seconds:>8.3f} "
                    f"{ratio:>6} {peak / 1e6:>8.0f} {grew_x:>8.1f}x"
                )
                # What the reader added to the interpreter's own memory, on the largest input.
                if factor == 4 and rss_checked and not args.quick and grew_x > RSS_FACTOR:
                    failed = True
                previous = seconds
    print(
        f"targets: each doubling at most ~{LINEAR_RATIO:.1f}x the time (linear); peak RSS at "
        f"most {RSS_FACTOR:.0f}x the file for Contacts.xml and the ini (largest size)"
    )
    if args.big:
        failed = big() or failed
    return 1 if failed else 0


def big() -> bool:
    """Read and export a 50 MB Contacts.xml; True when the library's own path misses the target."""
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Contacts.xml"
        make_contacts(path, BIG_CONTACTS)
        print(f"\na {path.stat().st_size / 1e6:.1f} MB Contacts.xml ({BIG_CONTACTS:,} contacts)")
        for name, what in BIG_READERS.items():
            seconds, peak, _ = measure(name, path)
            if name == "export-directory-json":
                verdict = "the CLI holds the whole text and its bytes at once"
            else:
                met = peak / 1e6 < BIG_TARGET_MB
                failed = failed or not met
                verdict = f"target under {BIG_TARGET_MB} MB: {'met' if met else 'MISSED'}"
            print(f"  {what:<46} {seconds:6.2f} s  peak {peak / 1e6:4.0f} MB  ({verdict})")
    return failed


if __name__ == "__main__":
    sys.exit(main())
