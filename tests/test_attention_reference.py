"""The attention conformance suite run on the reference MultiHeadAttention itself.

If the reference fails the suite, the suite (not a plugin) is wrong.
"""

import pytest

from llmkit.testing.attention import BaseAttentionTests
from llmkit_solutions.attention import MultiHeadAttention


class TestReferenceMultiHeadAttention(BaseAttentionTests):
    registered_name = "mha"

    @pytest.fixture
    def attention_factory(self):
        return MultiHeadAttention
