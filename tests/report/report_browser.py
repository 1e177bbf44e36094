#!/usr/bin/python3
"""Opens an `mtl report` HTML file in headless Chromium, as a user's browser shows it, and checks it independently of
mtl: no console errors, no network request, the expected number of charts, and in each chart's canvas pixels in the
colours its legend shows (drawn curves, not only axes); saves a full-page screenshot.

  /usr/bin/python3 tests/report/report_browser.py REPORT.html CHARTS SCREENSHOT.png

Needs Debian's chromium, chromium-driver and python3-selenium (tools/setup.sh); exit code 3 when they are missing.
"""
import os
import sys

CHECK = r"""
function rgb(css) {
  var m = css.match(/rgba?\((\d+),\s*(\d+),\s*(\d+)/);
  return m ? [+m[1], +m[2], +m[3]] : null;
}
var out = {charts: [], resources: performance.getEntriesByType('resource').length};
document.querySelectorAll('.uplot').forEach(function (plot) {
  var colours = [];
  plot.querySelectorAll('.u-legend .u-series').forEach(function (row, i) {
    var marker = row.querySelector('.u-marker');
    if (i > 0 && marker) {
      var c = rgb(getComputedStyle(marker).borderColor);
      if (c) colours.push(c);
    }
  });
  var canvas = plot.querySelector('canvas');
  var px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  var inked = 0, curve = 0;
  for (var k = 0; k < px.length; k += 4) {
    if (px[k + 3] === 0) continue;
    inked++;
    for (var j = 0; j < colours.length; j++) {
      var c = colours[j];
      if (Math.abs(px[k] - c[0]) <= 12 && Math.abs(px[k + 1] - c[1]) <= 12 && Math.abs(px[k + 2] - c[2]) <= 12) {
        curve++;
        break;
      }
    }
  }
  var title = plot.querySelector('.u-title');
  out.charts.push({title: title ? title.textContent : '', colours: colours.length, inked: inked, curve: curve,
                   width: canvas.width, height: canvas.height});
});
return out;
"""


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    page, expected, screenshot = os.path.abspath(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        print("python3-selenium is missing: %s" % e)
        sys.exit(3)
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not os.path.exists(tool):
            print("%s is missing (Debian chromium and chromium-driver)" % tool)
            sys.exit(3)
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    except Exception as e:  # noqa: BLE001 (a browser that cannot start is an environment problem, reported as a skip)
        print("headless Chromium did not start: %s" % str(e).splitlines()[0])
        sys.exit(3)
    failures = []
    try:
        driver.get("file://" + page)
        result = driver.execute_script(CHECK)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1200, min(int(height) + 40, 16000))
        driver.save_screenshot(screenshot)
        logs = driver.get_log("browser")
    finally:
        driver.quit()
    for entry in logs:
        print("console %s: %s" % (entry.get("level"), entry.get("message")))
        if entry.get("level") == "SEVERE":
            failures.append("console error: %s" % entry.get("message"))
    if result["resources"]:
        failures.append("the page loaded %d resources (expected none: it must open offline)" % result["resources"])
    if len(result["charts"]) != expected:
        failures.append("%d charts rendered, expected %d" % (len(result["charts"]), expected))
    for c in result["charts"]:
        print("chart %-22s canvas %4dx%-4d inked %6d curve pixels %5d (%d series)" %
              (c["title"], c["width"], c["height"], c["inked"], c["curve"], c["colours"]))
        if c["colours"] == 0 or c["curve"] < 20:
            failures.append("chart '%s': %d pixels in its series' colours (expected a drawn curve)" % (c["title"], c["curve"]))
    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print("ok: %d charts, screenshot %s" % (len(result["charts"]), screenshot))


if __name__ == "__main__":
    main()
