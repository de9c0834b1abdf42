"""Write the Isle of Marrow knowledge base (docs/*.md) and its question set (questions.json).

The island, its villages and every sentence about them are made up for llmkit; the facts and the
prose come from ``llmkit.beyond.island`` (fixed seed), which also makes the other villages the RAG
reader is trained on.

    python make_knowledge.py            # rewrites docs/ and questions.json next to this file
    python make_knowledge.py --check    # only verifies that they are current
"""

import json
import sys
from pathlib import Path

from llmkit.beyond.island import knowledge_base

HERE = Path(__file__).parent


def build() -> dict[str, str]:
    docs, questions = knowledge_base()
    files = {f"docs/{name.lower()}.md": text for name, text in docs.items()}
    files["questions.json"] = json.dumps(questions, indent=1, ensure_ascii=False) + "\n"
    return files


if __name__ == "__main__":
    files = build()
    if "--check" in sys.argv:
        stale = [p for p, text in files.items() if not (HERE / p).is_file() or (HERE / p).read_text() != text]
        extra = [p.name for p in (HERE / "docs").glob("*.md") if f"docs/{p.name}" not in files]
        sys.exit("out of date: " + ", ".join(stale + extra) + "; run make_knowledge.py" if stale or extra else 0)
    for path, text in files.items():
        (HERE / path).parent.mkdir(exist_ok=True)
        (HERE / path).write_text(text, encoding="utf-8")
    print(f"wrote {len(files) - 1} documents and questions.json")
