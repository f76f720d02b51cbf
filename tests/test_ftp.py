"""The FTP server's configuration and access rules, through a real server and client."""

from __future__ import annotations

import ftplib
import io
import stat

import pytest

from facerec.ftp import create_config, hash_password, load_config, verify_password
from tests.watch_helpers import FTP_PASSWORD, FTP_USER, ftp_client, running_ftp_server


def test_missing_config_is_created_private_with_a_random_password(tmp_path):
    path = tmp_path / "var" / "ftp.ini"
    password = create_config(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(password) >= 20 and password != create_config(tmp_path / "other.ini")
    config = load_config(path, tmp_path)
    assert config.address == "127.0.0.1" and config.passive_ports == (60000, 60099)
    assert [u.name for u in config.users] == ["upload"] and config.users[0].check(password)
    with pytest.raises(FileExistsError):
        create_config(path)  # never overwrites


def test_password_hashes(tmp_path):
    stored = hash_password("correct horse")
    assert stored.startswith("pbkdf2_sha256$")
    assert verify_password("correct horse", stored) and not verify_password("wrong", stored)
    import hashlib
    assert verify_password("pw", hashlib.sha256(b"pw").hexdigest())
    path = tmp_path / "ftp.ini"
    path.write_text(f"[server]\naddress = 0.0.0.0\nport = 2222\npassive_ports = 50000-50010\n"
                    f"photos_dir = {tmp_path}\n[user cam]\npassword_hash = {stored}\n"
                    f"permissions = elw\n")
    path.chmod(0o600)
    config = load_config(path)
    assert (config.address, config.port, config.passive_ports, config.photos_dir) == \
        ("0.0.0.0", 2222, (50000, 50010), tmp_path)
    assert config.users[0].permissions == "elw" and config.users[0].check("correct horse")


def test_config_without_users_is_refused(tmp_path):
    path = tmp_path / "ftp.ini"
    path.write_text("[server]\nport = 2121\n")
    with pytest.raises(ValueError, match="no \\[user"):
        load_config(path)


def test_server_checks_passwords_and_does_not_serve_downloads(tmp_path):
    with running_ftp_server(tmp_path) as address:
        client = ftplib.FTP()
        client.connect(*address, timeout=10)
        with pytest.raises(ftplib.error_perm, match="530"):
            client.login(FTP_USER, FTP_PASSWORD + "x")
        client.close()
        with ftp_client(address) as client:
            client.storbinary("STOR a.png", io.BytesIO(b"data"))
            assert client.nlst() == ["a.png"]
            with pytest.raises(ftplib.error_perm, match="550"):
                client.retrbinary("RETR a.png", lambda _: None)
            client.storbinary("STOR ../../outside.png", io.BytesIO(b"data"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "outside.png"]
