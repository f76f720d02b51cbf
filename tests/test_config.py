import pytest

from facerec.config import parse_bool, settings_from_env, write_setting


def test_file_then_environment_then_overrides(tmp_path):
    path = tmp_path / "facerec.toml"
    write_setting("threshold", 0.52, path)
    write_setting("model", "facenet512", path)
    write_setting("threshold", 0.5, path)  # replaces, does not duplicate
    write_setting("reject_duplicates", True, path)
    assert path.read_text().count("threshold") == 1
    env = {"FACEREC_CONFIG": str(path), "FACEREC_MIN_FACE_SIZE": "30",
           "FACEREC_REJECT_DUPLICATES": "false"}
    s = settings_from_env(env, model=None, batch_size=8)
    assert (s.threshold, s.model, s.min_face_size, s.reject_duplicates, s.batch_size) == (
        0.5, "facenet512", 30, False, 8)


def test_false_means_false():
    assert parse_bool("false") is False and parse_bool("Off") is False and parse_bool("1") is True
    with pytest.raises(ValueError):
        parse_bool("maybe")


@pytest.mark.parametrize("content, message", [
    ("nonsense = 1\n", "unknown setting"),
    ("threshold = 'high'\n", "threshold"),
    ("threshold = \n", "c.toml"),
])
def test_bad_config_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "c.toml"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        settings_from_env({"FACEREC_CONFIG": str(path)})


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ValueError, match="FACEREC_BATCH_SIZE"):
        settings_from_env({"FACEREC_BATCH_SIZE": "many", "FACEREC_CONFIG": "/nonexistent"})
