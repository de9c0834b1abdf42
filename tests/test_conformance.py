"""The kit's and the reference's models, decoders and devices through their conformance suites
(the kit's GPT and its static-cache decoder are plugins/llmkit_gpt's).

(Tokenizers, samplers, attention and strategies run theirs in test_tokenizers, test_samplers,
test_attention_* and test_finetune_strategies; the toy plugin's in test_hooks.)
"""

import pytest
import torch

import llmkit
from llmkit.testing.decoders import BaseDecoderTests
from llmkit.testing.devices import BaseDeviceTests
from llmkit.testing.models import BaseModelTests


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread; on a busy machine extra threads only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TestGPT(BaseModelTests):
    registered_name = "gpt"
    atol = 2e-5  # fused kernels sum in another order than the book's modules

    @pytest.fixture
    def model_factory(self):
        return llmkit.get("models", "gpt").factory


class TestBookGPT(BaseModelTests):
    registered_name = "gpt-book"
    declares_context_length = False  # the book's GPTModel, word for word: the kit reads pos_emb

    @pytest.fixture
    def model_factory(self):
        return llmkit.get("models", "gpt-book").factory


class TestKVCacheDecoder(BaseDecoderTests):
    @pytest.fixture
    def decoder(self):
        return llmkit.get("decoders", "kv-cache").factory


class TestKVCacheDecoderOnTheBooksGPT(TestKVCacheDecoder):
    model_name = "gpt-book"


class TestStaticCacheDecoder(BaseDecoderTests):
    decodes_any_model = False  # made for GPTs with trf_blocks[i].att; it says so for any other model

    @pytest.fixture
    def decoder(self):
        return llmkit.get("decoders", "static-cache").factory


class TestSpeculativeDecoder(TestStaticCacheDecoder):
    @pytest.fixture
    def decoder(self):
        return llmkit.get("decoders", "speculative").factory


class TestBookDecoder(BaseDecoderTests):
    model_name = "gpt-book"

    @pytest.fixture
    def decoder(self):
        return llmkit.get("decoders", "book").factory


def test_the_kits_decoder_and_the_books_agree_on_samples():
    torch.manual_seed(0)
    model = llmkit.create("models", "gpt-book", dict(vocab_size=40, context_length=8, emb_dim=16, n_heads=2,
                                                     n_layers=2, drop_rate=0.0, qkv_bias=False)).eval()
    prompt = torch.tensor([[1, 2, 3]])
    kit, book = llmkit.get("decoders", "kv-cache").factory, llmkit.get("decoders", "book").factory
    torch.manual_seed(5)
    ours = kit(model, prompt, 12, 8, temperature=0.9, top_k=10)
    torch.manual_seed(5)
    assert torch.equal(ours, book(model, prompt, 12, 8, temperature=0.9, top_k=10))


class TestCPUDevice(BaseDeviceTests):
    @pytest.fixture(params=["fp32", "bf16"])
    def device(self, request):
        return llmkit.create("devices", "cpu", precision=request.param)


class TestAutoDevice(BaseDeviceTests):
    @pytest.fixture
    def device(self):
        return llmkit.create("devices", "auto")
