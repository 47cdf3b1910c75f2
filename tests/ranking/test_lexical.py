"""Lexical helpers under concurrency."""

import threading

import snowballstemmer

from ranking import lexical


def test_stemming_from_many_threads_gives_the_same_stems_as_one():
    """The web process's threads rank previews at once; a shared snowball stemmer mixes their words."""
    bases = ("transform", "generat", "optimiz", "parallel", "align", "reason")
    suffixes = ("ing", "ed", "ers", "ations", "ational", "izes", "ness", "fulness")
    words = [f"{base}{suffix}" for base in bases for suffix in suffixes]
    words = [f"{w}{n}x" if n else w for n in range(40) for w in words]  # all distinct
    expected = {w: lexical.stem(w) for w in words}
    assert expected["transforming"] == snowballstemmer.stemmer("english").stemWord("transforming")
    uncached = lexical.stem.__wrapped__  # the stemmer itself, not the shared cache in front of it
    problems: list[str] = []

    def stem_all(offset):
        try:
            for w in words[offset:] + words[:offset]:
                if uncached(w) != expected[w]:
                    problems.append(w)
        except Exception as exc:  # noqa: BLE001 (a thread's exception would otherwise vanish)
            problems.append(repr(exc))

    threads = [threading.Thread(target=stem_all, args=(i * 97,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
