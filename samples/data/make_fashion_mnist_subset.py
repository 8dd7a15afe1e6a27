#!/usr/bin/env python3
"""Rebuilds fashion-mnist-subset/ from the full Fashion-MNIST idx files (Debian package dataset-fashion-mnist).

Balanced and deterministic: the first 800 images of each class from the training file and the first 200 of each
class from the test file, in file order; images/ gets the first test image of three classes as PNG. Usage: python3 make_fashion_mnist_subset.py [/usr/share/datasets/fashion-mnist]
"""
import gzip
import struct
import sys
import zlib
from pathlib import Path

SOURCE = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist")
TARGET = Path(__file__).resolve().parent / "fashion-mnist-subset"
IMAGES = Path(__file__).resolve().parent / "images"
NAMES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot"]


def read_idx(path):
    data = gzip.open(path).read()
    rank = data[3]
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    return dims, data[4 + 4 * rank:]


def write_idx(path, magic_type, dims, payload):
    header = bytes([0, 0, magic_type, len(dims)]) + struct.pack(">" + "I" * len(dims), *dims)
    with gzip.GzipFile(path, "wb", compresslevel=9, mtime=0) as f:
        f.write(header + payload)


def write_png(path, width, height, gray):
    """An 8-bit grayscale PNG, written with zlib only."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\0" + gray[y * width:(y + 1) * width] for y in range(height))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    path.write_bytes(png)


def sample_images():
    """The first test image of a few classes as PNG files, for `xnet predict`."""
    (n, h, w), images = read_idx(TARGET / "t10k-images-idx3-ubyte.gz")
    _, labels = read_idx(TARGET / "t10k-labels-idx1-ubyte.gz")
    IMAGES.mkdir(exist_ok=True)
    for label in (1, 7, 9):
        i = labels.index(label)
        write_png(IMAGES / f"{NAMES[label]}.png", w, h, images[i * h * w:(i + 1) * h * w])


def subset(prefix, out_prefix, per_class):
    (n, h, w), images = read_idx(SOURCE / f"{prefix}-images-idx3-ubyte.gz")
    _, labels = read_idx(SOURCE / f"{prefix}-labels-idx1-ubyte.gz")
    taken, counts = [], [0] * 10
    for i in range(n):
        if counts[labels[i]] < per_class:
            counts[labels[i]] += 1
            taken.append(i)
    size = h * w
    write_idx(TARGET / f"{out_prefix}-images-idx3-ubyte.gz", 0x08, (len(taken), h, w),
              b"".join(images[i * size:(i + 1) * size] for i in taken))
    write_idx(TARGET / f"{out_prefix}-labels-idx1-ubyte.gz", 0x08, (len(taken),), bytes(labels[i] for i in taken))


TARGET.mkdir(exist_ok=True)
subset("train", "train", 800)
subset("t10k", "t10k", 200)
sample_images()
