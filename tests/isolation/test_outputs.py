"""The sandbox kernel's relay cleans what the kernel shows: signed Jupyter messages in, signed messages out."""

from __future__ import annotations

from html.parser import HTMLParser

from jupyter_client.session import Session
from markdown_it import MarkdownIt

from jupyter_medagent.contracts.mime import METRICS_MIME
from jupyter_medagent.isolation.outputs import Rewriter

KEY = b"0123456789abcdef"
SCRIPT = "<script>fetch('/api/terminals')</script><img src=x onerror=\"alert(1)\"><a href='javascript:alert(2)'>x</a>"
TABLE = '<table class="dataframe"><thead><tr><th>label</th></tr></thead><tbody><tr><td>LV</td></tr></tbody></table>'


def _frames(session: Session, msg_type: str, content: dict) -> list[bytes]:
    return session.serialize(session.msg(msg_type, content), ident=[b"iopub"])


def _read(session: Session, frames: list[bytes]) -> dict:
    idents, rest = session.feed_identities(frames)
    return session.deserialize(rest)  # checks the signature


def test_html_is_cleaned_javascript_dropped_tables_kept_and_the_message_signed_again():
    session, rewriter = Session(key=KEY), Rewriter(KEY)
    data = {"text/html": SCRIPT + TABLE, "application/javascript": "alert(3)", "text/plain": "<table>",
            "image/svg+xml": '<svg onload="alert(4)"><script>alert(5)</script><rect width="3"/></svg>',
            "text/markdown": "**bold** <img src=x onerror=alert(6)>", "application/vnd.custom+js": "x",
            METRICS_MIME: {"dice": 0.91}}
    for msg_type in ("display_data", "execute_result", "update_display_data"):
        out = _read(session, rewriter.rewrite(_frames(session, msg_type, {"data": data, "metadata": {}})))
        shown = out["content"]["data"]
        assert set(shown) == {"text/html", "text/plain", "image/svg+xml", "text/markdown", METRICS_MIME}
        assert shown[METRICS_MIME] == {"dice": 0.91}  # what the agent reads from the kernel
        html = shown["text/html"]
        assert "<script" not in html and "onerror" not in html and "javascript:" not in html
        assert "<td>LV</td>" in html and "class=\"dataframe\"" in html
        assert "onload" not in shown["image/svg+xml"] and "script" not in shown["image/svg+xml"]
        assert "<rect" in shown["image/svg+xml"] and "onerror" not in shown["text/markdown"]


def test_pager_payloads_are_cleaned_and_widget_messages_and_forged_signatures_dropped():
    session, rewriter = Session(key=KEY), Rewriter(KEY)
    reply = _frames(session, "execute_reply", {"status": "ok", "payload": [
        {"source": "page", "data": {"text/html": SCRIPT}, "start": 0}]})
    assert "<script" not in _read(session, rewriter.rewrite(reply))["content"]["payload"][0]["data"]["text/html"]
    widget = _frames(session, "comm_open", {"comm_id": "1", "target_name": "jupyter.widget",
                                            "data": {"state": {"_esm": "fetch('/api/terminals')"}}})
    assert rewriter.rewrite(widget) is None
    forged = _frames(Session(key=b"another key"), "display_data", {"data": {"text/html": SCRIPT}, "metadata": {}})
    assert rewriter.rewrite(forged) is None
    stream = _frames(session, "stream", {"name": "stdout", "text": "<script>"})
    assert rewriter.rewrite(stream) == stream  # plain text, passed on as it is


CANARY = "http://127.0.0.1:46991"
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def test_no_url_the_browser_would_fetch_survives_html_markdown_or_svg():
    """R2/R4: an <img src=http://127.0.0.1:PORT> makes the browser send the Jupyter login cookie to PORT."""
    session, rewriter = Session(key=KEY), Rewriter(KEY)
    html = (f'<img src="{CANARY}/html-img"><img src="//127.0.0.1:46991/proto"><img src="/api/terminals">'
            f'<img srcset="{CANARY}/srcset 1x"><img src="data:image/svg+xml,<svg/>">'
            f'<div style="background:url({CANARY}/css)">css</div><a href="{CANARY}/link">a link</a>'
            f'<a href="#results">results</a><img src="{PNG}" alt="mask overlay">')
    markdown = (f"![m]({CANARY}/markdown-img)\n\n![r][ref]\n\n[ref]: {CANARY}/markdown-ref\n\n<{CANARY}/auto>\n\n"
                f"`code` with ![c]({CANARY}/code)\n\n```\n\n![f]({CANARY}/fence)\n```\n\n| a |\n|---|\n| **1** |\n")
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg"><image href="{CANARY}/svg-image"/>'
           f'<use href="{CANARY}/svg-use#a"/><rect fill="url({CANARY}/fill#g)" width="3"/>'
           f'<rect style="fill: u\\72l({CANARY}/escaped)" width="4"/><circle fill="url(#grad)" r="2"/></svg>')
    out = _read(session, rewriter.rewrite(_frames(session, "display_data", {
        "data": {"text/html": html, "text/markdown": markdown, "image/svg+xml": svg}, "metadata": {}})))
    shown = out["content"]["data"]
    # What the page's own Markdown parser makes of the Markdown output: still only the cleaned HTML.
    reparsed = MarkdownIt("commonmark", {"html": True}).render(shown["text/markdown"])
    for mime, text in [*shown.items(), ("reparsed markdown", reparsed)]:
        values = _attribute_values(text)
        assert not [v for v in values if "127.0.0.1" in v or "/api/" in v or "svg+xml" in v], (mime, text)
        assert "srcset" not in text and "<image" not in text
    assert f'<img src="{PNG}" alt="mask overlay">' in shown["text/html"] and 'href="#results"' in shown["text/html"]
    assert ">a link</a>" in shown["text/html"]  # the link's text stays, its target goes
    assert reparsed.count("<img") == shown["text/markdown"].count("<img") == 3  # the images, with no src
    assert "\n" not in shown["text/markdown"] and "<strong>1</strong>" in shown["text/markdown"]
    assert f"![f]({CANARY}/fence)" in shown["text/markdown"]  # the fence's text, shown as text
    assert 'fill="url(#grad)"' in shown["image/svg+xml"] and shown["image/svg+xml"].count("<rect") == 2


def _attribute_values(html: str) -> list[str]:
    values: list[str] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            values.extend(value or "" for _, value in attrs)

    Collect().feed(html)
    return values
