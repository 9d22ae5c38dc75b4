"""``python -m ovpaint.cli``: the ``ovpaint`` command from a source tree."""

import sys

from ovpaint.cli import main

if __name__ == "__main__":
    sys.exit(main())
