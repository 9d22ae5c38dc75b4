"""Entry point of the bundle: one program per name the executable is started as.

``ovpaint-app`` (a link to the executable on Linux, its own executable on Windows and macOS)
starts the desktop app; any other name, ``ovpaint`` included, the command line.
"""

import os
import sys

APP_NAMES = ("ovpaint-app",)


def program(argv0: str, executable: str) -> str:
    """'app' or 'cli' from the name the program was started as (a link keeps its own name in
    argv[0]; a Windows executable is recognised by its own file name)."""
    for path in (argv0, executable):
        name = os.path.basename(path or "").lower()
        if name.endswith(".exe"):
            name = name[:-4]
        if name in APP_NAMES:
            return "app"
    return "cli"


def main() -> int:
    if program(sys.argv[0] if sys.argv else "", sys.executable) == "app":
        from ovpaint.app.launch import main as app_main

        return app_main()
    from ovpaint.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
