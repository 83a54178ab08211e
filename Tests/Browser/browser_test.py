#!/usr/bin/env python3
"""Waybill's web app in a real browser: headless Chromium driven by Selenium.

Signs in, creates a directive through the form, opens its page, downloads its sheet PDF and
prints a JSON summary (the directive's id, the PDF's path) for the caller to check: the Swift
test decodes the PDF with `waybill decode` and compares the token with the directive's.
A screenshot of every page visited is saved in --shots.

usage: browser_test.py --base http://127.0.0.1:PORT --user NAME --password-file FILE
                       --downloads DIR --shots DIR [--destination URI]
"""
import argparse
import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--downloads", required=True)
    parser.add_argument("--shots", required=True)
    parser.add_argument("--destination", default="folder:archive/browser")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--admin-tour", action="store_true",
                        help="the user is an admin: also visit the activity and every admin page")
    args = parser.parse_args()
    password = open(args.password_file).read().rstrip("\n")
    os.makedirs(args.downloads, exist_ok=True)
    os.makedirs(args.shots, exist_ok=True)

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={args.width},{args.height}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": os.path.abspath(args.downloads),
        "download.prompt_for_download": False,
        "plugins.always_open_pdf_externally": True,
    })
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(60)
    visited = []

    def shot(name):
        path = os.path.join(args.shots, f"{len(visited) + 1:02d}-{name}.png")
        # The whole page, not just the window: widen the window to the document's height.
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(args.width, max(args.height, height))
        driver.save_screenshot(path)
        driver.set_window_size(args.width, args.height)
        visited.append({"page": driver.current_url, "title": driver.title, "screenshot": path})

    def wait_for(condition, seconds=60):
        # A click returns before the next page has loaded: wait until it has.
        deadline = time.time() + seconds
        while time.time() < deadline:
            if condition() and driver.execute_script("return document.readyState") == "complete":
                return True
            time.sleep(0.1)
        return False

    def fail(message):
        shot("failure")
        print(json.dumps({"ok": False, "error": message, "visited": visited}))
        driver.quit()
        sys.exit(1)

    try:
        # Not signed in: the app sends us to the sign-in page.
        driver.get(args.base + "/directives")
        if "/login" not in driver.current_url:
            fail(f"expected the sign-in page, got {driver.current_url}")
        shot("sign-in")
        driver.find_element(By.ID, "username").send_keys(args.user)
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button[type=submit]").click()
        if not wait_for(lambda: driver.current_url.endswith("/directives")):
            fail(f"sign-in did not reach the directives: {driver.current_url}")
        shot("directives-empty")

        driver.find_element(By.LINK_TEXT, "New directive").click()
        wait_for(lambda: driver.current_url.endswith("/directives/new"))
        shot("new-directive")
        driver.find_element(By.ID, "title").send_keys("Browser test: invoices")
        driver.find_element(By.ID, "destinations").send_keys(args.destination)
        driver.find_element(By.ID, "expires").send_keys("30d")
        driver.find_element(By.ID, "max_uses").send_keys("50")
        driver.find_element(By.CSS_SELECTOR, "form[action='/directives'] button[type=submit]").click()
        if not wait_for(lambda: "notice=created" in driver.current_url or driver.find_elements(By.CSS_SELECTOR, ".problem")):
            fail(f"no answer to creating the directive: {driver.current_url}")
        if "notice=created" not in driver.current_url:
            problem = driver.find_elements(By.CSS_SELECTOR, ".problem")
            fail("creating the directive failed: " + (problem[0].text if problem else driver.current_url))
        directive_id = driver.current_url.split("/directives/")[1].split("?")[0]
        # The preview image has loaded (naturalWidth > 0) before the screenshot.
        for _ in range(100):
            if driver.execute_script("const i=document.querySelector('img.sheet'); return i && i.complete && i.naturalWidth") :
                break
            time.sleep(0.2)
        else:
            fail("the sheet preview did not load")
        shot("directive")

        link = driver.find_element(By.PARTIAL_LINK_TEXT, "Download the sheet")
        link.click()
        pdf = os.path.join(args.downloads, f"sheet-{directive_id}.pdf")
        for _ in range(300):
            if os.path.exists(pdf) and not os.path.exists(pdf + ".crdownload") and os.path.getsize(pdf) > 0:
                break
            time.sleep(0.2)
        else:
            fail(f"the sheet PDF was not downloaded to {pdf}: {os.listdir(args.downloads)}")

        driver.get(args.base + "/directives")
        shot("directives")
        driver.get(args.base + "/account")
        shot("account")
        # A narrow phone-sized window: the list still reads.
        driver.set_window_size(390, 844)
        driver.get(args.base + f"/directives/{directive_id}")
        path = os.path.join(args.shots, f"{len(visited) + 1:02d}-directive-phone.png")
        driver.save_screenshot(path)
        visited.append({"page": driver.current_url, "title": driver.title, "screenshot": path})
        driver.set_window_size(args.width, args.height)

        if args.admin_tour:
            for path, name in (("/activity", "activity"), ("/admin", "admin"), ("/admin/users", "users"),
                               ("/admin/quarantine", "quarantine"), ("/admin/queue", "queue"),
                               ("/admin/journal?directive=" + directive_id, "journal")):
                driver.get(args.base + path)
                if not driver.title.endswith("· Waybill") or driver.find_elements(By.CSS_SELECTOR, ".problem"):
                    fail(f"{path} did not render: {driver.title}")
                shot(name)
            driver.get(args.base + "/admin/quarantine")
            held = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, "a[href^='/admin/quarantine/']")]
            if held:
                driver.get(held[0])
                for _ in range(150):
                    if driver.execute_script(
                            "return [...document.querySelectorAll('.pages img')].every(i => i.complete && i.naturalWidth > 0)"):
                        break
                    time.sleep(0.2)
                else:
                    fail("the quarantined pages did not load")
                shot("quarantine-entry")

        driver.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
        if not wait_for(lambda: "/login" in driver.current_url):
            fail(f"signing out did not return to the sign-in page: {driver.current_url}")
        shot("signed-out")
        print(json.dumps({"ok": True, "directive": directive_id, "pdf": pdf, "visited": visited}))
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
