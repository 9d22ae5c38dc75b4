"""A calibrator whose answer is injected: what some machine measured (for the wiring tests)."""

from __future__ import annotations


class FixedCalibrator:
    def __init__(self, choice: str) -> None:
        self.choice_of = choice
        self.asked: list[str] = []
        self.allow_int8 = False
        self.announce = None

    def choice(self, workload, device, **kwargs) -> str:
        self.asked.append(workload)
        return self.choice_of


def manager_measuring(choice: str, **values):
    """A tiny-profile manager on a machine where ``choice`` was measured fastest."""
    from ovpaint.core.settings import Settings
    from ovpaint.models.manager import ModelManager

    return ModelManager(
        profile="tiny",
        device="cpu",
        settings=Settings(values=values),
        calibrator=FixedCalibrator(choice),
    )
