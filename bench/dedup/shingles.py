"""The shingles every tool of the dedup benchmark is given, and the truth and the exact check
are computed on: the text with full-width ASCII folded, case lowered and whitespace collapsed
(`fold`) or removed (`compact`), then its character n-grams (an empty text has none). The peers
import it so that they see exactly what score.py and verify.py see."""


def fold(t):
    t = "".join(chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else c for c in t)
    return " ".join(t.split()).lower()


def compact(t):
    return fold(t).replace(" ", "")


def grams(t, n):
    """The character n-grams of `t` in order, repeats kept; a text shorter than n is one."""
    return [t[i:i + n] for i in range(max(1, len(t) - n + 1))] if t else []


def char_shingles(text, n):
    """The set of character n-grams of the compact text."""
    return set(grams(compact(text), n))
