"""The try-it page in a real headless browser (Debian's chromium + chromium-driver, driven by
selenium): open /, type a review, click, read the predicted label; a screenshot is saved in
the test's tmp dir. Skips only when the browser or selenium is not installed (.ci/run
installs them)."""

from __future__ import annotations

import shutil

import pytest

from rnnkit.predictors import load
from rnnkit.serve.launch import serve_process

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="chromium and chromium-driver are not installed")
def test_the_page_classifies_a_review_in_a_browser(tiny_runs, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,900"):
        opts.add_argument(flag)
    review = "a wonderful , moving and brilliant film"
    want = load(tiny_runs["sentiment"]).predict([review])[0]["label"]
    models = {"reviews": str(tiny_runs["sentiment"]), "lm": str(tiny_runs["charlm"]),
              "weather": str(tiny_runs["forecast"])}
    with serve_process(models, log=tmp_path / "server.log") as srv:
        driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
        try:
            driver.set_page_load_timeout(60)
            driver.get(srv.url)
            wait = WebDriverWait(driver, 60)
            card = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-model='reviews']")))
            assert {c.get_attribute("data-task") for c in driver.find_elements(By.CSS_SELECTOR, ".card")} == \
                {"sentiment", "charlm", "forecast"}
            card.find_element(By.CSS_SELECTOR, "textarea").send_keys(review)
            card.find_element(By.CSS_SELECTOR, "button.run").click()
            label = wait.until(lambda d: card.find_element(By.CSS_SELECTOR, ".out .label"))
            assert label.text == want
            assert "probability" in card.find_element(By.CSS_SELECTOR, ".out").text
            lm = driver.find_element(By.CSS_SELECTOR, "[data-model='lm']")
            length = lm.find_element(By.CSS_SELECTOR, "input[type=number]")
            length.clear()
            length.send_keys("80")
            lm.find_element(By.CSS_SELECTOR, "button.run").click()  # streams the sample into the page
            wait.until(lambda d: len(lm.find_element(By.CSS_SELECTOR, ".out").text) >= len("ROMEO:") + 60
                       and lm.find_element(By.CSS_SELECTOR, "button.run").is_enabled())
            text = lm.find_element(By.CSS_SELECTOR, ".out").text
            assert text.startswith("ROMEO:") and not text.startswith("ROMEO:ROMEO:")  # the prime shown once
            fc = driver.find_element(By.CSS_SELECTOR, "[data-model='weather']")
            fc.find_element(By.CSS_SELECTOR, "button.run").click()
            wait.until(lambda d: fc.find_elements(By.CSS_SELECTOR, ".out svg polyline"))
            shot = tmp_path / "page.png"
            assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 1000
        finally:
            driver.quit()
