from __future__ import annotations

import pytest

from shipshape.codecs import BUILD_LEVELS, compress, decompress, encoder

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
