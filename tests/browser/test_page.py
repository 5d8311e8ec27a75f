"""The page at / in headless Chromium: draw digits, place points, read the curve, see errors."""

from __future__ import annotations

import io
import itertools
import re
import time
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.browser.conftest import DESKTOP, MODELS_DIR, SCREENSHOTS, missing_prerequisite

WHY_NOT = missing_prerequisite()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")]

# Strokes on the 280x280 pad, in its own pixels: one polyline per stroke.
STROKES = {
    "1": [[(150, 40), (140, 140), (130, 240)]],
    "7": [[(70, 60), (210, 60), (165, 150), (120, 240)]],
}

# JavaScript run in the page: what a canvas shows, in CSS pixels of its box.
PIXEL = """([id, x, y]) => {
  const c = document.getElementById(id), k = c.width / c.clientWidth;
  const at = c.getContext("2d").getImageData(Math.round(x * k), Math.round(y * k), 1, 1);
  return Array.from(at.data);
}"""
COUNT = """([id, rgb, tol]) => {
  const c = document.getElementById(id);
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (Math.abs(d[i] - rgb[0]) <= tol && Math.abs(d[i + 1] - rgb[1]) <= tol &&
        Math.abs(d[i + 2] - rgb[2]) <= tol) n++;
  }
  return n / (c.width / c.clientWidth) ** 2;
}"""
CSS_RGB = """(name) => {
  const hex = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}"""


def draw(page: Any, digit: str, touch: bool = False) -> None:
    """Draw `digit` on the pad with the mouse, or with a finger through real touch events."""
    pad = page.locator("#pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    at = [
        [(box["x"] + x * box["width"] / 280, box["y"] + y * box["height"] / 280) for x, y in s]
        for s in STROKES[digit]
    ]
    cdp = page.context.new_cdp_session(page) if touch else None
    for stroke in at:
        path = [stroke[0]]
        for (x0, y0), (x1, y1) in itertools.pairwise(stroke):
            path += [(x0 + (x1 - x0) * t / 10, y0 + (y1 - y0) * t / 10) for t in range(1, 11)]
        if cdp:
            # Finger-paced timestamps (8 ms apart) and a rest before the lift: Chromium reads
            # timeless synthetic moves as a flick, and then swallows the next tap.
            t = time.time()
            for i, (x, y) in enumerate([*path, path[-1]]):
                t += 0.008 if i < len(path) else 0.2
                cdp.send(
                    "Input.dispatchTouchEvent",
                    {
                        "type": "touchStart" if i == 0 else "touchMove",
                        "touchPoints": [{"x": x, "y": y}],
                        "timestamp": t,
                    },
                )
            cdp.send(
                "Input.dispatchTouchEvent",
                {"type": "touchEnd", "touchPoints": [], "timestamp": t + 0.01},
            )
        else:
            page.mouse.move(*path[0])
            page.mouse.down()
            for x, y in path[1:]:
                page.mouse.move(x, y)
            page.mouse.up()


def predicted(page: Any) -> str:
    page.wait_for_function(
        "document.getElementById('digits').dataset.state === 'done'"
        " && document.getElementById('digit-answer').textContent !== '–'"
    )
    return page.inner_text("#digit-answer")


def plane_xy(page: Any, x: float, y: float) -> dict[str, float]:
    """Where the point (x, y) of the plane is, in CSS pixels of the plane's box."""
    plane = page.locator("#plane")
    extent = float(plane.get_attribute("data-extent"))
    box = plane.bounding_box()
    return {
        "x": (x + extent) / (2 * extent) * box["width"],
        "y": (extent - y) / (2 * extent) * box["height"],
    }


def add_point(page: Any, x: float, y: float, touch: bool = False) -> dict[str, str]:
    """Click (or tap) the plane at (x, y); the new list entry's text and predicted label."""
    count = page.locator("#point-list li").count()
    where = plane_xy(page, x, y)
    if touch:
        page.locator("#plane").tap(position=where)
    else:
        page.locator("#plane").click(position=where)
    page.wait_for_function(
        "(n) => document.querySelectorAll('#point-list li').length > n"
        " || document.getElementById('points').dataset.state === 'error'",
        arg=count,
    )
    assert page.is_hidden("#points-error"), page.inner_text("#points-error")
    entry = page.locator("#point-list li").nth(count)
    return {"text": entry.inner_text(), "label": entry.get_attribute("data-label")}


