#!/usr/bin/env python3
"""Writes part of the embedded Fashion-MNIST subset as an image folder (root/<class>/<n>.bmp), standard library only.

Usage: python3 samples/scripts/fashion-mnist-to-bmp.py <out-folder> [images-per-class]
Used to try samples/scripts/train-image-folder.cs and samples/XNet.ModelConsumer (docs/pipelines.md).
"""
import gzip, os, struct, sys

NAMES = ["T-shirt-top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "fashion-mnist-subset")
out, per_class = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 50
with gzip.open(os.path.join(here, "train-images-idx3-ubyte.gz")) as f:
    _, count, rows, cols = struct.unpack(">IIII", f.read(16))
    pixels = f.read()
with gzip.open(os.path.join(here, "train-labels-idx1-ubyte.gz")) as f:
    f.read(8)
    labels = f.read()
written = [0] * 10
for i in range(count):
    label = labels[i]
    if written[label] >= per_class:
        continue
    folder = os.path.join(out, NAMES[label])
    os.makedirs(folder, exist_ok=True)
    image = pixels[i * rows * cols:(i + 1) * rows * cols]
    row_bytes = (cols * 3 + 3) // 4 * 4
    body = b"".join(bytes(b for p in image[r * cols:(r + 1) * cols] for b in (p, p, p)).ljust(row_bytes, b"\0")
                    for r in reversed(range(rows)))
    header = struct.pack("<2sIHHI", b"BM", 54 + len(body), 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, cols, rows, 1, 24, 0, len(body), 2835, 2835, 0, 0)
    with open(os.path.join(folder, f"{written[label]:04d}.bmp"), "wb") as f:
        f.write(header + body)
    written[label] += 1
print(f"wrote {sum(written)} images in {len(NAMES)} class folders under {out}")
