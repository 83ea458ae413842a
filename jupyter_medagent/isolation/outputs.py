"""What a sandboxed kernel shows, made safe to render in the user's browser, outside the kernel.

JupyterLab renders the outputs a notebook's kernel produces in this session as trusted: HTML with its
scripts and event handlers, JavaScript, SVG with script. Code a model wrote (or a hook it planted that
prints into the user's later cells) must not reach the page's session, which can open a terminal on the
host. The relay of the "Python 3 (medagent sandbox)" kernel passes every message from the kernel through
``rewrite``: HTML, Markdown and SVG are cleaned by nh3 (no script, no event handlers, no iframes, objects or
forms) and keep no URL the browser would fetch by itself: a page fetching ``http://127.0.0.1:<any port>/``
sends the Jupyter server's login cookie along (cookies are per host, not per port), and a remote one carries
out whatever the kernel put in the URL. Images stay only as ``data:`` rasters, links only as ``#fragment``
(the text of a link stays, its target goes), CSS ``url()`` only to ``#id`` inside an SVG drawing; Markdown is
rendered to HTML here and cleaned as HTML, so its image syntax cannot name a remote image. Every other kind of output but plain text, JSON (medagent's own
metrics and findings included), LaTeX and raster images is dropped, widget messages (whose front end runs
code the kernel sends) are dropped, and the message is signed again with the connection's key. Messages
whose signature is wrong are dropped.
"""

from __future__ import annotations

import hmac
import json

import re

import nh3
from markdown_it import MarkdownIt

from jupyter_medagent.contracts.mime import MEDAGENT_PREFIX

# Output kinds passed on as they are: nothing in them runs in the page.
INERT = frozenset({"text/plain", "application/json", "text/latex", "image/png", "image/jpeg", "image/gif",
                   "image/webp", "image/bmp"})
CLEANED = frozenset({"text/html", "text/markdown", "image/svg+xml"})
# Messages whose content carries MIME bundles: iopub outputs, and the pager payloads and help of shell replies.
BUNDLE_MESSAGES = frozenset({"display_data", "execute_result", "update_display_data"})
# The widget protocol: the front end builds views (anywidget runs JavaScript modules) from what these carry.
DROPPED_MESSAGES = frozenset({"comm_open", "comm_msg", "comm_close"})
REWRITTEN_MESSAGES = BUNDLE_MESSAGES | DROPPED_MESSAGES | {"inspect_reply", "execute_reply"}
DELIMITER = b"<IDS|MSG>"

_HTML_TAGS = nh3.ALLOWED_TAGS - {"img"} | {"table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption",
                                           "colgroup", "col", "div", "span", "p", "pre", "code", "img", "br", "hr",
                                           "details", "summary"}
_HTML_ATTRIBUTES = {"*": {"class", "title", "lang", "align", "colspan", "rowspan", "border"},
                    "a": {"href"}, "img": {"src", "alt", "width", "height"}}
_SVG_TAGS = {"svg", "g", "defs", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "text",
             "tspan", "clipPath", "linearGradient", "radialGradient", "stop", "title", "desc", "symbol", "use"}
_SVG_ATTRIBUTES = {"*": {"id", "class", "transform", "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width",
                         "stroke-opacity", "stroke-linecap", "stroke-linejoin", "stroke-dasharray", "stroke-miterlimit",
                         "opacity", "clip-path", "clip-rule", "font-family", "font-size", "font-weight",
                         "text-anchor", "dominant-baseline", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r",
                         "rx", "ry", "dx", "dy", "d", "points", "width", "height", "viewBox", "offset",
                         "stop-color", "stop-opacity", "gradientUnits", "gradientTransform", "clipPathUnits",
                         "preserveAspectRatio", "xmlns", "version", "style"}}
# What matplotlib's SVG puts in style attributes; nothing that loads or runs anything.
_SVG_STYLE = {"fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-opacity", "stroke-linecap",
              "stroke-linejoin", "stroke-dasharray", "stroke-dashoffset", "stroke-miterlimit", "opacity", "font",
              "font-family", "font-size", "font-style", "font-weight", "text-anchor", "white-space"}


# Images the page may show: rasters carried in the output itself (what matplotlib and medagent's sidebar use).
_DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif|webp|bmp);base64,[A-Za-z0-9+/=\s]*", re.I)
_FRAGMENT = re.compile(r"#[\w.:-]*")
# url(...) in a style or presentation attribute: only a reference inside the drawing (a gradient, a clip path).
_CSS_URL = re.compile(r"url\s*\(\s*(['\"]?)(.*?)\1\s*\)", re.I | re.S)
_CSS_ATTRIBUTES = frozenset({"style", "fill", "stroke", "clip-path"})
_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable("table")


