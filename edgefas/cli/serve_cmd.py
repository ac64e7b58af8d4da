"""Start a local web server: the HTTP API (POST /v1/detect) and a live demo page that reads the
browser camera and shows the verdict with the face box and score. Needs the serve extra:
pip install -c constraints.txt 'edgefas[serve]'

The API takes the image as multipart field 'image' or as the raw body and returns the Result
as JSON; the OpenAPI schema is at /openapi.json (interactive at /docs). Browsers allow the
camera on http://localhost / 127.0.0.1 only (or https), so open the page on this machine.

examples:
  edgefas serve                                   # then open http://127.0.0.1:8000/
  curl -F image=@photo.jpg http://127.0.0.1:8000/v1/detect
  curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg' http://127.0.0.1:8000/v1/detect
  edgefas serve --bundle bundles/kiosk-cam1 --port 8080 --max-upload-mb 4
"""
from __future__ import annotations

import argparse
import importlib.util

from ..errors import EdgefasError
from . import add_far_faces_argument
from .argtypes import port, positive_float, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=port, default=8000, help="default: %(default)s")
    p.add_argument("--bundle", help="bundle folder (default: the shipped one)")
    p.add_argument("--threads", type=positive_int, default=1, help="threads per model (default: %(default)s)")
    p.add_argument("--max-upload-mb", type=positive_float, default=10.0,
                   help="larger uploads get 413 (default: %(default)s)")
    add_far_faces_argument(p)


def run(args: argparse.Namespace) -> int:
    missing = [m for m in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(m) is None]
    if missing:
        raise EdgefasError(f"'edgefas serve' needs {', '.join(missing)}: "
                           "pip install -c constraints.txt 'edgefas[serve]'")
    import uvicorn

    from ..detector import Detector
    from ..serve import create_app

    app = create_app(Detector(args.bundle, threads=args.threads, far_faces=args.far_faces),
                     max_upload_bytes=int(args.max_upload_mb * 1024 * 1024))
    _check_port_free(args.host, args.port)
    print(f"edgefas serve: demo page http://{args.host}:{args.port}/  API "
          f"http://{args.host}:{args.port}/v1/detect  schema /openapi.json (/docs when online)  "
          "(Ctrl-C stops)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def _check_port_free(host: str, port: int) -> None:
    """Fail with one line before the banner when the address is taken (uvicorn would print
    the banner's promise first and then exit on its own error)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise EdgefasError(f"cannot resolve --host {host}: {exc}") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            raise EdgefasError(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                               "(another server there? choose another --port)") from None
