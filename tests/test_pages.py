"""The camera and manage pages end to end: a real headless Chromium whose camera plays a
video made from real photos (Ben Affleck, enrolled; Madonna, not), the real models, and
the API on a real HTTP server with keys on. One browser for the whole module.

FACEREC_SCREENSHOT_DIR=docs makes the run also save docs/camera.png and docs/manage.png."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from facerec import store
from facerec.api import create_app
from facerec.config import Settings
from facerec.enroll import enroll_folder
from facerec.imaging import load_image_file
from tests.api_helpers import read_keys
from tests.browser import browser_missing, chromium, live_server, still_video

pytestmark = pytest.mark.models

ENROLLED = ("ben_afflek", "elton_john", "jerry_seinfeld", "mindy_kaling")
TRAIN_PER_PERSON = 5
STRANGER = "madonna"
WAIT = 60  # seconds, at most, for anything the page should show


@pytest.fixture(scope="module")
def site(tmp_path_factory, samples_dir, real_pipeline):
    reason = browser_missing()
    if reason:
        pytest.fail(reason)
    root = tmp_path_factory.mktemp("pages")
    photos = root / "data_foto"
    for person in ENROLLED:
        (photos / person).mkdir(parents=True)
        for path in sorted((samples_dir / "train" / person).iterdir())[:TRAIN_PER_PERSON]:
            shutil.copy(path, photos / person / path.name)
    settings = Settings(photos_dir=photos, db_path=root / "facerec.db", index_dir=root / "index",
                        api_keys_path=root / "keys.json", rate_limit="")
    conn = store.open_db(settings.db_path)
    enroll_folder(settings, conn, lambda: real_pipeline, progress=False)
    with store.transaction(conn):
        store.upsert_profile(conn, "ben_afflek", {"name": "Ben Affleck"})
    conn.close()
    app = create_app(settings, pipeline=real_pipeline)
    video = still_video(root / "camera.y4m", [
        load_image_file(sorted((samples_dir / "val" / "ben_afflek").iterdir())[0]),
        load_image_file(sorted((samples_dir / "val" / STRANGER).iterdir())[1])])
    with live_server(app) as server, chromium(video) as driver:
        yield {"url": server.url, "driver": driver, "settings": settings,
               "keys": read_keys(settings.api_keys_path), "samples": samples_dir}


def wait_for(driver, condition, message: str, timeout: float = WAIT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: condition(d), message=message)


def alert_is_present():
    from selenium.webdriver.support.expected_conditions import alert_is_present

    return alert_is_present()


def by_css(driver, selector: str):
    return driver.find_elements("css selector", selector)


def text_of(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def enter_key(driver, key: str) -> None:
    wait_for(driver, lambda d: d.find_element("id", "key-form").is_displayed(), "no key form")
    field = driver.find_element("id", "api-key")
    field.clear()
    field.send_keys(key)
    driver.find_element("id", "key-save").click()


def screenshot(driver, name: str) -> None:
    folder = os.environ.get("FACEREC_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / name))


def face_items(driver, list_id: str = "faces") -> list[tuple[str, str, str]]:
    """(status, user id, text) of each listed face, read in one go: the camera page
    redraws the list on every frame, so elements found one call earlier may be gone."""
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#' + arguments[0] + ' li[data-status]')]"
        ".map(li => [li.dataset.status, li.dataset.user, li.innerText]);", list_id)
    return [tuple(row) for row in rows]


def pixels_of_color(driver, canvas_id: str, rgb: tuple[int, int, int]) -> int:
    """How many pixels of the overlay canvas have this colour (the boxes' colours)."""
    return driver.execute_script("""
        const c = document.getElementById(arguments[0]);
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4)
          if (d[i] === arguments[1] && d[i+1] === arguments[2] && d[i+2] === arguments[3]) n++;
        return n;""", canvas_id, *rgb)


GREEN, RED = (0x2E, 0x9D, 0x4A), (0xD3, 0x3A, 0x2C)


def test_camera_page_asks_for_the_key_and_explains_a_refused_one(site):
    driver = site["driver"]
    driver.get(site["url"] + "/")
    enter_key(driver, "frk_not_a_valid_key_at_all")
    wait_for(driver, lambda d: "API key was refused" in text_of(d, "message"), "no 401 message")
    assert driver.find_element("id", "key-form").is_displayed()
    enter_key(driver, site["keys"]["recognize"])
    wait_for(driver, lambda d: face_items(d), "no face listed after a valid key")


def test_camera_page_names_the_enrolled_person_and_calls_the_stranger_unknown(site):
    driver = site["driver"]
    if not face_items(driver):
        driver.get(site["url"] + "/")

    def settled(d):
        items = face_items(d)
        return ({s for s, _, _ in items} == {"recognized", "unknown"} and len(items) == 2
                and items)

    items = wait_for(driver, settled, "the page never showed one recognized and one unknown face")
    recognized = [i for i in items if i[0] == "recognized"][0]
    assert recognized[1] == "ben_afflek" and recognized[2].startswith("Ben Affleck 0.")
    assert [i for i in items if i[0] == "unknown"][0][2].startswith("unknown")
    # The boxes are drawn over the video in the status colours.
    assert pixels_of_color(driver, "overlay", GREEN) > 100
    assert pixels_of_color(driver, "overlay", RED) > 100
    # Frames keep flowing, one at a time, and settled faces are only tracked.
    start = int(driver.find_element("id", "frames").get_attribute("data-frames"))
    wait_for(driver, lambda d: int(d.find_element("id", "frames").get_attribute("data-frames"))
             >= start + 5, "frames stopped flowing")
    wait_for(driver, lambda d: any(t.endswith("· tracked") for _, _, t in face_items(d)),
             "a settled face was never only tracked")
    assert float(driver.find_element("id", "fps").get_attribute("data-fps")) > 0
    screenshot(driver, "camera.png")


def test_photo_fallback_without_a_camera(site):
    """As on a page served over plain http to another machine: no navigator.mediaDevices."""
    driver = site["driver"]
    script = driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
        "source": "Object.defineProperty(navigator, 'mediaDevices', {value: undefined});"})
    try:
        driver.get(site["url"] + "/")
        wait_for(driver, lambda d: "no camera" in text_of(d, "fallback-reason"),
                 "no explanation for the missing camera")
        assert not driver.find_element("id", "camera-stage").is_displayed()
        photo = sorted((site["samples"] / "val" / "ben_afflek").iterdir())[1]
        driver.find_element("id", "photo-input").send_keys(str(photo))
        items = wait_for(driver, lambda d: face_items(d, "photo-faces"), "no face in the photo")
        assert items[0][0] == "recognized" and items[0][2].startswith("Ben Affleck")
        assert pixels_of_color(driver, "photo-overlay", GREEN) > 100
    finally:
        driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument",
                               {"identifier": script["identifier"]})


