"""Loads an HTML report in headless Chromium (Debian's `chromium`) over the DevTools protocol
and checks what an air-gapped browser would see: no request but the page itself, no console
message or exception, the summary and the namespace bars rendered. Writes a screenshot.

    python html_report.py REPORT.html SCREENSHOT.png

Prints one JSON line: {"requests": [...], "console": [...], "sections": [...], "bars": N}.
Exit 0 when the page is clean, 1 when it is not, 2 when Chromium could not be driven.
"""

import asyncio
import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import websockets


async def drive(ws_url, page_url, shot):
    async with websockets.connect(ws_url, max_size=64 << 20) as ws:
        ids = iter(range(1, 1 << 30))
        pending = {}
        events = []

        async def call(method, **params):
            n = next(ids)
            await ws.send(json.dumps({"id": n, "method": method, "params": params}))
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("id") == n:
                    if "error" in msg:
                        raise RuntimeError(f"{method}: {msg['error']}")
                    return msg.get("result", {})
                events.append(msg)

        for domain in ("Page", "Network", "Runtime", "Log"):
            await call(f"{domain}.enable")
        await call("Emulation.setDeviceMetricsOverride", width=1280, height=1600,
                   deviceScaleFactor=1, mobile=False)
        await call("Page.navigate", url=page_url)
        loaded = False
        for _ in range(200):
            if any(e.get("method") == "Page.loadEventFired" for e in events):
                loaded = True
                break
            try:
                events.append(json.loads(await asyncio.wait_for(ws.recv(), 0.1)))
            except asyncio.TimeoutError:
                pass
        # Late console messages or requests have a moment to arrive.
        for _ in range(5):
            try:
                events.append(json.loads(await asyncio.wait_for(ws.recv(), 0.1)))
            except asyncio.TimeoutError:
                pass
        probe = await call("Runtime.evaluate", returnByValue=True, expression=(
            "JSON.stringify({sections: [...document.querySelectorAll('section')].map(s => s.id),"
            " bars: document.querySelectorAll('#namespaces svg rect').length,"
            " summary: !!document.querySelector('#summary svg rect')})"))
        found = json.loads(probe["result"]["value"])
        png = await call("Page.captureScreenshot", format="png", captureBeyondViewport=False)
        pathlib.Path(shot).write_bytes(base64.b64decode(png["data"]))
        requests = [e["params"]["request"]["url"] for e in events
                    if e.get("method") == "Network.requestWillBeSent"]
        console = [e["params"] for e in events if e.get("method") in
                   ("Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded")]
        return loaded, requests, console, found


def main():
    report, shot = sys.argv[1], sys.argv[2]
    page_url = pathlib.Path(report).resolve().as_uri()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("chromium is not installed (tests/run.sh installs Debian's chromium)", file=sys.stderr)
        return 2
    profile = tempfile.mkdtemp(prefix="fipsgate-chromium-")
    proc = subprocess.Popen(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update",
         "--disable-default-apps", "--disable-sync", "--metrics-recording-only",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        ws_url = None
        for line in proc.stderr:
            if "DevTools listening on " in line:
                ws_url = line.split("DevTools listening on ", 1)[1].strip()
                break
        if not ws_url:
            print("chromium did not start its DevTools endpoint", file=sys.stderr)
            return 2
        import urllib.request
        port = ws_url.split(":")[2].split("/")[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next(t for t in targets if t.get("type") == "page")
        loaded, requests, console, found = asyncio.run(
            drive(page["webSocketDebuggerUrl"], page_url, shot))
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    print(json.dumps({"loaded": loaded, "requests": requests, "console": console, **found}))
    foreign = [u for u in requests if u != page_url]
    clean = loaded and not foreign and not console and found["summary"] and found["bars"] > 0
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
