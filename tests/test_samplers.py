import pytest
import torch

import llmkit
from llmkit.errors import LLMKitError
from llmkit.testing.samplers import BaseSamplerTests
from llmkit_solutions.data_sampling import (
    GPTDatasetV1,
    RandomBlockSampler,
    create_dataloader_v1,
    random_block_loader,
    sliding_window_loader,
)


class TestSlidingWindowConformance(BaseSamplerTests):
    @pytest.fixture
    def sampler_factory(self):
        return llmkit.get("samplers", "sliding-window").factory


class TestRandomBlockConformance(BaseSamplerTests):
    @pytest.fixture
    def sampler_factory(self):
        return llmkit.get("samplers", "random-block").factory


class TestBookSlidingWindowConformance(BaseSamplerTests):
    @pytest.fixture
    def sampler_factory(self):
        return llmkit.get("samplers", "sliding-window-book").factory


class TestBookRandomBlockConformance(BaseSamplerTests):
    @pytest.fixture
    def sampler_factory(self):
        return llmkit.get("samplers", "random-block-book").factory


@pytest.mark.parametrize("name, options", [("random-block", {"num_batches": 5, "seed": 3}),
                                           ("sliding-window", {"stride": 5, "seed": 3}),
                                           ("sliding-window", {"stride": 16, "shuffle": False, "drop_last": False})])
def test_the_kits_samplers_draw_the_books_batches(name, options):
    """Same seed, same windows in the same order: a run's losses do not depend on which one it uses."""
    ids = list(range(300))
    kit = list(llmkit.create("samplers", name, ids, 4, 16, **options))
    book = list(llmkit.create("samplers", f"{name}-book", ids, 4, 16, **options))
    assert len(kit) == len(book) > 0
    for (x, y), (bx, by) in zip(kit, book):
        assert torch.equal(x, bx) and torch.equal(y, by)


class ListTokenizer:
    """Whitespace tokenizer over integers written in the text: '3 4 5' -> [3, 4, 5]."""

    def encode(self, text):
        return [int(t) for t in text.split()]


def test_gpt_dataset_v1_windows_follow_max_length_and_stride():
    text = " ".join(str(i) for i in range(20))
    dataset = GPTDatasetV1(text, ListTokenizer(), max_length=4, stride=3)
    # Starts 0, 3, ..., 15: the last start keeps one token left for the target.
    assert len(dataset) == 6
    x, y = dataset[1]
    assert x.tolist() == [3, 4, 5, 6] and y.tolist() == [4, 5, 6, 7]
    assert dataset[5][0].tolist() == [15, 16, 17, 18]


def test_stride_equal_to_max_length_gives_no_overlap():
    dataset = GPTDatasetV1(" ".join(map(str, range(13))), ListTokenizer(), max_length=4, stride=4)
    firsts = [dataset[i][0].tolist() for i in range(len(dataset))]
    assert firsts == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def test_create_dataloader_v1_uses_gpt2_ids_offline():
    text = "Hello, do you like tea? <|endoftext|> In the sunlit terraces of someunknownPlace. " * 3
    loader = create_dataloader_v1(text, batch_size=2, max_length=4, stride=4, shuffle=False)
    inputs, targets = next(iter(loader))
    assert inputs.tolist() == [[15496, 11, 466, 345], [588, 8887, 30, 220]]
    assert targets.tolist() == [[11, 466, 345, 588], [8887, 30, 220, 50256]]


def test_text_shorter_than_max_length_plus_one_is_one_clear_line():
    with pytest.raises(LLMKitError) as err:
        GPTDatasetV1("1 2 3 4", ListTokenizer(), max_length=4, stride=1)
    message = str(err.value)
    assert "\n" not in message and "max_length + 1 = 5" in message and "smaller max_length" in message


def test_bad_stride_and_batch_are_refused():
    with pytest.raises(LLMKitError, match="stride"):
        GPTDatasetV1(" ".join(map(str, range(10))), ListTokenizer(), max_length=4, stride=0)
    with pytest.raises(LLMKitError, match="batch_size"):
        sliding_window_loader(list(range(10)), batch_size=8, max_length=4)


def test_random_block_sampler_continues_across_epochs_and_resumes_from_state():
    sampler = RandomBlockSampler(list(range(100)), block_size=8, batch_size=2, num_batches=3, seed=1)
    epoch1 = [x for x, _ in sampler]
    state = sampler.generator.get_state()
    epoch2 = [x for x, _ in sampler]
    assert not all(torch.equal(a, b) for a, b in zip(epoch1, epoch2))
    resumed = RandomBlockSampler(list(range(100)), block_size=8, batch_size=2, num_batches=3, seed=99)
    resumed.generator.set_state(state)
    assert all(torch.equal(a, b) for a, b in zip(epoch2, [x for x, _ in resumed]))


def test_random_block_loader_maps_max_length_to_block_size():
    sampler = random_block_loader(list(range(1000)), batch_size=3, max_length=10, seed=0)
    assert sampler.block_size == 10 and sampler.batch_size == 3
    assert len(sampler) == 1000 // 30
