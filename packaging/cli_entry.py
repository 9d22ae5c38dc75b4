"""Entry point of the bundled ``ovpaint`` command (PyInstaller needs a script, not a module)."""

import sys

from ovpaint.cli import main

if __name__ == "__main__":
    sys.exit(main())
