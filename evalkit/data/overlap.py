"""Overlap (contamination) analysis: which benchmark items a training corpus contains.

Two rules are applied to every item, both over the item's *query text*: its
``context`` (an abstract, when it has one) followed by its ``question``; the
options and the answer are left out, as Med-PaLM 2 did ("multiple-choice options
or answers were not included as part of the query"), so a copy with its options
reordered or reworded is still found.

- **Med-PaLM 2** (Singhal et al. 2023, arXiv 2305.09617, "Overlap analysis"): an
  item overlaps when the entire question, or at least 512 contiguous characters of
  it, occur in one training document. We apply it to the whole question, the whole
  context (an abstract the question is about), and 512 contiguous characters of context +
  question, measured on the item's own text (first to last character of the
  matched words); a question or context under n words is matched whole.
- **n-gram** (lm-eval's decontamination, after GPT-3 Appendix C): an item overlaps
  when any of its 13-word n-grams occurs in a training document. An item of fewer
  than 13 words has no 13-gram; lm-eval would never flag it, we take the whole item
  as its only n-gram (so it is flagged when all of it occurs), the one departure.

Both rules compare *normalized words*, lm-eval's janitor normalization: ASCII
letters lowercased, ASCII punctuation (``string.punctuation``) deleted (so
"don't" is "dont" and "(A)" is "a"), words split on whitespace (ASCII whitespace
and control characters, U+00A0, and the CJK symbols block U+3000-U+303F, which
holds the ideographic space and 、。「」). Scripts written without spaces are
split per character: every character from U+3040 to U+9FFF (kana, CJK
ideographs) is a word of its own, so 13 words there are 13 characters. Other
characters (accented letters, Cyrillic...) are kept as they are, case included.

Matching runs at C speed over numpy arrays: a chunk of corpus bytes is
normalized by ``bytes.translate``; word boundaries come from one comparison and
``flatnonzero``; each word is hashed from its length and first 8 bytes, every run
of n words by prefix sums of the word hashes; a direct-mapped filter drops nearly
every n-gram, a binary search over the benchmark's sorted hashes keeps the equal
ones, and each of those is compared word for word with the benchmark's n-gram
before it counts. Runs of consecutive matching n-grams give the longest span.

Pure: no file I/O here (``evalkit/data/corpus.py`` reads corpora).
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from evalkit.core.records import Item

DEFAULT_NGRAM = 13
MEDPALM_MIN_CHARS = 512

# ---------------------------------------------------------------------- normalization

_PUNCT_BYTES = string.punctuation.encode()


def _translate_table() -> bytes:
    table = bytearray(range(256))
    for c in range(ord("A"), ord("Z") + 1):
        table[c] = c + 32
    for c in range(0x00, 0x21):
        if c != 0x0A:
            table[c] = 0x20
    return bytes(table)


TEXT_TABLE = _translate_table()

NORMALIZATION = (
    "lm-eval janitor normalization: ASCII letters lowercased; ASCII punctuation "
    "(string.punctuation) deleted; words split on ASCII whitespace/control characters, "
    "U+00A0 and U+3000-U+303F; every character in U+3040-U+9FFF (kana, CJK ideographs) "
    "is a word of its own; other characters kept as they are; options and answers are "
    "not part of the query (context + question only)"
)


def normalize_bytes(raw: bytes, table: bytes = TEXT_TABLE) -> bytes:
    """Corpus bytes -> lowercased, punctuation deleted, whitespace as space or newline."""
    if b"\xc2\xa0" in raw:
        raw = raw.replace(b"\xc2\xa0", b"  ")
    return raw.translate(table, _PUNCT_BYTES)


_SEP_CHARS = "\\x00-\\x20\\xa0\\u3000-\\u303f"
_RUN = re.compile(f"[^{_SEP_CHARS}]+")
_PIECE = re.compile("[\u3040-\u9fff]|[^\u3040-\u9fff]+")
_WORD_TABLE = str.maketrans(string.ascii_uppercase, string.ascii_lowercase, string.punctuation)


def words_with_offsets(text: str) -> list[tuple[str, int, int]]:
    """The normalized words of TEXT with their (start, end) character offsets in TEXT.

    The same words the corpus scanner sees in the same text (tests check it).
    """
    out: list[tuple[str, int, int]] = []
    for run in _RUN.finditer(text):
        base = run.start()
        for piece in _PIECE.finditer(run.group()):
            word = piece.group().translate(_WORD_TABLE)
            if word:
                out.append((word, base + piece.start(), base + piece.end()))
    return out


def words(text: str) -> list[str]:
    """The normalized words of TEXT."""
    return [w for w, _, _ in words_with_offsets(text)]


# ---------------------------------------------------------------------- hashing

_BASE = np.uint64(0x9E3779B97F4A7C15 | 1)
_BASE_INV = np.uint64(pow(int(_BASE), -1, 1 << 64))
_POWERS: dict[str, np.ndarray] = {}


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE**i and BASE**-i (mod 2**64) for i < n, cached and grown by doubling."""
    have = _POWERS.get("pow")
    if have is None or len(have) < n:
        size = max(n, 2 * len(have) if have is not None else 1 << 16)
        with np.errstate(over="ignore"):
            for key, base in (("pow", _BASE), ("inv", _BASE_INV)):
                a = np.full(size, base, dtype=np.uint64)
                a[0] = 1
                _POWERS[key] = np.cumprod(a, dtype=np.uint64)
    return _POWERS["pow"], _POWERS["inv"]


