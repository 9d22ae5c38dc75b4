"""Fixtures shared by these tests."""

from fake_hub import make_hub  # noqa: F401 - a local fake of the model hub


def run(*argv):
    """``ovpaint --models tiny ARGV`` in this process: its exit code, argparse's included."""
    from ovpaint.cli import main

    try:
        return main(["--models", "tiny", *map(str, argv)])
    except SystemExit as exc:  # argparse refused an option
        return exc.code


def one_line(capsys) -> str:
    """The one line a refused command wrote on stderr (asserted to be one, no traceback)."""
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]
