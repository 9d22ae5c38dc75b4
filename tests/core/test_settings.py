"""Settings: defaults, coercion of hand-edited values, corrupt files, atomic save."""

from __future__ import annotations

import json

import pytest

from ovpaint.core.settings import MAX_RECENT, SETTINGS, SETTINGS_BY_NAME, Settings


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


def test_recent_files_keep_their_usable_entries_up_to_the_cap(tmp_path):
    good = [f"/photos/{i}.png" for i in range(60)]
    hand_edited = [3, None, "x" * 4096, good[0], ["/nested.png"], *good[1:]]
    s = Settings()
    s["recent_files"] = hand_edited
    assert s["recent_files"] == good[:MAX_RECENT]
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"recent_files": hand_edited}))
    loaded = Settings.load(path)
    assert loaded["recent_files"] == good[:MAX_RECENT]
    assert loaded.problems == []  # cleaned, not refused: the file is left as it is
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]


@pytest.mark.parametrize("entry", ["", 7, None, ["/w"]])
def test_a_local_model_path_that_is_no_path_is_refused(tmp_path, entry):
    s = Settings()
    s["local_model_paths"] = {"clip": "/models/clip.safetensors", "sam2": entry}
    assert s["local_model_paths"] == {}
    with pytest.raises(ValueError, match="the entries for sam2 are not paths"):
        SETTINGS_BY_NAME["local_model_paths"].check({"sam2": entry})
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"device": "cpu", "local_model_paths": {"sam2": entry}}))
    loaded = Settings.load(path)
    assert loaded["local_model_paths"] == {} and loaded["device"] == "cpu"
    assert (
        "Setting 'local_model_paths' in settings.json: the entries for sam2" in (loaded.problems[0])
    )
    kept = {"clip": "~/models/clip.safetensors", "sam2": "/m/sam2"}  # resolved where used
    s["local_model_paths"] = kept
    assert s["local_model_paths"] == kept


def test_a_new_setting_brings_its_own_validation(tmp_path, monkeypatch):
    """A setting registered by a layer above checks its values with its own ``validate``,
    after the type and range checks every setting gets."""
    from ovpaint.core.settings import Setting, register_setting

    seen = []

    def odd_tile(value: int) -> int:
        seen.append(value)
        if value % 2 == 0:
            raise ValueError(f"{value} is not odd")
        return value

    monkeypatch.setattr("ovpaint.core.settings.SETTINGS_BY_NAME", dict(SETTINGS_BY_NAME))
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"toy_tile": 4}))
    loaded = Settings.load(path)  # read before its setting exists: kept for later
    spec = register_setting(
        Setting("toy_tile", 3, "Toy tile size.", lo=1, hi=99, validate=odd_tile)
    )
    assert register_setting(spec) is spec  # the same definition again is fine
    assert loaded["toy_tile"] == 3  # 4 is refused now that the setting knows its rule
    s = Settings()
    s["toy_tile"] = "7"
    assert s["toy_tile"] == 7 and seen[-1] == 7  # it sees the value in the setting's type
    s["toy_tile"] = 500  # out of range: refused before the validator is asked
    assert s["toy_tile"] == 3 and seen[-1] == 7
    with pytest.raises(ValueError, match="8 is not odd"):
        spec.check(8)
