#!/usr/bin/env python3
"""tests/serve/browser_test.py — headless Chromium (Debian chromium + chromium-driver, python3-selenium) opens the
live demo page of `flowturbo serve`, checks that frames arrive and keep arriving, changes the class, the sampler,
the guidance and the walk mode through the page's controls and checks that the frames that follow were made with
them, and saves screenshots as test artefacts ($FT_ARTEFACTS, default build/test-artefacts). Exit status 1 on a
failure; 77 (skip) when Chromium or Selenium is missing."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from serve_util import ROOT, Server  # noqa: E402

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
except ImportError:
    print("SKIP browser test: python3-selenium is not installed")
    sys.exit(77)

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ART = os.environ.get("FT_ARTEFACTS", os.path.join(ROOT, "build", "test-artefacts"))
FAILED = []


def check(name, cond, detail=""):
    print("%s %s%s" % ("PASS" if cond else "FAIL", name, (": " + str(detail)) if detail and not cond else ""))
    if not cond:
        FAILED.append(name)
    return cond


def wait_for(driver, js, timeout=60):
    """Polls a JavaScript expression until it is truthy; returns its last value."""
    deadline, v = time.time() + timeout, None
    while time.time() < deadline:
        v = driver.execute_script("return " + js)
        if v:
            return v
        time.sleep(0.1)
    return v


def main():
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        print("SKIP browser test: Debian chromium and chromium-driver are not installed")
        return 77
    os.makedirs(ART, exist_ok=True)
    t0 = time.time()
    srv = Server("-t", os.environ.get("FT_SERVE_THREADS", "2"))
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.set_window_size(1000, 1000)
        driver.get(srv.url + "/")
        n = wait_for(driver, "window.ftState && window.ftState.frames >= 3 && window.ftState.frames")
        check("frames arrive", n and n >= 3, "frames: %s" % n)
        check("page lists the class names", "Sneaker (7)" in driver.find_element(By.ID, "class").text)
        seq0 = driver.execute_script("return window.ftState.last.seq")
        src0 = driver.find_element(By.ID, "frame").get_attribute("src")
        more = wait_for(driver, "window.ftState.last.seq >= %d && window.ftState.last.seq" % (seq0 + 3))
        check("frames keep arriving and change", more and
              driver.find_element(By.ID, "frame").get_attribute("src") != src0, "seq %s -> %s" % (seq0, more))
        check("image shown at the model's size", wait_for(driver, "document.getElementById('frame').naturalWidth") == 32)
        check("measured split shown", len(driver.find_elements(By.CSS_SELECTOR, "#split tr")) == 4 and
              driver.find_element(By.ID, "fps").text not in ("", "–"), driver.find_element(By.ID, "fps").text)
        driver.save_screenshot(os.path.join(ART, "serve_walk.png"))

        Select(driver.find_element(By.ID, "class")).select_by_visible_text("Sneaker (7)")
        ok = wait_for(driver, "window.ftState.url.includes('class=7') && window.ftState.last.class_a == 7 && "
                              "window.ftState.last.class_b == 7")
        check("class control takes effect", ok, driver.execute_script("return window.ftState.last"))
        check("caption names the class", "Sneaker" in driver.find_element(By.ID, "caption").text)

        Select(driver.find_element(By.ID, "sampler")).select_by_value("heun:4")
        ok = wait_for(driver, "window.ftState.last.sampler == 'heun:4' && window.ftState.last.class_a == 7")
        check("sampler control takes effect", ok, driver.execute_script("return window.ftState.last.sampler"))

        driver.execute_script("const c = document.getElementById('cfg'); c.value = 2; "
                              "c.dispatchEvent(new Event('change'));")
        ok = wait_for(driver, "window.ftState.last.cfg_scale == 2 && window.ftState.last.sampler == 'heun:4'")
        check("guidance control takes effect", ok)

        driver.find_element(By.ID, "walk").click()
        ok = wait_for(driver, "window.ftState.last.walk == 0")
        s1 = driver.execute_script("return window.ftState.last.seed_a")
        s2 = wait_for(driver, "window.ftState.last.seed_a > %d && window.ftState.last.seed_a" % s1)
        check("walk off: a new seed each frame", ok and s2, "%s %s" % (s1, s2))
        path = os.path.join(ART, "serve.png")
        driver.save_screenshot(path)
        check("screenshot saved", os.path.getsize(path) > 10000, path)
        print("     %d frames shown; screenshots in %s" % (driver.execute_script("return window.ftState.frames"), ART))
    finally:
        driver.quit()
        rc = srv.stop()
    check("server stopped cleanly", rc == 0, "exit %s" % rc)
    print("browser test: %d failed, %.1f s" % (len(FAILED), time.time() - t0))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
