"""Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``):
no websocket client, no Selenium or Playwright download, just Debian's chromium package."""
from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """A raw YUV4MPEG2 (4:2:0) clip of BGR frames: Chromium's fake camera reads this format."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for fr in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(fr, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


class Chromium:
    """One headless browser; :meth:`evaluate` runs JavaScript in its page."""

    def __init__(self, binary: str, fake_video: Path, user_dir: Path) -> None:
        # the browser reads commands from fd 3 and writes answers to fd 4
        self._to_r, self._to_w = os.pipe()
        self._from_r, self._from_w = os.pipe()
        args = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--remote-debugging-pipe", f"--user-data-dir={user_dir}",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={fake_video}", "--window-size=900,800",
                "about:blank"]

        def fds() -> None:  # in the child: move the pipe ends to 3 and 4 (via high numbers,
            # in case one of them already is 3 or 4)
            a = fcntl.fcntl(self._to_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(self._from_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        # close_fds=False: fds 3 and 4 are created in preexec_fn, after the parent decided
        # which descriptors to keep
        self.proc = subprocess.Popen(args, preexec_fn=fds, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, close_fds=False)
        os.close(self._to_r)
        os.close(self._from_w)
        self._buf = b""
        self._id = 0
        self.session: str | None = None

    def send(self, method: str, params: dict[str, Any] | None = None,
             timeout_s: float = 30.0) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer to {method} in {timeout_s} s")
            chunk = os.read(self._from_r, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the pipe (did it crash?)")
            self._buf += chunk

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": url})["targetId"]
        self.session = self.send("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]

    def evaluate(self, expression: str) -> Any:
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return r["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot")["data"]))
        return path

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout_s=5)
        except Exception:  # already gone: still make sure the process ends
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_w)
        os.close(self._from_r)