def user_row(driver, user_id: str):
    rows = by_css(driver, f'#users tr[data-user="{user_id}"]')
    return rows[0] if rows else None


def test_manage_page_adds_a_user_who_is_then_recognized_and_deletes_them(site):
    driver, settings = site["driver"], site["settings"]
    driver.get(site["url"] + "/manage")
    # The recognize key from the camera page may not manage: clear message, key asked again.
    wait_for(driver, lambda d: "may not do that" in text_of(d, "message"), "no 403 message")
    enter_key(driver, site["keys"]["manage"])
    wait_for(driver, lambda d: user_row(d, "ben_afflek"), "users not listed")
    assert text_of(driver, "total") == f"{len(ENROLLED)} users"

    driver.find_element("id", "search").send_keys("affl")
    wait_for(driver, lambda d: len(by_css(d, "#users tr")) == 1, "search did not filter")
    driver.find_element("id", "search").clear()
    driver.find_element("id", "search").send_keys(" ")  # an input event: list everything again
    wait_for(driver, lambda d: len(by_css(d, "#users tr")) == len(ENROLLED), "search not reset")

    driver.find_element("id", "new-name").send_keys("Madonna Ciccone")
    driver.find_element("id", "new-email").send_keys("madonna@example.org")
    assert driver.find_element("id", "new-id").get_attribute("value") == "madonna_ciccone"
    train = sorted((site["samples"] / "train" / STRANGER).iterdir())[:3]
    driver.find_element("id", "new-photos").send_keys("\n".join(str(p) for p in train))
    # A photo from the camera too: it shows two faces, so that one is refused, saying why.
    driver.find_element("id", "camera-open").click()
    wait_for(driver, lambda d: d.execute_script(
        "return document.getElementById('capture-video').videoWidth") > 0, "no camera preview")
    driver.find_element("id", "camera-shot").click()
    wait_for(driver, lambda d: by_css(d, "#pending-photos img"), "camera photo not taken")
    driver.find_element("id", "add-submit").click()
    wait_for(driver, lambda d: len(by_css(d, "#add-results li")) == 4, "photos not enrolled")
    results = [li.text for li in by_css(driver, "#add-results li")]
    assert all("enrolled as face" in r for r in results[:3]), results
    assert "camera photo 4" in results[3] and "2 faces found" in results[3], results
    assert "3 of 4 photo(s) enrolled" in text_of(driver, "message")
    wait_for(driver, lambda d: user_row(d, "madonna_ciccone") is not None, "new user not listed")
    assert "Madonna Ciccone" in user_row(driver, "madonna_ciccone").text
    wait_for(driver, lambda d: len(by_css(d, "#detail-faces img")) == 3 and all(
        d.execute_script("return arguments[0].naturalWidth", img) > 0
        for img in by_css(d, "#detail-faces img")), "the user's faces are not shown")
    screenshot(driver, "manage.png")

    # Enrolled through the page, she is recognized on the camera page at once.
    driver.get(site["url"] + "/")
    wait_for(driver, lambda d: any(s == "recognized" and u == "madonna_ciccone"
                                   for s, u, _ in face_items(d)), "new user not recognized")

    driver.get(site["url"] + "/manage")
    wait_for(driver, lambda d: user_row(d, "madonna_ciccone"), "users not listed")
    user_row(driver, "madonna_ciccone").find_element("css selector", "button.delete").click()
    wait_for(driver, alert_is_present(), "no confirmation asked").dismiss()
    assert user_row(driver, "madonna_ciccone") is not None  # dismissed: nothing deleted
    user_row(driver, "madonna_ciccone").find_element("css selector", "button.delete").click()
    alert = wait_for(driver, alert_is_present(), "no confirmation asked")
    assert "madonna_ciccone" in alert.text
    alert.accept()
    wait_for(driver, lambda d: "deleted" in text_of(d, "message"), "no deletion message")
    wait_for(driver, lambda d: user_row(d, "madonna_ciccone") is None, "deleted user still listed")

    conn = store.connect(settings.db_path)
    try:
        assert store.get_user(conn, "madonna_ciccone") is None
        assert conn.execute("SELECT count(*) FROM faces WHERE user_id = 'madonna_ciccone'"
                            ).fetchone()[0] == 0
    finally:
        conn.close()
    assert not (settings.photos_dir / "madonna_ciccone").exists() or not any(
        (settings.photos_dir / "madonna_ciccone").iterdir())
