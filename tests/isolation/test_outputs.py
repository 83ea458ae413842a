"""The sandbox kernel's relay cleans what the kernel shows: signed Jupyter messages in, signed messages out."""

from __future__ import annotations

from jupyter_client.session import Session

from jupyter_medagent.contracts.protocols import METRICS_MIME
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
