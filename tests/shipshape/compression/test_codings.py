from __future__ import annotations

import threading

import pytest
import zstandard

from shipshape.compression import codings
from shipshape.compression.codings import BUILD_LEVELS, compress, decompress, encoder

DATA = b"shipshape " * 500


@pytest.mark.parametrize("coding", ["zstd", "br", "gzip", "deflate"])
def test_one_shot_and_streaming_agree_on_the_data(coding: str) -> None:
    assert decompress(compress(DATA, coding, BUILD_LEVELS[coding]), coding) == DATA
    stream = encoder(coding, 3)
    out = stream.feed(DATA[:1000]) + stream.flush() + stream.feed(DATA[1000:]) + stream.finish()
    assert decompress(out, coding) == DATA


def test_gzip_is_deterministic() -> None:
    assert compress(DATA, "gzip", 9) == compress(DATA, "gzip", 9)


@pytest.mark.parametrize("call", [compress, decompress])
def test_unknown_codings_are_refused(call: object) -> None:
    with pytest.raises(ValueError, match="unknown coding 'lzma'"):
        if call is compress:
            compress(DATA, "lzma", 1)
        else:
            decompress(DATA, "lzma")
    with pytest.raises(ValueError, match="unknown coding"):
        encoder("lzma", 1)


def test_a_reused_zstd_context_gives_the_same_bytes_at_each_level() -> None:
    # One compressor per thread and fast level is kept; reuse must not change the
    # output, and the level asked for is the level used (19 is never kept).
    text = b" ".join(str(n * n % 9973).encode() for n in range(5000))
    fresh = {level: zstandard.ZstdCompressor(level=level).compress(text) for level in (1, 19)}
    for _ in range(3):
        for level in (1, 19):
            assert compress(text, "zstd", level) == fresh[level]
    assert fresh[1] != fresh[19]
    assert 1 in codings._local.zstd
    assert 19 not in codings._local.zstd


def test_zstd_contexts_are_not_shared_between_threads() -> None:
    results: list[bytes] = []

    def work() -> None:
        results.extend(compress(bytes([n]) * 5000 + DATA, "zstd", 3) for n in range(50))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 200
    assert {decompress(r, "zstd")[:1] for r in results} == {bytes([n]) for n in range(50)}
    assert all(decompress(r, "zstd")[5000:] == DATA for r in results)