@dataclass
class Words:
    """The words of one normalized buffer, as arrays.

    ``buf``: the buffer, padded with 8 spaces at each end; ``starts`` / ``ends``:
    each word's byte range in ``buf``; ``prefix``: prefix sums of the word hashes
    times powers of the base, so any run of words hashes in O(1).
    """

    buf: bytes
    starts: np.ndarray
    ends: np.ndarray
    prefix: np.ndarray

    @property
    def count(self) -> int:
        """Number of words."""
        return len(self.starts)

    def offset(self, k: int) -> int:
        """Word K's byte offset in the (unpadded) normalized buffer."""
        return int(self.starts[k]) - _PAD

    def span_hashes(self, length: int, first: int = 0) -> np.ndarray:
        """Hash of every run of LENGTH words starting at word FIRST or later."""
        n = self.count - length + 1
        if n <= first or length < 1:
            return np.empty(0, dtype=np.uint64)
        _, inv = _powers(self.count + 1)
        with np.errstate(over="ignore"):
            return (self.prefix[first + length:n + length] - self.prefix[first:n]) * inv[first:n]

    def span_key(self, first: int, length: int) -> bytes:
        """The exact normalized text of LENGTH words from word FIRST (for verification)."""
        st, en, buf = self.starts, self.ends, self.buf
        return b" ".join(buf[st[i]:en[i]] for i in range(first, first + length))


_PAD = 8
_MASKS = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
_K1, _K3, _K4 = (np.uint64(x) for x in (0xFF51AFD7ED558CCD, 0x9E3779B97F4A7C15, 0xD6E8FEB86659FD93))
SEGMENT_BREAK = b" \xc0 "  # between two strings of one record: a word no benchmark text has
RECORD_BREAK = b" \xc1 "  # after each record of a batch


