"""Start the ovpaint desktop app: ``python main.py [IMAGE] [--models tiny|real] [--device ...]``."""

import sys

from ovpaint.app.launch import main

if __name__ == "__main__":
    sys.exit(main())