def close(a: list[int], b: list[int], tol: int = 3) -> bool:
    return all(abs(p - q) <= tol for p, q in zip(a, b, strict=True))


def ready(page: Any) -> None:
    """Models listed, decision regions shaded and curve drawn; or fail with what the page says."""
    for section in ("points", "curve"):
        page.wait_for_selector(f"#{section}[data-state=done], #{section}[data-state=error]")
        assert page.is_hidden(f"#{section}-error"), page.inner_text(f"#{section}-error")
    assert page.locator("#service.ok").count(), page.inner_text("#service")


@pytest.mark.parametrize("model", ["lenet", "mlp"])
def test_mouse_drawn_digits_are_recognised(desktop: Any, base_url: str, model: str) -> None:
    page = desktop
    ready(page)
    page.select_option("#digit-model", model)
    served = {m["name"]: m for m in httpx.get(f"{base_url}/models").json()["models"]}[model]
    meta = page.inner_text("[data-meta-for=digits]")
    assert f"model {model} · version {served['version']}" in meta
    assert served["device"] in meta
    for digit in ("1", "7"):
        page.click("#clear-digit")
        assert page.inner_text("#digit-answer") == "–"
        draw(page, digit)
        assert predicted(page) == digit, f"{model} read a drawn {digit} as {predicted(page)}"
        # The top bar is the predicted digit, and the image the model saw has ink at its centre.
        assert page.locator("#bars li.top .digit").inner_text() == digit
        assert int(page.locator("#bars li.top .pct").inner_text().rstrip("%")) > 50
        centre = page.evaluate(
            """() => {
              const seen = document.getElementById("seen").getContext("2d");
              const red = seen.getImageData(10, 4, 8, 20).data.filter((_, i) => i % 4 === 0);
              return Math.max(...red);
            }"""
        )
        assert centre > 200


