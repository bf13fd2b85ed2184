"""``python -m tools.check_pages``: screenshot the report and the MLflow UI in headless Chromium
and fail on a page wider than the window or a broken image.

A developer's check, not run in CI.  It needs Chromium (Debian: ``apt-get install -y
chromium``; ``--chromium`` or ``$CHROMIUM`` names another binary) and nothing beyond Python's
standard library: ``tools.chromium`` starts it and speaks the Chrome DevTools Protocol to it.

In the order things happen: start Chromium headless -> for each page: open it at ``--width``
x ``--height`` CSS pixels, wait until it has loaded and its DOM has settled (the MLflow UI
renders after load) and every image has finished -> measure
``document.documentElement.scrollWidth`` against ``window.innerWidth`` and look for ``<img>``
with ``naturalWidth`` 0 -> save a full-page PNG into ``--out`` -> print one line per page,
then one line per problem; exit 1 when there is one.

Pages: ``--report`` (a report.html, opened as ``file://``; repeatable) and, with
``--mlflow-url`` (a running ``mlflow ui``), the runs table of ``--experiment-name`` (default:
the newest experiment) and the pages of its parent run (the study) and of one trial run;
``--page URL`` adds any other page.

Exit codes: 0 every page fits and every image shows; 1 a problem (listed); 2 bad input
(no Chromium, no such report, MLflow not reachable) or a browser that does not answer.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study.schema import TSNE_PLOT  # no heavy imports: the names of what a study records
from tools.chromium import ChromiumError, DevTools, find_chromium, settle

# Runs in the page; returns what the check needs, as JSON (domSize, pending and readyState
# also tell tools.chromium.settle when the page has settled).
MEASURE_JS = r"""
(() => {
  const doc = document.documentElement;
  const width = window.innerWidth;
  const culprits = [];
  for (const el of document.body ? document.body.querySelectorAll('*') : []) {
    const r = el.getBoundingClientRect();
    if (r.right > width + 1 && r.width > 0) {
      // the outermost overflowing element of each branch says where to look
      if (!culprits.some(c => c.el.contains(el))) culprits.push({el, right: r.right});
    }
  }
  const describe = (el) => {
    let name = el.tagName.toLowerCase();
    if (el.id) name += '#' + el.id;
    if (typeof el.className === 'string' && el.className.trim())
      name += '.' + el.className.trim().split(/\s+/).slice(0, 2).join('.');
    const text = (el.innerText || el.getAttribute('alt') || '').trim().replace(/\s+/g, ' ');
    return name + (text ? ' "' + text.slice(0, 40) + '"' : '');
  };
  const images = Array.from(document.images);
  return JSON.stringify({
    scrollWidth: doc.scrollWidth,
    innerWidth: width,
    height: Math.max(doc.scrollHeight, document.body ? document.body.scrollHeight : 0),
    images: images.length,
    pending: images.filter(i => !i.complete).length,
    broken: images.filter(i => i.complete && i.naturalWidth === 0)
                  .map(i => (i.getAttribute('alt') || i.src || '').slice(0, 80)),
    culprits: culprits.sort((a, b) => b.right - a.right).slice(0, 3)
                      .map(c => describe(c.el) + ' to ' + Math.round(c.right) + 'px'),
    domSize: document.body ? document.body.innerHTML.length : 0,
    readyState: document.readyState,
  });
})()
"""


class CheckError(Exception):
    """Bad input, a page that cannot be opened or a browser too slow to answer: exit 2, one
    line (as for ``tools.chromium.ChromiumError``)."""


@dataclass
class PageResult:
    name: str
    url: str
    screenshot: Path | None
    scroll_width: int
    inner_width: int
    images: int
    broken: list[str]
    culprits: list[str]
    settled: bool

    def problems(self) -> list[str]:
        out = []
        if self.scroll_width > self.inner_width:
            where = f"; widest: {', '.join(self.culprits)}" if self.culprits else ""
            out.append(f"{self.name}: overflows horizontally: {self.scroll_width}px wide in a "
                       f"{self.inner_width}px window{where}")
        out += [f"{self.name}: broken image {alt!r}" for alt in self.broken]
        if not self.settled:
            out.append(f"{self.name}: did not finish loading (DOM still changing or images "
                       "pending); the figures above may be incomplete")
        return out


def check_page(tools: DevTools, name: str, url: str, out: Path, *, width: int, height: int,
               timeout: float, quiet: float = 1.5) -> PageResult:
    """Open ``url`` in a new tab, wait until it settles, measure it and screenshot it."""
    target = tools.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = tools.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    try:
        tools.call("Page.enable", session=session)
        tools.call("Network.enable", session=session)
        tools.call("Emulation.setDeviceMetricsOverride",
                   {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                   session=session)
        reply = tools.call("Page.navigate", {"url": url}, session=session, timeout=timeout)
        if reply.get("errorText"):
            raise CheckError(f"{name}: {url} could not be opened ({reply['errorText']})")
        measured, settled = settle(tools, session, MEASURE_JS, timeout, quiet)
        shot = out / f"{name}.png"
        params: dict[str, Any] = {"format": "png"}
        if measured["height"] > height:  # the whole page, not only the window (at most
            # 16,000 px: Chromium's texture limit); an app that fits its window (the MLflow
            # UI) is shot as it is, since resizing it for the shot makes it render anew
            params |= {"captureBeyondViewport": True,
                       "clip": {"x": 0, "y": 0, "width": max(measured["scrollWidth"], width),
                                "height": min(measured["height"], 16_000), "scale": 1}}
        png = tools.call("Page.captureScreenshot", params, session=session, timeout=timeout)
        shot.write_bytes(base64.b64decode(png["data"]))
    finally:
        tools.call("Target.closeTarget", {"targetId": target})
    return PageResult(name, url, shot, int(measured["scrollWidth"]), int(measured["innerWidth"]),
                      int(measured["images"]), list(measured["broken"]), list(measured["culprits"]),
                      settled)


def mlflow_pages(base: str, experiment: str | None) -> list[tuple[str, str]]:
    """The MLflow UI pages to check: the experiment's runs table, its parent run and a trial run.

    Asks the server's REST API (``/api/2.0/mlflow/...``) which experiment and run to open.
    """
    base = base.rstrip("/")

    def api(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{base}/api/2.0/mlflow/{path}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except OSError as err:  # URLError, HTTPError, connection refused
            raise CheckError(f"MLflow at {base} did not answer {path} ({err}); is `mlflow ui` "
                             "running there?") from None

    if experiment:
        query = urllib.parse.urlencode({"experiment_name": experiment})
        found = api(f"experiments/get-by-name?{query}")["experiment"]
    else:
        listed = api("experiments/search", {"max_results": 50,
                                            "order_by": ["creation_time DESC"]}).get("experiments", [])
        listed = [e for e in listed if e.get("name") != "Default"] or listed
        if not listed:
            raise CheckError(f"MLflow at {base} has no experiment; pass --experiment-name")
        found = listed[0]
    exp_id = found["experiment_id"]
    pages = [(f"mlflow-runs-{_safe(found['name'])}", f"{base}/#/experiments/{exp_id}/runs")]
    runs = api("runs/search", {"experiment_ids": [exp_id], "max_results": 200,
                               "order_by": ["attributes.start_time ASC"]}).get("runs", [])

    def is_trial(run: dict[str, Any]) -> bool:
        return any(t["key"] == "mlflow.parentRunId" for t in run["data"].get("tags", []))

    parent = next((r for r in runs if not is_trial(r)), None)
    trial = next((r for r in runs if is_trial(r)), None)
    for kind, run in (("parent", parent), ("trial", trial)):
        if run is not None:
            run_id = run["info"]["run_id"]
            pages.append((f"mlflow-{kind}-run-{run_id[:8]}",
                          f"{base}/#/experiments/{exp_id}/runs/{run_id}"))
    if trial is not None:  # the artifact viewer showing the trial's t-SNE picture
        run_id = trial["info"]["run_id"]
        pages.append((f"mlflow-trial-tsne-{run_id[:8]}",
                      f"{base}/#/experiments/{exp_id}/runs/{run_id}/artifacts/{TSNE_PLOT}"))
    return pages


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:60]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.check_pages",
        description="Screenshot report.html and MLflow UI pages in headless Chromium; fail on "
        "horizontal overflow or a broken image.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--report", action="append", default=[], metavar="HTML",
                   help="a report.html to check (repeatable)")
    p.add_argument("--mlflow-url", default=None, metavar="URL",
                   help="a running MLflow UI, e.g. http://127.0.0.1:5000: check its runs table "
                        "and a run page")
    p.add_argument("--experiment-name", default=None,
                   help="the MLflow experiment to open (default: the newest)")
    p.add_argument("--page", action="append", default=[], metavar="URL",
                   help="any other page to check (repeatable)")
    p.add_argument("--out", default="page-check", help="folder for the PNG screenshots")
    p.add_argument("--width", type=int, default=1280, help="window width, CSS pixels")
    p.add_argument("--height", type=int, default=900, help="window height, CSS pixels")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each page")
    p.add_argument("--quiet", type=float, default=1.5,
                   help="seconds without a request or a DOM change before a page is measured")
    p.add_argument("--chromium", default=None, help="the Chromium binary (default: on PATH)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        pages: list[tuple[str, str]] = []
        for report in args.report:
            path = Path(report).expanduser().resolve()
            if not path.is_file():
                raise CheckError(f"--report {report}: no such file")
            pages.append((f"report-{_safe(path.parent.name)}", path.as_uri()))
        if args.mlflow_url:
            pages += mlflow_pages(args.mlflow_url, args.experiment_name)
        pages += [(f"page-{i + 1}", url) for i, url in enumerate(args.page)]
        if not pages:
            raise CheckError("nothing to check: give --report, --mlflow-url or --page")
        results = run_checks(pages, Path(args.out), chromium=find_chromium(args.chromium),
                             width=args.width, height=args.height, timeout=args.timeout,
                             quiet=args.quiet)
    except (CheckError, ChromiumError) as err:
        print(f"check_pages: {err}", file=sys.stderr)
        return 2
    problems = [line for r in results for line in r.problems()]
    for r in results:
        print(f"{r.name}: {r.scroll_width}px wide in a {r.inner_width}px window, {r.images} "
              f"image(s), {len(r.broken)} broken -> {r.screenshot}")
    for line in problems:
        print(f"PROBLEM {line}")
    return 1 if problems else 0


def run_checks(pages: list[tuple[str, str]], out: Path, *, chromium: str, width: int = 1280,
               height: int = 900, timeout: float = 60.0, quiet: float = 1.5) -> list[PageResult]:
    """Check each ``(name, url)`` in one Chromium; screenshots go to ``out/<name>.png``."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="check-pages-") as profile:
        tools = DevTools(chromium, Path(profile), width, height)
        try:
            return [check_page(tools, name, url, out, width=width, height=height, timeout=timeout,
                               quiet=quiet) for name, url in pages]
        except TimeoutError as err:
            raise CheckError(f"Chromium did not answer {err} within {timeout:g} s") from None
        finally:
            tools.close()


if __name__ == "__main__":
    sys.exit(main())
