"""Training images: a folder or a zip of aligned faces, and a sampler that shards global batches.

Images are read with Pillow (RGB), resized to the training resolution (Lanczos, only when the
size differs) and scaled to [-1, 1]; ``align_dataset`` prepares such a folder from photos.

Sampling: epoch e is one permutation of the data set drawn from ``seed + e``; global batch k of
the epoch is the slice [k*B, (k+1)*B) of it (B = batch per process x processes, an incomplete
last batch is dropped) and process r takes the contiguous part [r*b, (r+1)*b) of that slice.
So the union of a step's per-process batches, in rank order, is exactly the batch a single
process with batch B would see, and the position in the data is a function of the step alone
(resume needs no sampler state).
"""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class ImageDataset(Dataset):
    """Aligned face images from a folder (recursive) or a zip archive, as [3, R, R] in [-1, 1]."""

    def __init__(self, source: str | Path, resolution: int, hflip: bool = False):
        """hflip: also serve every image mirrored (index >= len(files) is the mirror)."""
        self.source = Path(source)
        self.resolution = int(resolution)
        self.hflip = hflip
        if not self.source.exists():
            raise FileNotFoundError(f"{self.source}: no such folder or zip file")
        if self.source.is_dir():
            self._zip = None
            self.files = sorted(str(p.relative_to(self.source)) for p in self.source.rglob("*")
                                if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        else:
            with zipfile.ZipFile(self.source) as zf:
                self.files = sorted(n for n in zf.namelist()
                                    if Path(n).suffix.lower() in IMAGE_SUFFIXES)
            self._zip: zipfile.ZipFile | None = None
        self._warned: set[str] = set()
        if not self.files:
            raise ValueError(f"{self.source}: no images ({', '.join(IMAGE_SUFFIXES)}) found")

    def __len__(self) -> int:
        return len(self.files) * (2 if self.hflip else 1)

    def _read(self, name: str) -> Image.Image:
        if self.source.is_dir():
            return Image.open(self.source / name)
        if self._zip is None:  # opened lazily: one handle per DataLoader worker process
            self._zip = zipfile.ZipFile(self.source)
        return Image.open(io.BytesIO(self._zip.read(name)))

    def __getitem__(self, index: int) -> torch.Tensor:
        mirrored = index >= len(self.files)
        n = len(self.files)
        for attempt in range(n):
            # An unreadable file must not end a run hours in: warn, take the next file instead
            # (deterministically, so every process and a resumed run agree).
            name = self.files[(index + attempt) % n]
            try:
                arr = self._decode(name)
                break
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                if name not in self._warned:
                    self._warned.add(name)
                    warnings.warn(f"{self.source}/{name}: unreadable image skipped ({exc})",
                                  stacklevel=2)
        else:
            raise ValueError(f"{self.source}: no readable image")
        if mirrored:
            arr = arr[:, ::-1]
        x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
        return x / 127.5 - 1.0

    def _decode(self, name: str) -> np.ndarray:
        with self._read(name) as im:
            im = im.convert("RGB")
            if im.size != (self.resolution, self.resolution):
                im = im.resize((self.resolution, self.resolution), Image.LANCZOS)
            return np.asarray(im, dtype=np.float32)

    def __getstate__(self) -> dict:  # an open ZipFile does not pickle into workers
        state = dict(self.__dict__)
        state["_zip"] = None
        return state


class ShardedBatchSampler(Sampler[list[int]]):
    """This process's part of every global batch, from ``start_step`` on, forever."""

    def __init__(self, n_items: int, batch_per_rank: int, rank: int, world_size: int,
                 seed: int, start_step: int = 0):
        self.n_items = n_items
        self.batch = batch_per_rank
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.start_step = start_step
        self.global_batch = batch_per_rank * world_size
        self.batches_per_epoch = n_items // self.global_batch
        if self.batches_per_epoch == 0:
            raise ValueError(f"{n_items} images are fewer than one global batch of "
                             f"{self.global_batch} ({world_size} x {batch_per_rank})")

    def indices_for_step(self, step: int) -> list[int]:
        epoch, k = divmod(step, self.batches_per_epoch)
        perm = epoch_permutation(self.n_items, self.seed, epoch)
        lo = k * self.global_batch + self.rank * self.batch
        return perm[lo: lo + self.batch].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while True:
            yield self.indices_for_step(step)
            step += 1

    def __len__(self) -> int:  # DataLoader asks; the stream is endless, the loop counts steps
        return 2**62


def epoch_permutation(n_items: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of epoch ``epoch`` (the same on every process)."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n_items, generator=g)


def image_batches(dataset: ImageDataset, batch_per_rank: int, rank: int, world_size: int,
                  seed: int, start_step: int = 0, workers: int = 0) -> Iterator[torch.Tensor]:
    """Endless [b, 3, R, R] batches of this process, the first one being step ``start_step``'s."""
    sampler = ShardedBatchSampler(len(dataset), batch_per_rank, rank, world_size, seed, start_step)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers,
                        persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())
    return iter(loader)
