"""Retake the web app's screenshots into docs/screenshots/ (every page at 1280 px and at a phone's 390 px).

    python tools/web_screenshots.py [--postgresql]

Runs tests/web/test_screenshots.py, which drives headless Chromium (Debian's chromium and chromium-driver) on a
real `recouvrement web` server over a small clinic, checks each page's visible text with the privacy scanner
and that nothing overflows the phone's width, and saves the images.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "docs" / "screenshots"


def main() -> int:
    env = {**os.environ, "RECOUVREMENT_SCREENSHOTS": str(FOLDER), "PYTHONPATH": str(ROOT)}
    if "--postgresql" in sys.argv[1:]:
        env["RECOUVREMENT_TEST_DB"] = "postgresql"
    FOLDER.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/web/test_screenshots.py"]
    done = subprocess.run(command, cwd=ROOT, env=env, check=False)
    if done.returncode == 0:
        print(f"{len(list(FOLDER.glob('*.png')))} images in {FOLDER.relative_to(ROOT)}")
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
