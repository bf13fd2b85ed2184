"""Cut the offline CIFAR-10 JPEG copy down to its first N training images (and all test images)
so it fits, with MNIST, in what a borrowed GPU machine is sent (benchmarks/device_check.sh).

    python benchmarks/cifar_slice.py SRC.npz DST.npz [N=25000]
"""

import sys

import numpy as np


def main() -> None:
    src, dst = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 25_000
    packed = np.load(src)
    offsets = packed["train_offsets"]
    np.savez(dst, train_jpeg=packed["train_jpeg"][: offsets[n]], train_offsets=offsets[: n + 1],
             train_y=packed["train_y"][:n],
             **{k: packed[k] for k in packed.files if k.startswith("test_")})


if __name__ == "__main__":
    main()
