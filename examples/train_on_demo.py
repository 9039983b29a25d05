"""Build the demo data and train a tiny U-GAT-IT teacher from Python, then translate one image.

    python examples/train_on_demo.py --out runs/example --iters 200
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from edgegan.data.demo import build_demo_dataset
from edgegan.data.images import list_images, load_rgb, save_png_atomic
from edgegan.data.unpaired import resize_square, to_model_range
from edgegan.models import create_model
from edgegan.train.checkpoint import load_weights, read_checkpoint
from edgegan.train.config import preset_config
from edgegan.train.samples import to_uint8
from edgegan.train.ugatit import train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("runs/example"))
    ap.add_argument("--iters", type=int, default=200)
    args = ap.parse_args()

    data = args.out / "data"
    if not data.exists():
        build_demo_dataset(data, size=64, n_train=100, n_test=8)
    cfg = preset_config("ugatit-light", data=str(data), out=str(args.out / "teacher"), size=64, ngf=16, ndf=16,
                        iters=args.iters, save_every=100, sample_every=100)
    ckpt = read_checkpoint(train(cfg, resume=True))

    # Rebuild the A->B generator from the checkpoint alone (its config travels with it).
    saved = ckpt.config
    gen = create_model(saved["generator"], ngf=saved["ngf"], n_res=saved["n_res"], img_size=saved["size"]).eval()
    load_weights(ckpt, {"gen_a2b": gen})
    photo = list_images(data / "testA", role="testA")[0]
    x = torch.from_numpy(to_model_range(resize_square(load_rgb(photo), saved["size"])[None]))
    with torch.no_grad():
        cartoon = to_uint8(gen(x)[0])[0]
    save_png_atomic(args.out / "translated.png", cartoon)
    print(f"{photo} -> {args.out / 'translated.png'}")


if __name__ == "__main__":
    main()
