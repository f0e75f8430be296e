"""A faithful re-implementation of the OLD video design, kept only as a benchmark floor.

What the old Gradio demo did with a video, step by step (and what this does):

1. split the video into JPEG files in a temporary folder: OpenCV
   ``VideoCapture`` reads every frame, ``cv2.imwrite`` writes ``frame_00000.jpg``...;
2. for each file: open it with Pillow, resize it to the model's 512x512 input,
   normalise to [-1, 1] and quantize it by hand, run the *published*
   fused-argmax Autoseg-EdgeTPU XS file with the LiteRT ``Interpreter``
   (2 threads), read back the 512x512 class map;
3. redraw the frame with matplotlib: a figure the size of the frame, ``imshow``
   of the picture, ``imshow`` of the class map (PASCAL colour map, alpha 0.5)
   on top, axes off, ``savefig`` to a PNG in the temporary folder;
4. read the PNGs back and join them with ``cv2.VideoWriter`` at a hard-coded
   30 fps with fourcc ``mp4v`` (MPEG-4 Part 2: no audio, wrong speed for any
   video that is not 30 fps, and not playable in most browsers).

It deliberately imports nothing from the ``segmentation`` package: it stands
for code that predates it. Only the benchmark uses it.
"""

from __future__ import annotations

import glob
import os
import time
from pathlib import Path

import cv2
import numpy as np

OLD_FPS = 30  # the old code hard-coded the output frame rate
OLD_THREADS = 2


def create_pascal_label_colormap(n: int = 256) -> np.ndarray:
    """The colour map of the TensorFlow DeepLab demo notebook (what the old demo used)."""
    colormap = np.zeros((n, 3), dtype=int)
    ind = np.arange(n, dtype=int)
    for shift in reversed(range(8)):
        for channel in range(3):
            colormap[:, channel] |= ((ind >> channel) & 1) << shift
        ind >>= 3
    return colormap


class OldDesign:
    """Old pipeline; the interpreter is built once (as the old app did at start-up)."""

    def __init__(self, model_path: str | Path, threads: int = OLD_THREADS, image_format: str = "png"):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
        from ai_edge_litert.interpreter import Interpreter

        self.plt = plt
        self.interpreter = Interpreter(model_path=str(model_path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input_details = self.interpreter.get_input_details()[0]
        self.output_details = self.interpreter.get_output_details()[0]
        _, self.height, self.width, _ = self.input_details["shape"]
        self.cmap = ListedColormap(create_pascal_label_colormap(256) / 255.0)
        self.image_format = image_format

    # -- the model step, as the old demo wrote it ---------------------------------------
    def run_model(self, image) -> np.ndarray:
        """PIL image -> 512x512 class map from the published fused-argmax model."""
        from PIL import Image

        resized = image.resize((int(self.width), int(self.height)), Image.BILINEAR)
        x = np.asarray(resized, dtype=np.float32) / 127.5 - 1.0
        scale, zero_point = self.input_details["quantization"]
        if scale:
            x = np.round(x / scale + zero_point)
            info = np.iinfo(self.input_details["dtype"])
            x = np.clip(x, info.min, info.max)
        x = x.astype(self.input_details["dtype"])[None]
        self.interpreter.set_tensor(self.input_details["index"], x)
        self.interpreter.invoke()
        seg_map = self.interpreter.get_tensor(self.output_details["index"])[0]
        return seg_map.astype(np.int32)

    def warm_up(self) -> None:
        from PIL import Image

        self.run_model(Image.new("RGB", (int(self.width), int(self.height))))

    # -- the drawing step ---------------------------------------------------------------
    def draw(self, image, seg_map: np.ndarray, path: str) -> None:
        plt = self.plt
        w, h = image.size
        dpi = 100
        fig = plt.figure(figsize=(w / dpi, h / dpi), dpi=dpi)
        ax = fig.add_axes([0, 0, 1, 1])
        ax.imshow(image)
        ax.imshow(seg_map, cmap=self.cmap, vmin=0, vmax=255, alpha=0.5, interpolation="nearest",
                  extent=(-0.5, w - 0.5, h - 0.5, -0.5))
        ax.axis("off")
        fig.savefig(path, dpi=dpi, format=self.image_format)
        plt.close(fig)

    # -- the whole job ------------------------------------------------------------------
    def process_video(self, src: str | Path, dst: str | Path, workdir: str | Path,
                      max_frames: int | None = None) -> dict:
        """Run the old design end to end; returns frame count and per-phase seconds."""
        from PIL import Image

        workdir = Path(workdir)
        frames_dir = workdir / "frames"
        drawn_dir = workdir / "drawn"
        frames_dir.mkdir(parents=True, exist_ok=True)
        drawn_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()

        # 1. video -> JPEG files
        cap = cv2.VideoCapture(str(src))
        count = 0
        while max_frames is None or count < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            cv2.imwrite(os.path.join(frames_dir, f"frame_{count:05d}.jpg"), frame)
            count += 1
        cap.release()
        t1 = time.perf_counter()

        # 2. + 3. per file: model, matplotlib redraw, savefig
        t_model = 0.0
        files = sorted(glob.glob(os.path.join(frames_dir, "*.jpg")))
        for i, path in enumerate(files):
            image = Image.open(path).convert("RGB")
            tm = time.perf_counter()
            seg_map = self.run_model(image)
            t_model += time.perf_counter() - tm
            self.draw(image, seg_map, os.path.join(drawn_dir, f"frame_{i:05d}.{self.image_format}"))
        t2 = time.perf_counter()

        # 4. drawn files -> video at a hard-coded 30 fps, mp4v
        drawn = sorted(glob.glob(os.path.join(drawn_dir, f"*.{self.image_format}")))
        writer = None
        for path in drawn:
            img = cv2.imread(path)
            if writer is None:
                h, w = img.shape[:2]
                writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), OLD_FPS, (w, h))
            writer.write(img)
        if writer is not None:
            writer.release()
        t3 = time.perf_counter()
        return {
            "frames": count,
            "seconds": t3 - t0,
            "split_s": t1 - t0,
            "model_s": t_model,
            "draw_s": (t2 - t1) - t_model,
            "join_s": t3 - t2,
        }
