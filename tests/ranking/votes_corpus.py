"""A small corpus with several papers per subject, for the tests of votes and example
papers: a vote must move neighbours without deleting them."""

from ranking.api import embed_papers
from tests.ranking_corpus import make_paper

VOTES_CORPUS = [
    dict(
        key="video-sparse",
        title="Long Video Understanding with Sparse Frame Sampling",
        abstract="We study video understanding for long videos. Our model samples sparse frames and answers "
        "questions about events in hour-long video clips, improving temporal reasoning over video.",
    ),
    dict(
        key="video-qa",
        title="Temporal Reasoning for Video Question Answering",
        abstract="Video understanding needs temporal reasoning: we answer questions about what happens when in "
        "long videos with a model that tracks events across frames.",
    ),
    dict(
        key="video-memory",
        title="Streaming Video Understanding with Memory Tokens",
        abstract="A streaming model keeps memory tokens of past frames for online video understanding, "
        "answering questions about long video streams as they arrive.",
    ),
    dict(
        key="video-egocentric",
        title="Egocentric Video Understanding from Wearable Cameras",
        abstract="Video understanding of egocentric recordings: we recognise actions and answer questions about "
        "long first-person video captured by wearable cameras.",
    ),
    dict(
        key="speech-lowres",
        title="Speech Recognition for Low-Resource Languages",
        abstract="Automatic speech recognition for languages with little transcribed audio, using "
        "self-supervised pretraining on untranscribed speech.",
    ),
    dict(
        key="speech-streaming",
        title="Streaming Speech Recognition with Transducers",
        abstract="A transducer model for streaming automatic speech recognition with low latency on device, "
        "recognising speech as the audio arrives.",
    ),
    dict(
        key="translation-multilingual",
        title="Machine Translation of Low-Resource Languages with Multilingual Pretraining",
        abstract="Neural machine translation for low-resource language pairs improves with multilingual "
        "pretraining and back-translation of monolingual text.",
    ),
    dict(
        key="translation-document",
        title="Document-Level Machine Translation with Long Context",
        abstract="Machine translation of whole documents: a translation model that reads long context keeps "
        "pronouns and terminology consistent across sentences.",
    ),
    dict(
        key="translation-speech",
        title="Speech Translation without Transcripts",
        abstract="Direct speech translation from audio in one language to text in another, without "
        "transcripts, with a model pretrained for speech recognition and machine translation.",
    ),
    dict(
        key="robots-legged",
        title="Reinforcement Learning for Legged Robot Locomotion",
        abstract="Legged robots learn to walk over rough terrain with reinforcement learning in simulation "
        "and transfer the policy to hardware.",
    ),
    dict(
        key="robots-quadruped",
        title="Quadruped Robots Learn Agile Locomotion in Simulation",
        abstract="A quadruped robot learns agile locomotion policies with reinforcement learning in simulation, "
        "then walks and jumps over rough terrain on hardware.",
    ),
    dict(
        key="recsys",
        title="Scaling Laws for Recommendation Systems in Online Retail",
        abstract="We measure how the quality of product recommendation systems grows with data and model size "
        "in online retail, and what it costs to serve them.",
    ),
    dict(
        key="protein",
        title="Protein Structure Prediction with Deep Learning",
        abstract="We predict the three-dimensional structure of proteins from amino acid sequences with an "
        "attention-based network trained on solved structures.",
    ),
]


def make_votes_corpus():
    papers = {spec["key"]: make_paper(**spec) for spec in VOTES_CORPUS}
    embed_papers(list(papers.values()))
    return papers
