"""Read whatever QuickBooks Online or Intuit's OAuth server put on the wire.

QuickBooks answers JSON when asked (``Accept: application/json``) but not always: faults, the throttle
answer and CDC replies have all been seen as XML ``IntuitResponse`` documents; a 401 comes as JSON with
lower-case keys (``fault``/``error``/``message``); gateways answer HTML pages (502/503) and some 400s
carry only an XML declaration. The Content-Type header is not to be trusted either: it has carried
``application/xml;charset=UTF-8`` where SDKs compared against ``application/xml`` and stopped parsing
(intuit/QuickBooks-V3-PHP-SDK#521). Sources: docs/platform-facts.md ("QuickBooks: faults") and the
real replies in ``tests/fixtures/qbo_replies.json``.

Bytes are decoded by :func:`decode_body` whatever the charset says (a BOM of UTF-8/16/32, UTF-16/32 without a
BOM told by its NULs, strict UTF-8, the declared charset, Windows-1252, Latin-1), and :func:`binary_kind` tells
binary bodies (gzip, PNG, zip... by their leading bytes, else NULs or control characters) from text, so that
nobody reads garbage as a reply.

So this module parses a body **by what it is**:

* ``{`` or ``[`` first → JSON (a JSON object or array is returned, anything else → ``None``);
* ``<`` first → XML, unless it is an HTML page or has a DOCTYPE (a DTD can declare entities: billion
  laughs and external entities are refused without expanding anything) → ``None``;
* empty, truncated, HTML or anything else → ``None``. :func:`parse_body` never raises.

An XML ``IntuitResponse`` is converted to the JSON shape QuickBooks would have sent:

* namespaces are stripped from tags and attributes;
* attributes become keys (``<Fault type=..>`` → ``"type"``, ``<Error code=.. element=..>`` →
  ``"code"``/``"element"``, ``status="Deleted"``, ``domain``, ``startPosition``...);
* element text becomes a string (an element with attributes and text, like
  ``<CustomerRef name="X">58</CustomerRef>``, becomes ``{"name": "X", "value": "58"}``, the JSON shape
  of a reference); an empty leaf becomes ``""``;
* repeated elements, and the elements that are always lists in JSON (:data:`LIST_ELEMENTS`, the
  ``QueryResponse`` elements inside ``CDCResponse`` and the entity lists inside ``QueryResponse``),
  become lists;
* the ``IntuitResponse`` root is unwrapped: ``{"Fault": {...}, "time": ...}``,
  ``{"CDCResponse": [...]}``, ``{"Invoice": {...}}``.

Values read from XML stay strings (``"4495.16"``, ``"false"``): callers convert what they use.
"""

from __future__ import annotations

import codecs
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "LIST_ELEMENTS",
    "binary_kind",
    "decode_body",
    "deleted_objects",
    "is_html",
    "media_type",
    "normalize_keys",
    "parse_body",
]

#: Elements that the JSON form of the API always gives as arrays, even with one member.
LIST_ELEMENTS: frozenset[str] = frozenset(
    {
        "Error",
        "Line",
        "LinkedTxn",
        "TaxLine",
        "BatchItemResponse",
        "BatchItemRequest",
        "CDCResponse",
        "CustomField",
        "AttachableRef",
    }
)

_XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_HTML_START = re.compile(r"<(?:!doctype\s+html|html[\s>]|head[\s>]|body[\s>])", re.IGNORECASE)
_DTD = re.compile(r"<!\s*(?:doctype|entity)", re.IGNORECASE)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.IGNORECASE)
_XML_DECL_ENCODING = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")


