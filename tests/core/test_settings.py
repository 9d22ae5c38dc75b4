"""Settings: defaults, coercion of hand-edited values, corrupt files, atomic save."""

from __future__ import annotations

import json

import pytest

from ovpaint.core.settings import SETTINGS, SETTINGS_BY_NAME, Settings


def test_defaults_and_unknown_keys(tmp_path):
    s = Settings.load(tmp_path / "absent.json")
    assert s.as_dict() == {x.name: x.default for x in SETTINGS_BY_NAME.values()}
    assert all(SETTINGS_BY_NAME[x.name] is x for x in SETTINGS)
    with pytest.raises(KeyError):
        s["no_such_setting"] = 1
    with pytest.raises(KeyError):
        s["no_such_setting"]
    assert s.get("no_such_setting", 7) == 7
    assert all(x.help for x in SETTINGS_BY_NAME.values())


def test_coercion_of_hand_edited_values():
    s = Settings()
    s["gpu_memory_budget_gb"] = 6  # int for a float
    assert s["gpu_memory_budget_gb"] == 6.0 and isinstance(s["gpu_memory_budget_gb"], float)
    s["max_image_megapixels"] = "120"
    assert s["max_image_megapixels"] == 120
    s["max_image_megapixels"] = "lots"
    assert s["max_image_megapixels"] == 250
    s["device"] = "quantum"  # not one of the choices
    assert s["device"] == "auto"
    s["recent_files"] = "abc"  # a string is not a list of one-letter files
    assert s["recent_files"] == []
    s["local_model_paths"] = ["x"]
    assert s["local_model_paths"] == {}
    s["autosave_seconds"] = None
    assert s["autosave_seconds"] == 120


def test_defaults_are_never_shared():
    a, b = Settings(), Settings()
    a["recent_files"].append("/x.png")  # a copy: the unsaved default is untouched
    assert b["recent_files"] == [] and SETTINGS_BY_NAME["recent_files"].default == []
    a["local_model_paths"] = "nonsense"  # falls back to the default ...
    a["local_model_paths"]["clip"] = "/w"  # ... which is a copy, not the table's dict
    assert SETTINGS_BY_NAME["local_model_paths"].default == {}


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe\x00", b""])
def test_corrupt_file_gives_defaults(tmp_path, content):
    path = tmp_path / "settings.json"
    path.write_bytes(content)
    s = Settings.load(path)
    assert s["device"] == "auto" and s["local_model_paths"] == {}


def test_save_round_trip_atomic_and_only_changed_values(tmp_path):
    path = tmp_path / "conf" / "settings.json"
    s = Settings.load(path)
    s["device"] = "cpu"
    s["recent_files"] = ["/a.png"]
    s.save()
    assert json.loads(path.read_text()) == {"device": "cpu", "recent_files": ["/a.png"]}
    assert [p.name for p in path.parent.iterdir()] == ["settings.json"]
    again = Settings.load(path)
    assert again["device"] == "cpu" and again["recent_files"] == ["/a.png"]
    path.write_text(json.dumps({"device": "cuda", "removed_setting": 3, "dtype": "fp64"}))
    loaded = Settings.load(path)
    assert loaded["device"] == "cuda" and loaded["dtype"] == "auto"


def test_a_setting_registered_later_takes_its_value_from_the_file(tmp_path, monkeypatch):
    """A layer above adds its settings (a model family's choice); a value read before that
    is kept, used once registered, and saved back rather than lost."""
    from ovpaint.core.settings import Setting, register_setting

    monkeypatch.setattr("ovpaint.core.settings.SETTINGS_BY_NAME", dict(SETTINGS_BY_NAME))
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"device": "cpu", "toy_model": "toy-big"}))
    loaded = Settings.load(path)
    with pytest.raises(KeyError):
        loaded["toy_model"]
    loaded.save()
    assert json.loads(path.read_text())["toy_model"] == "toy-big"
    register_setting(Setting("toy_model", "", "Toy model; empty = the default."))
    assert loaded["toy_model"] == "toy-big"
    loaded["toy_model"] = "toy-small"
    loaded.save()
    assert json.loads(path.read_text()) == {"device": "cpu", "toy_model": "toy-small"}
    with pytest.raises(ValueError):
        register_setting(Setting("toy_model", "x", "Another definition."))
