import pytest

from facerec.naming import classify


@pytest.mark.parametrize("path, user_id", [
    ("u1024.jpg", "u1024"),
    ("u1024_2.jpg", "u1024"),
    ("u1024_17.JPEG", "u1024"),
    ("u1024/front.jpg", "u1024"),
    ("u1024/u1024_3.png", "u1024"),
    ("anna.smith-2.webp", "anna.smith-2"),
    ("john_2x.jpg", "john_2x"),
])
def test_photo_names(path, user_id):
    assert classify(path).kind == "photo"
    assert classify(path).user_id == user_id


@pytest.mark.parametrize("path", [
    ".hidden.jpg", "u1/.DS_Store", ".pureftpd-upload.5f1a.u1.jpg", "u1.jpg.part", "u1.jpg.tmp",
    "u1.jpg~", "~u1.jpg", "users.csv", "README.md",
])
def test_ignored(path):
    assert classify(path).kind == "ignored"


@pytest.mark.parametrize("path, reason", [
    ("notes.txt", "unsupported file type"),
    ("noextension", "unsupported file type"),
    ("a/b/c.jpg", "too deep"),
    ("bad id.jpg", "invalid user id"),
    ("a...jpg", "invalid user id"),
    ("_x.jpg", "invalid user id"),
    ("a..b/x.jpg", "invalid user id"),
    ("ünïcode.jpg", "invalid user id"),
    ("x" * 65 + ".jpg", "invalid user id"),
    ("_2.jpg", "invalid user id"),
])
def test_rejected(path, reason):
    result = classify(path)
    assert result.kind == "rejected" and reason in result.reason and result.user_id is None