def media_type(content_type: str | None) -> str:
    """``"application/xml;charset=UTF-8"`` → ``"application/xml"`` (lower case, parameters dropped)."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = _CHARSET.search(content_type)
    return m.group(1) if m else None


def _known_codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


#: Leading bytes of binary formats that a gateway or a misrouted request may answer with.
_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"PK\x03\x04", "zip"),
    (b"%PDF-", "PDF"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"(\xb5/\xfd", "zstd"),
    (b"\x00asm", "wasm"),
)


def _utf_without_bom(raw: bytes) -> str | None:
    """The UTF-32/UTF-16 codec of a BOM-less body whose first characters are ASCII (RFC 4627's rule,
    widened to any position: NULs at every other byte), else None."""
    head = raw[:64]
    if len(head) >= 4 and head[:3] == b"\x00\x00\x00" and head[3]:
        return "utf-32-be"
    if len(head) >= 4 and head[0] and head[1:4] == b"\x00\x00\x00":
        return "utf-32-le"
    if len(head) < 2 or b"\x00" not in head:
        return None
    even, odd = head[0::2], head[1::2]
    if even.count(0) >= len(even) * 0.6 and odd.count(0) <= len(odd) * 0.1:
        return "utf-16-be"
    if odd.count(0) >= len(odd) * 0.6 and even.count(0) <= len(even) * 0.1:
        return "utf-16-le"
    return None


#: The characters :func:`_control_ratio` counts: C0 controls but tab, CR, LF and form feed; DEL and the C1 controls;
#: the replacement character (bytes that did not decode).
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]")


def _control_ratio(text: str) -> float:
    sample = text[:4096]
    if not sample:
        return 0.0
    return len(_CONTROL.findall(sample)) / len(sample)


def binary_kind(body: bytes | str | None) -> str | None:
    """What binary format a body is, or None for text.

    In: the raw body. Out: a short name (``"gzip"``, ``"PNG"``, ``"zip"``, ``"PDF"``...) from the leading bytes,
    ``"binary"`` for other bytes with NULs (not UTF-16/32) or that decode to control characters (more than 5 %
    of the first 4 KB),
    None for text (a UTF-16/32 body with or without a BOM is text). Never raises.
    """
    if not body or isinstance(body, str):
        return None
    raw = bytes(body)
    for magic, name in _BINARY_MAGIC:
        if raw.startswith(magic):
            return name
    bom = raw.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if not bom and _utf_without_bom(raw) is None and b"\x00" in raw[:4096]:
        return "binary"
    return "binary" if _control_ratio(decode_body(raw)) > 0.05 else None


def decode_body(body: bytes | str | None, content_type: str | None = None) -> str:
    """Turn a body into text. Never raises.

    In: the raw body (bytes or already text, ``None`` for none) and the Content-Type header (only its
    ``charset`` is used, as a hint). Out: text. Tries, in order: a byte-order mark (UTF-8, UTF-16, UTF-32),
    UTF-16/32 without a BOM (told by the NUL bytes around ASCII characters), strict UTF-8, the charset of
    the header or of the XML declaration, Windows-1252, then Latin-1 (which decodes any byte), so a body in
    a wrong or unnamed 8-bit encoding still reads.
    """
    if body is None:
        return ""
    if isinstance(body, str):
        return body
    raw = bytes(body)
    if raw.startswith(codecs.BOM_UTF8):
        return raw[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if raw.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return raw.decode("utf-32", errors="replace")
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16", errors="replace")
    bomless = _utf_without_bom(raw)
    if bomless is not None:
        width = 4 if bomless.startswith("utf-32") else 2
        return raw[: len(raw) - len(raw) % width].decode(bomless, errors="replace")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = _charset(content_type)
    if declared is None:
        m = _XML_DECL_ENCODING.match(raw)
        declared = m.group(1).decode("ascii") if m else None
    codec = _known_codec(declared)
    if codec and codec != "utf-8":
        try:
            return raw.decode(codec)
        except (UnicodeDecodeError, ValueError):
            pass
    try:
        return raw.decode("cp1252")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def is_html(text: str) -> bool:
    """True when the text looks like an HTML page (a gateway or maintenance page)."""
    head = text.lstrip("\ufeff \t\r\n")[:2048]
    if head.startswith("<?xml"):
        head = head[head.find("?>") + 2 :].lstrip() if "?>" in head else head
    return bool(_HTML_START.match(head)) or bool(re.search(r"<html[\s>]", head[:512], re.IGNORECASE))


def parse_body(body: bytes | str | None, content_type: str | None = None) -> Any | None:
    """Parse a QuickBooks / Intuit OAuth reply body into JSON-shaped Python data.

    In: the body as bytes or text and, optionally, the Content-Type header (used only for the
    charset; the format is judged from the body itself). Out: a ``dict`` or ``list`` in the shape the
    JSON API uses (XML is converted, see the module docstring), or ``None`` for an empty, truncated,
    HTML, DTD-carrying or otherwise unreadable body. Never raises. Keys are returned as sent; use
    :func:`normalize_keys` to read lower-case fault keys the same as the documented ones.
    """
    try:
        text = decode_body(body, content_type)
    except Exception:  # decode_body does not raise; belt and braces for "never raise"
        return None
    s = text.lstrip("\ufeff \t\r\n")
    if not s:
        return None
    if s[0] in "{[":
        try:
            value = json.loads(s)
        except (ValueError, RecursionError):
            return None
        return value if isinstance(value, dict | list) else None
    if s[0] == "<":
        return _parse_xml(s)
    return None


def _parse_xml(text: str) -> Any | None:
    if _DTD.search(text) or is_html(text):
        return None
    try:
        root = ET.fromstring(text)
    except (ET.ParseError, ValueError, RecursionError):
        return None
    tag = _local(root.tag)
    if tag.lower() == "html":
        return None
    try:
        converted = _convert(root)
    except RecursionError:
        return None
    if tag == "IntuitResponse":
        return converted if isinstance(converted, dict) else {}
    return {tag: converted}


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1] if name.startswith("{") else name


def _convert(el: ET.Element) -> Any:
    """One element → its JSON value (see the module docstring for the rules)."""
    if el.attrib.get(f"{{{_XSI_NS}}}nil") == "true":
        return None
    tag = _local(el.tag)
    attrs = {_local(k): v for k, v in el.attrib.items() if not k.startswith(f"{{{_XSI_NS}}}")}
    children = list(el)
    text = (el.text or "").strip()
    if not children and not attrs:
        return text
    out: dict[str, Any] = dict(attrs)
    if not children:
        if text:
            out["value"] = text
        return out
    repeated: set[str] = set()
    for child in children:
        key = _local(child.tag)
        value = _convert(child)
        always_list = key in LIST_ELEMENTS or tag == "QueryResponse"
        if always_list:
            existing = out.get(key)
            if isinstance(existing, list):
                existing.append(value)
            else:
                out[key] = [value]
        elif key in out:
            if key in repeated:
                out[key].append(value)
            else:
                out[key] = [out[key], value]
                repeated.add(key)
        else:
            out[key] = value
    return out


# Keys read case-insensitively. Envelope keys anywhere; fault keys only inside a Fault, so that an
# OAuth answer's ``{"error": "invalid_grant"}`` or an entity's own keys are never renamed.
_ENVELOPE_KEYS = {
    "fault": "Fault",
    "batchitemresponse": "BatchItemResponse",
    "queryresponse": "QueryResponse",
    "cdcresponse": "CDCResponse",
    "intuitresponse": "IntuitResponse",
    "bid": "bId",
    "time": "time",
}
_FAULT_KEYS = {"error": "Error", "type": "type"}
_ERROR_KEYS = {"message": "Message", "detail": "Detail", "code": "code", "element": "element"}


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    # Two spellings of one key ("fault": null next to "Fault": {...}): the non-null one wins.
    if key in out and out[key] is not None and value is None:
        return
    out[key] = value


def _norm_error(err: Any) -> Any:
    if not isinstance(err, Mapping):
        return err
    out: dict[str, Any] = {}
    for k, v in err.items():
        _put(out, _ERROR_KEYS.get(k.lower(), k) if isinstance(k, str) else k, v)
    return out


def _norm_fault(fault: Any) -> Any:
    if isinstance(fault, list):  # several Faults in a list
        return [_norm_fault(f) for f in fault]
    if not isinstance(fault, Mapping):
        return fault
    out: dict[str, Any] = {}
    for k, v in fault.items():
        key = _FAULT_KEYS.get(k.lower(), k) if isinstance(k, str) else k
        if key == "Error":
            v = [_norm_error(e) for e in v] if isinstance(v, list) else _norm_error(v)
        _put(out, key, v)
    return out


def normalize_keys(data: Any) -> Any:
    """Return a copy of parsed data with the fault and envelope keys in their documented spelling.

    In: what :func:`parse_body` returned. Out: the same shape where ``fault``/``FAULT`` → ``Fault``,
    and inside a Fault ``error`` → ``Error``, ``message`` → ``Message``, ``detail`` → ``Detail``,
    ``Code`` → ``code``, ``Element`` → ``element``, ``Type`` → ``type``; envelope keys
    (``batchItemResponse``, ``queryResponse``, ``cdcresponse``, ``bid``) likewise. The 401 body
    QuickBooks sends uses the lower-case spelling (docs/platform-facts.md, "QuickBooks: faults"). Other keys are
    left alone.
    """
    if isinstance(data, list):
        return [normalize_keys(x) if isinstance(x, list | Mapping) else x for x in data]
    if not isinstance(data, Mapping):
        return data
    out: dict[str, Any] = {}
    for k, v in data.items():  # (scalars are not walked into: a batch answer is mostly scalars)
        key = _ENVELOPE_KEYS.get(k.lower(), k) if isinstance(k, str) else k
        if key == "Fault":
            v = _norm_fault(v)
        elif isinstance(v, list | Mapping):
            v = normalize_keys(v)
        _put(out, key, v)
    return out


def _query_responses(data: Any) -> Iterator[Mapping[str, Any]]:
    if not isinstance(data, Mapping):
        return
    cdc = data.get("CDCResponse")
    for block in cdc if isinstance(cdc, list) else [cdc] if isinstance(cdc, Mapping) else []:
        if isinstance(block, Mapping):
            qr = block.get("QueryResponse")
            for q in qr if isinstance(qr, list) else [qr]:
                if isinstance(q, Mapping):
                    yield q
    qr = data.get("QueryResponse")
    for q in qr if isinstance(qr, list) else [qr]:
        if isinstance(q, Mapping):
            yield q


def deleted_objects(data: Any) -> list[tuple[str, str]]:
    """The objects a CDC or query answer reports as deleted, as ``(entity, Id)`` pairs.

    In: parsed data (JSON or converted XML, any key spelling). Out: for example
    ``[("Invoice", "11469")]``. Deletion is judged **only** from ``"status": "Deleted"`` on the object
    (the PHP SDK dropped that attribute and missed deletions; docs/platform-facts.md, "QuickBooks: change data
    capture (CDC)").
    """
    found: list[tuple[str, str]] = []
    for q in _query_responses(normalize_keys(data)):
        for entity, objs in q.items():
            for obj in objs if isinstance(objs, list) else [objs]:
                if isinstance(obj, Mapping) and str(obj.get("status", "")).lower() == "deleted":
                    found.append((str(entity), str(obj.get("Id", ""))))
    return found