def _no_fetch(tag: str, attribute: str, value: str) -> str | None:
    """nh3's per-attribute hook: drop every value that would make the browser load something."""
    if attribute == "src":
        return value if _DATA_IMAGE.fullmatch(value.strip()) else None
    if attribute in ("href", "xlink:href"):
        return value if _FRAGMENT.fullmatch(value.strip()) else None
    if attribute in _CSS_ATTRIBUTES:
        targets = _CSS_URL.findall(value)
        if "\\" in value or value.lower().count("url") != len(targets):  # a CSS escape can spell url(
            return None
        if not all(_FRAGMENT.fullmatch(target.strip()) for _, target in targets):
            return None
    return value


def clean_html(html: str) -> str:
    return nh3.clean(html, tags=_HTML_TAGS, attributes=_HTML_ATTRIBUTES, url_schemes={"data"},
                     link_rel="noopener noreferrer nofollow", attribute_filter=_no_fetch)


def clean_markdown(markdown: str) -> str:
    """Markdown rendered to HTML here and cleaned, then handed to the page as one raw HTML block: the
    newlines become character references, so no blank line ends the block and lets the page's own Markdown
    parser read the rest (``![x](http://...)`` inside a code span, say) as Markdown again."""
    html = clean_html(_MARKDOWN.render(markdown))
    return "<div>" + html.replace("\r", "").replace("\n", "&#10;") + "</div>"


def clean_svg(svg: str) -> str:
    """The drawing without script, event handlers, links or embedded documents (``use`` may point only
    inside the drawing: nh3 drops its ``href``, so references to shared shapes are lost rather than kept)."""
    return nh3.clean(svg, tags=_SVG_TAGS, attributes=_SVG_ATTRIBUTES, url_schemes=set(), link_rel=None,
                     filter_style_properties=_SVG_STYLE, attribute_filter=_no_fetch)


def clean_bundle(data: dict) -> dict:
    """A MIME bundle with only what cannot run in the page: inert kinds as they are, HTML/Markdown/SVG cleaned."""
    kept = {}
    for mime, value in data.items():
        if mime in INERT or (mime.startswith(MEDAGENT_PREFIX) and mime.endswith("+json")):
            kept[mime] = value
        elif mime in CLEANED and isinstance(value, (str, list)):
            text = "".join(value) if isinstance(value, list) else value
            kept[mime] = {"image/svg+xml": clean_svg, "text/markdown": clean_markdown}.get(mime, clean_html)(text)
    if not kept:
        kept["text/plain"] = "[output of a kind the sandbox kernel does not show: " + ", ".join(sorted(data)) + "]"
    return kept


def clean_outputs(outputs: list[dict]) -> list[dict]:
    """nbformat output dicts with their MIME bundles cleaned: what a page shows of a model cell's outputs
    outside the sandbox relay (the stored notebook, the timeline and the mirrored cells of a run)."""
    return [{**o, "data": clean_bundle(o["data"])} if isinstance(o.get("data"), dict) else o for o in outputs]


def clean_content(msg_type: str, content: dict) -> dict | None:
    """The message's content made inert, or None to drop the message."""
    if msg_type in DROPPED_MESSAGES:
        return None
    if msg_type in BUNDLE_MESSAGES and isinstance(content.get("data"), dict):
        return {**content, "data": clean_bundle(content["data"])}
    if msg_type == "inspect_reply" and isinstance(content.get("data"), dict):
        return {**content, "data": clean_bundle(content["data"])}
    if msg_type == "execute_reply" and isinstance(content.get("payload"), list):
        payload = [{**item, "data": clean_bundle(item["data"])} if isinstance(item, dict)
                   and isinstance(item.get("data"), dict) else item for item in content["payload"]]
        return {**content, "payload": payload}
    return content


class Rewriter:
    """Checks and rewrites the kernel's messages (zmq multipart frames) with the connection's key."""

    def __init__(self, key: str | bytes, signature_scheme: str = "hmac-sha256"):
        from jupyter_client.session import Session

        self.session = Session(key=key.encode() if isinstance(key, str) else key, signature_scheme=signature_scheme)

    def rewrite(self, frames: list[bytes]) -> list[bytes] | None:
        """The frames to pass on (re-signed when the content changed), or None to drop the message."""
        try:
            split = frames.index(DELIMITER)
        except ValueError:
            return frames  # not a Jupyter message (an iopub subscription, the heartbeat)
        idents, (signature, *parts) = frames[:split + 1], frames[split + 1:]
        if len(parts) < 4 or not hmac.compare_digest(signature, self.session.sign(parts[:4])):
            return None
        try:
            msg_type = str(json.loads(parts[0]).get("msg_type"))
            if msg_type not in REWRITTEN_MESSAGES:
                return frames
            content = json.loads(parts[3])
        except (ValueError, AttributeError):
            return None
        cleaned = clean_content(msg_type, content) if isinstance(content, dict) else None
        if cleaned is None:
            return None
        if cleaned is content:
            return frames
        parts[3] = self.session.pack(cleaned)
        return [*idents, self.session.sign(parts[:4]), *parts]
