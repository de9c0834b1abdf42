"""Conformance suites a plugin author subclasses (as pandas' extension tests and fsspec's abstract tests).

    from llmkit.testing.tokenizers import BaseTokenizerTests

    class TestMyTokenizer(BaseTokenizerTests):
        @pytest.fixture
        def tokenizer(self):
            return MyTokenizer.from_text(TEXT)

Each suite documents the fixtures it needs and the class attributes that tune it. One per family:
``tokenizers``, ``samplers``, ``attention``, ``models``, ``strategies`` (finetune_strategies),
``devices`` and ``decoders``; each checks what its protocol in ``llmkit.contracts`` cannot say.
"""
