"""The book's ``tiktoken.get_encoding("gpt2")`` works with no network once llmkit is imported."""

import os
import subprocess
import sys


def test_book_call_works_offline_in_a_fresh_cache(tmp_path):
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network blocked by the test')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import llmkit, tiktoken\n"
        "enc = tiktoken.get_encoding('gpt2')\n"
        "print(enc.encode('Hello, do you like tea? <|endoftext|> In the sunlit terraces',"
        " allowed_special={'<|endoftext|>'}))\n"
    )
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    # The book's printed ids for this text (chapter 2).
    assert out.stdout.strip() == "[15496, 11, 466, 345, 588, 8887, 30, 220, 50256, 554, 262, 4252, 18250, 8812, 2114]"
    assert len(os.listdir(tmp_path / "cache")) == 2


def test_a_damaged_cache_file_is_replaced_with_the_right_bytes(tmp_path):
    from llmkit.gpt2_bpe import TIKTOKEN_SOURCES, seed_tiktoken_cache
    import hashlib

    cache = tmp_path / "cache"
    cache.mkdir()
    address = TIKTOKEN_SOURCES["vocab.bpe"][0]
    (cache / hashlib.sha1(address.encode()).hexdigest()).write_text("not the vocabulary")
    env_before = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    try:
        seed_tiktoken_cache()
    finally:
        if env_before is None:
            del os.environ["TIKTOKEN_CACHE_DIR"]
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = env_before
    # tiktoken would drop the damaged file and try to download it again; the kit puts the right bytes back.
    repaired = (cache / hashlib.sha1(address.encode()).hexdigest()).read_bytes()
    assert hashlib.sha256(repaired).hexdigest() == TIKTOKEN_SOURCES["vocab.bpe"][1]
