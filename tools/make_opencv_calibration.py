"""Write graphs/assets/cow_opencv_calibration.json: the OpenCV calibration (K, R, tvec, image size) of the
textured-cow tutorial's camera (FoVPerspectiveCameras, fov 60, look_at_view_transform(2.7, 0, 180), 512 x 512).

The FoV camera's projection is a pinhole with NDC focal length 1 / tan(fov / 2) and the principal point at the
centre; ``pytorch3d.utils.opencv_from_cameras_projection`` turns that pinhole into OpenCV's pixel convention.
Run: python tools/make_opencv_calibration.py
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from pytorch3d.renderer import PerspectiveCameras, look_at_view_transform
from pytorch3d.utils import opencv_from_cameras_projection

OUT = Path(__file__).resolve().parent.parent / "graphs" / "assets" / "cow_opencv_calibration.json"
FOV_DEG, DIST, ELEV, AZIM, SIZE = 60.0, 2.7, 0.0, 180.0, 512


def main() -> None:
    R, T = look_at_view_transform(DIST, ELEV, AZIM)
    focal = 1.0 / math.tan(math.radians(FOV_DEG) / 2.0)
    pinhole = PerspectiveCameras(focal_length=((focal, focal),), R=R, T=T)
    image_size = torch.tensor([[SIZE, SIZE]])
    R_cv, tvec, K = opencv_from_cameras_projection(pinhole, image_size)
    doc = {
        "about": f"OpenCV calibration (x_cam = R x + tvec, pixels = K x_cam) of the cow tutorial's camera: "
                 f"FoVPerspectiveCameras fov {FOV_DEG:g}, look_at_view_transform({DIST}, {ELEV:g}, {AZIM:g}), "
                 f"{SIZE}x{SIZE}. Made by tools/make_opencv_calibration.py.",
        "K": [[round(v, 6) for v in row] for row in K[0].tolist()],
        "R": [[round(v, 9) for v in row] for row in R_cv[0].tolist()],
        "tvec": [round(v, 9) for v in tvec[0].tolist()],
        "image_size": [SIZE, SIZE],
    }
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    print(OUT)


if __name__ == "__main__":
    main()