def test_a_finger_draws_at_360_px(phone: Any) -> None:
    page = phone
    ready(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "page overflows 360 px"
    draw(page, "7", touch=True)
    assert predicted(page) == "7"
    page.tap("#clear-digit")
    draw(page, "1", touch=True)
    assert predicted(page) == "1"


def test_points_take_the_colour_of_their_cluster(desktop: Any) -> None:
    page = desktop
    ready(page)
    colour = {"0": page.evaluate(CSS_RGB, "--class0"), "1": page.evaluate(CSS_RGB, "--class1")}
    for (x, y), label in {(2, 2): "0", (-2, -2): "1", (2.6, 1.4): "0", (-1.3, -2.7): "1"}.items():
        point = add_point(page, x, y)
        assert point["label"] == label, point["text"]
        where = plane_xy(page, x, y)
        shown = page.evaluate(PIXEL, ["plane", where["x"], where["y"]])
        assert close(shown[:3], colour[label]), f"point {x, y} drawn {shown}, not {colour[label]}"
    # The shading leans to each cluster's colour on its side of the boundary.
    warm = page.evaluate(PIXEL, ["plane", *plane_xy(page, 3.5, 3.5).values()])
    cool = page.evaluate(PIXEL, ["plane", *plane_xy(page, -3.5, -3.5).values()])
    assert warm[0] > cool[0] + 20 and cool[2] > warm[2] + 20, (warm, cool)
    # Keyboard: focus the plane, move the cross to (2, 2) with Shift+arrows, Enter adds a point.
    page.focus("#plane")
    for key in ("Shift+ArrowRight", "Shift+ArrowRight", "Shift+ArrowUp", "Shift+ArrowUp"):
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    entry = page.locator("#point-list li").nth(4)
    entry.wait_for()
    assert entry.get_attribute("data-label") == "0"
    assert entry.inner_text().startswith("(2.00, 2.00)")
    page.click("#clear-points")
    assert page.locator("#point-list li").count() == 0


def test_the_curve_is_drawn_over_its_training_data(desktop: Any) -> None:
    page = desktop
    ready(page)
    assert page.is_hidden("#curve-error")
    line = page.evaluate(COUNT, ["plot", page.evaluate(CSS_RGB, "--curve"), 40])
    assert line > 300, f"only {line} px of the curve's colour"
    # 200 training points: grey dots drawn at alpha 0.55 over white (as app.js draws them).
    grey = [round(255 - 0.55 * (255 - v)) for v in page.evaluate(CSS_RGB, "--data")]
    dots = page.evaluate(COUNT, ["plot", grey, 12])
    assert dots > 200, f"only {dots} px of training data"
    # Hovering reads the model's y off the curve; the trained curve is y = x^2 + 0.1.
    box = page.locator("#plot").bounding_box()
    read = []
    for fraction in (0.15, 0.5, 0.8):
        page.hover("#plot", position={"x": fraction * box["width"], "y": box["height"] / 2})
        text = page.inner_text("#curve-readout")
        x, y = (float(v.replace("−", "-")) for v in re.findall(r"−?\d+\.\d+", text))
        assert abs(y - (x * x + 0.1)) < 0.05, text
        read.append(x)
    assert read == sorted(read) and read[0] < -0.5 and read[-1] > 0.4, read
    page.focus("#plot")
    page.keyboard.press("End")
    assert page.inner_text("#curve-readout").startswith("x = 1.00")


def test_errors_and_an_unreachable_service_are_shown(desktop: Any) -> None:
    page = desktop
    ready(page)
    blank = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(blank, format="PNG")
    page.set_input_files(
        "#digit-file",
        files=[{"name": "blank.png", "mimeType": "image/png", "buffer": blank.getvalue()}],
    )
    page.wait_for_selector("#digits[data-state=error]")
    error = page.inner_text("#digits-error")
    assert "422" in error and "no digit" in error, error

    page.route("**/predict/points", lambda route: route.abort("connectionrefused"))
    page.locator("#plane").click(position=plane_xy(page, 2, 2))
    page.wait_for_selector("#points[data-state=error]")
    assert "unreachable" in page.inner_text("#points-error")
    assert "unreachable" in page.inner_text("#service.bad")
    page.unroute("**/predict/points")
    page.click("#service button")  # Retry: everything loads again
    page.wait_for_selector("#points[data-state=done]")
    ready(page)
    add_point(page, 2, 2)


def test_an_api_key_is_asked_for_and_sent(open_page: Any) -> None:
    from tests.serving.conftest import live_server

    with live_server(MODELS_DIR, env={"SERVING_API_KEYS": "page-test-key"}) as (url, _):
        page = open_page(url, DESKTOP)
        page.wait_for_selector("#points[data-state=error]")
        assert "401" in page.inner_text("#points-error")
        assert page.is_visible("#key-form")
        page.fill("#api-key", "not-the-key")
        page.click("#key-form button")
        page.wait_for_function(
            "document.getElementById('points-error').textContent.includes('403')"
        )
        page.fill("#api-key", "page-test-key")
        page.click("#key-form button")
        page.wait_for_selector("#points[data-state=done]")
        ready(page)


def scene(page: Any, touch: bool) -> None:
    """A 7 drawn, points in both clusters, the curve read at x = 0.5."""
    ready(page)
    draw(page, "7", touch=touch)
    predicted(page)
    for x, y in ((2, 2), (-2, -2), (1.2, 2.8), (-2.9, -1.1), (0.6, -0.4)):
        add_point(page, x, y, touch=touch)
    plot = page.locator("#plot")
    plot.scroll_into_view_if_needed()
    box = plot.bounding_box()
    plot.hover(position={"x": 0.75 * box["width"], "y": box["height"] / 2})
    page.wait_for_function("document.getElementById('curve-readout').textContent.startsWith('x =')")


def test_screenshots(desktop: Any, phone: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    scene(desktop, touch=False)
    desktop.screenshot(path=SCREENSHOTS / "page-desktop.png", full_page=True, animations="disabled")
    scene(phone, touch=True)
    phone.screenshot(
        path=SCREENSHOTS / "page-360px.png", full_page=True, scale="css", animations="disabled"
    )