def _word_hashes(buf: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each word from its length and its first 8 bytes.

    Words of one length that share their first 8 bytes collide; every hit is
    compared byte for byte afterwards, so a collision costs time, never a wrong answer.
    """
    u = np.ndarray(shape=(len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
    length = ends - starts
    with np.errstate(over="ignore"):
        h = u[starts] & _MASKS.take(np.minimum(length, 8))
        h *= _K1
        h += length.view(np.uint64) * _K3
        h ^= h >> np.uint64(29)
        h *= _K4
        h ^= h >> np.uint64(32)
    return h


def _cjk_words(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Word ranges in padded bytes B when CJK characters (each a word) may be present."""
    keep = b > 0x20
    at = np.flatnonzero((b[:-2] == 0xE3) & (b[1:-1] == 0x80))  # U+3000-U+303F: separators
    for d in (0, 1, 2):
        keep[at + d] = False
    kp = np.flatnonzero(keep)
    if not len(kp):
        return kp, kp
    v = b[kp]
    start = np.ones(len(kp), dtype=bool)
    np.greater(np.diff(kp), 1, out=start[1:])
    lead = (v >= 0xE3) & (v <= 0xE9)
    cont = np.zeros_like(lead)
    cont[1:] |= lead[:-1]
    cont[2:] |= lead[:-2]
    member = lead | cont
    start |= lead
    start[1:] |= member[:-1] & ~cont[1:]
    first = np.flatnonzero(start)
    last = np.append(first[1:], len(kp)) - 1
    return kp[first], kp[last] + 1


def word_arrays(norm: bytes) -> Words:
    """Split a normalized buffer (from ``normalize_bytes``) into words and hash them."""
    buf = b" " * _PAD + norm + b" " * _PAD
    b = np.frombuffer(buf, dtype=np.uint8)
    if len(norm) and b.max() >= 0xE3 and ((b >= 0xE3) & (b <= 0xE9)).any():
        starts, ends = _cjk_words(b)
    else:
        word = b > 0x20
        edge = word[1:] != word[:-1]
        both = np.flatnonzero(edge) + 1
        starts, ends = both[0::2], both[1::2]
    h = _word_hashes(buf, starts, ends)
    pw, _ = _powers(len(h) + 1)
    prefix = np.zeros(len(h) + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.cumsum(h * pw[:len(h)], out=prefix[1:])
    return Words(buf=buf, starts=starts, ends=ends, prefix=prefix)


# ---------------------------------------------------------------------- benchmark side


def query_text(item: Item) -> str:
    """What is searched for: the context (if any) and the question; never options or answer."""
    return f"{item.context}\n{item.question}" if item.context else item.question


def text_fingerprint(question: str, context: str | None = None) -> dict[str, str]:
    """The sha256 of each part of an item's query text, as an overlap file records it: ``question``,
    and ``context`` when there is one. A flag stands for this text only; a run whose item differs
    cannot use it (``overlap_split.check_overlap``). Options and answers are not part of it: they
    are not searched for either."""
    out = {"question": hashlib.sha256(question.encode("utf-8")).hexdigest()}
    if context:
        out["context"] = hashlib.sha256(context.encode("utf-8")).hexdigest()
    return out


@dataclass
class Query:
    """One benchmark item prepared for the search."""

    dataset: str
    id: str
    text: str
    offsets: list[tuple[int, int]]
    words: Words
    parts: dict[str, tuple[int, int]] = field(default_factory=dict)  # "context"/"question" -> word range

    @property
    def count(self) -> int:
        """Number of normalized words."""
        return len(self.offsets)

    def span_chars(self, first: int, length: int) -> int:
        """Characters of the item's text covered by LENGTH words from word FIRST."""
        return self.offsets[first + length - 1][1] - self.offsets[first][0]


def make_query(dataset: str, item_id: str, text: str, context_words: int = 0) -> Query:
    """Normalize TEXT into a Query (word offsets in TEXT, hashes of the normalized words).

    The first CONTEXT_WORDS words are the context, the rest the question.
    """
    wo = words_with_offsets(text)
    arrays = word_arrays(" ".join(w for w, _, _ in wo).encode())
    if arrays.count != len(wo):  # the two tokenizers disagree: a bug, never silently wrong
        raise AssertionError(f"{dataset}/{item_id}: {arrays.count} != {len(wo)} words")
    parts = {"question": (context_words, len(wo) - context_words)}
    if context_words:
        parts["context"] = (0, context_words)
    return Query(dataset, item_id, text, [(s, e) for _, s, e in wo], arrays,
                 {k: v for k, v in parts.items() if v[1] > 0})


@dataclass
class BenchmarkIndex:
    """The hashes of every benchmark n-gram (and of every whole item shorter than n)."""

    queries: list[Query]
    ngram: int
    keys: np.ndarray  # sorted unique hashes
    entries: dict[int, list[tuple[int, int, int]]]  # hash -> [(query, first word, length)]
    filter_bits: int
    filter: np.ndarray  # uint8 table indexed by the top FILTER_BITS bits of a hash
    short_lengths: tuple[int, ...]

    def candidates(self, hashes: np.ndarray) -> np.ndarray:
        """Indices into HASHES of those equal to a benchmark hash."""
        if not len(hashes) or not len(self.keys):
            return np.empty(0, dtype=np.int64)
        top = (hashes >> np.uint64(64 - self.filter_bits)).astype(np.intp)
        idx = np.flatnonzero(self.filter.take(top))
        if not len(idx):
            return idx
        h = hashes[idx]
        at = np.minimum(np.searchsorted(self.keys, h), len(self.keys) - 1)
        return idx[self.keys[at] == h]


def build_index(queries: Sequence[Query], ngram: int = DEFAULT_NGRAM) -> BenchmarkIndex:
    """Index the n-grams of QUERIES (items shorter than NGRAM words: their whole text)."""
    if ngram < 1:
        raise ValueError(f"ngram must be at least 1, got {ngram}")
    entries: dict[int, list[tuple[int, int, int]]] = {}
    shorts: set[int] = set()
    for qi, q in enumerate(queries):
        if q.count >= ngram:
            for j, h in enumerate(q.words.span_hashes(ngram).tolist()):
                entries.setdefault(h, []).append((qi, j, ngram))
        # a whole item, or a whole part of it (context, question), shorter than n words
        for first, count in {(0, q.count), *q.parts.values()}:
            if 0 < count < ngram:
                shorts.add(count)
                h = int(q.words.span_hashes(count, first)[0])
                entries.setdefault(h, []).append((qi, first, count))
    keys = np.array(sorted(entries), dtype=np.uint64)
    bits = max(16, min(26, int(len(keys) * 32).bit_length()))
    filt = np.zeros(1 << bits, dtype=np.uint8)
    if len(keys):
        filt[keys >> np.uint64(64 - bits)] = 1
    return BenchmarkIndex(list(queries), ngram, keys, entries, bits, filt, tuple(sorted(shorts)))


def index_items(items: Iterable[Item], ngram: int = DEFAULT_NGRAM) -> BenchmarkIndex:
    """Prepare benchmark ITEMS for the search (query text: context + question)."""
    queries = [make_query(it.dataset, it.id, query_text(it), len(words(it.context)) if it.context else 0)
               for it in items]
    return build_index(queries, ngram)


# ---------------------------------------------------------------------- scanning


@dataclass
class _Run:
    """A run of consecutive matching n-grams: where it started in the corpus and in the item."""

    first: int  # first word of the item
    file: str
    line: Any


@dataclass
class ItemOverlap:
    """What the corpus holds of one benchmark item."""

    dataset: str
    id: str
    words: int
    chars: int
    ngram_overlap: bool = False
    whole_question: bool = False
    whole_context: bool = False
    longest_words: int = 0
    longest_chars: int = 0
    longest_text: str = ""
    file: str | None = None
    line: Any = None
    places: int = 0

    @property
    def medpalm_overlap(self) -> bool:
        """Med-PaLM 2's rule: the whole question (or context), or at least 512 contiguous characters."""
        return self.whole_question or self.whole_context or self.longest_chars >= MEDPALM_MIN_CHARS

    def to_dict(self) -> dict[str, Any]:
        """One line of overlap.jsonl."""
        return {"dataset": self.dataset, "id": self.id, "medpalm_overlap": self.medpalm_overlap,
                "ngram_overlap": self.ngram_overlap, "whole_question": self.whole_question,
                "whole_context": self.whole_context,
                "words": self.words, "chars": self.chars, "longest_words": self.longest_words,
                "longest_chars": self.longest_chars, "longest_text": self.longest_text,
                "file": self.file, "line": self.line, "places": self.places}


class Scanner:
    """Feeds normalized corpus buffers through a BenchmarkIndex and keeps each item's best match.

    Word positions are global over everything fed, with a gap between files, so a
    run of matching n-grams continues across chunks of one file and never across files.
    """

    def __init__(self, index: BenchmarkIndex):
        self.index = index
        q = index.queries
        self.found = [ItemOverlap(x.dataset, x.id, x.count, len(x.text)) for x in q]
        self._offset = 0
        self._active: dict[tuple[int, int, int], _Run] = {}
        self._cover: dict[int, int] = {}
        self.bytes_scanned = 0

    def next_file(self) -> None:
        """Start a new file: no run continues across the boundary."""
        self._offset += self.index.ngram + 1
        self._active.clear()

    def scan(self, w: Words, file: str, locate: Callable[[int], Any], carried: int = 0) -> None:
        """Match the words W of one buffer; LOCATE(i) says where W's word i is (a line).

        CARRIED words at the start were carried over from the previous buffer of the
        same file (their n-grams that lie wholly inside them were matched there).
        """
        hits = self._hits(w, carried)
        last = self._offset + w.count - self.index.ngram
        for k, length, h in hits:
            self._match(w, k, length, h, file, locate)
        self._active = {key: r for key, r in self._active.items() if key[2] > last}

    def advance(self, words_done: int) -> None:
        """Move the global position past WORDS_DONE words (after a scan, less any carried on)."""
        self._offset += words_done

    def _hits(self, w: Words, carried: int) -> list[tuple[int, int, int]]:
        index = self.index
        out: list[tuple[int, int, int]] = []
        for length in (index.ngram, *index.short_lengths):
            first = max(0, carried - length + 1)
            hashes = w.span_hashes(length, first)
            idx = index.candidates(hashes)
            if len(idx):
                out.extend(zip((idx + first).tolist(), [length] * len(idx), hashes[idx].tolist()))
        out.sort()
        return out

    def _match(self, w: Words, k: int, length: int, h: int, file: str, locate: Callable[[int], Any]) -> None:
        n = self.index.ngram
        key = None
        g = self._offset + k
        for qi, j, qlen in self.index.entries[h]:
            if qlen != length:
                continue
            q = self.index.queries[qi]
            key = key if key is not None else w.span_key(k, length)
            if key != q.words.span_key(j, length):
                continue
            found = self.found[qi]
            if length < n:  # a whole item (its only n-gram) or a whole part shorter than n words
                found.ngram_overlap |= length == q.count
                if g > self._cover.get(qi, -1):
                    found.places += 1
                self._cover[qi] = max(self._cover.get(qi, -1), g + length - 1)
                self._keep_best(found, q, j, length, _Run(j, file, locate(k)))
                continue
            run = self._active.pop((qi, j, g), None)
            if run is None:
                run = _Run(j, file, locate(k))
                if g > self._cover.get(qi, -1):
                    found.places += 1
            self._cover[qi] = max(self._cover.get(qi, -1), g + n - 1)
            self._active[(qi, j + 1, g + 1)] = run
            found.ngram_overlap = True
            self._keep_best(found, q, run.first, j - run.first + n, run)

    @staticmethod
    def _keep_best(found: ItemOverlap, q: Query, first: int, length: int, run: _Run) -> None:
        chars = q.span_chars(first, length)
        for part, (a, count) in q.parts.items():
            if first <= a and a + count <= first + length:
                setattr(found, f"whole_{part}", True)
        if (length, chars) > (found.longest_words, found.longest_chars):
            found.longest_words, found.longest_chars = length, chars
            s, e = q.offsets[first][0], q.offsets[first + length - 1][1]
            found.longest_text = q.text[s:e] if e - s <= 300 else q.text[s:s + 150] + " ... " + q.text[e - 145:e]
            found.file, found.line = run.file, run.line


def overlap_header(index: BenchmarkIndex, train: Sequence[str], **extra: Any) -> dict[str, Any]:
    """The first line of overlap.jsonl: the rules and the normalization, stated."""
    return {
        "overlap_rules": {
            "medpalm": (f"Med-PaLM 2 (arXiv 2305.09617): the entire question (or the entire context, "
                        f"e.g. an abstract the question is about), or at least {MEDPALM_MIN_CHARS} contiguous characters "
                        f"of context + question (counted on the item's text), occur in one training "
                        f"document; options and answers are not searched for"),
            "ngram": (f"lm-eval decontamination: any {index.ngram}-word n-gram of the item occurs in a "
                      f"training document; an item under {index.ngram} words counts as its own only n-gram "
                      f"(lm-eval's janitor would never flag it)"),
        },
        "normalization": NORMALIZATION,
        "ngram": index.ngram, "medpalm_min_chars": MEDPALM_MIN_CHARS,
        "items": len(index.queries), "train": list(train), **extra,
    }
