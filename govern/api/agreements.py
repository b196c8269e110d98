"""Agreements, their clock, and their confidential items."""

from __future__ import annotations

import functools
import mimetypes
import re
import unicodedata
from urllib.parse import quote

from flask import Response
from werkzeug.utils import get_content_type

from govern import http, shapes
from govern.actions import Action
from govern.api import endpoint
from govern.schema import Base64, Bool, Date, Enum, Int, List, Money, Schema, Str
from govern.services import agreements, items

AGREEMENT_IN = Schema(
    "AgreementCreate",
    title=Str(max_len=300),
    owner=Str(max_len=300),
    vendor=Str(max_len=300),
    signed_on=Date(),
    term_years=Int(minimum=1, maximum=50),
    contract_value=Money(),
    currency=Str(required=False, min_len=3, max_len=3, pattern="[A-Z]{3}"),
)
ITEM_IN = Schema(
    "ItemCreate",
    title=Str(max_len=300),
    category=Enum(choices=items.CATEGORIES),
    fields=List(of=Str(max_len=100), required=False, max_items=500),
    content_b64=Base64(description="the content, base64-encoded; at most 16 MiB decoded"),
    media_type=Str(required=False, max_len=100, pattern=r"[\w.+-]+/[\w.+-]+"),
    sensitivity=Enum(required=False, choices=items.SENSITIVITIES),
    public=Bool(required=False, description="published to the public by the project (clause 1.1)"),
)


def agreement_json(a) -> dict:
    return {
        "id": a.id,
        "title": a.title,
        "owner": a.owner,
        "vendor": a.vendor,
        "signed_on": a.signed_on.isoformat(),
        "term_years": a.term_years,
        "term_ends_on": agreements.term_ends_on(a).isoformat(),
        "contract_value": f"{a.contract_value:.2f}",
        "currency": a.currency,
        "status": a.status,
        "terminated_on": a.terminated_on.isoformat() if a.terminated_on else None,
    }


def item_json(i) -> dict:
    return {
        "id": i.id,
        "agreement_id": i.agreement_id,
        "title": i.title,
        "category": i.category,
        "fields": i.fields,
        "sensitivity": i.sensitivity,
        "status": i.status,
        "media_type": i.media_type,
        "size": i.size,
        "sha256": i.sha256,
    }


@endpoint(
    "/agreements",
    "POST",
    summary="Create an agreement",
    tag="agreements",
    body=AGREEMENT_IN,
    status=201,
    action=Action.AGREEMENT_CREATE,
)
def create_agreement(ctx, data):
    return agreement_json(agreements.create(ctx, data))


@endpoint("/agreements", summary="List agreements", tag="agreements", action=Action.AGREEMENT_LIST)
def list_agreements(ctx):
    return {"agreements": [agreement_json(a) for a in agreements.list_all(ctx)]}


@endpoint(
    "/agreements/<int:agreement_id>",
    summary="One agreement",
    tag="agreements",
    action=Action.AGREEMENT_READ,
)
def get_agreement(ctx, agreement_id):
    return agreement_json(agreements.get(ctx, agreement_id))


@endpoint(
    "/agreements/<int:agreement_id>/clock",
    summary="The confidentiality clock (clause 5)",
    tag="agreements",
    action=Action.AGREEMENT_READ,
)
def agreement_clock(ctx, agreement_id):
    return agreements.clock(ctx, agreement_id, ctx.today())


@endpoint(
    "/agreements/<int:agreement_id>/items",
    "POST",
    summary="Register a confidential item",
    tag="items",
    body=ITEM_IN,
    status=201,
    action=Action.ITEM_CREATE,
)
def create_item(ctx, data, agreement_id):
    return item_json(items.create(ctx, agreement_id, data))


@endpoint(
    "/agreements/<int:agreement_id>/items",
    summary="List an agreement's items",
    tag="items",
    action=Action.ITEM_LIST,
)
def list_items(ctx, agreement_id):
    return {"items": [item_json(i) for i in items.list_for(ctx, agreement_id)]}


@endpoint(
    "/items/<int:item_id>/content",
    summary="An item's plaintext, when policy allows (as an attachment, never active content)",
    tag="items",
    produces="application/octet-stream",
    action=Action.ITEM_READ,
    read_only=True,
    along=lambda ctx, item_id: items.read_along(item_id, ctx.today()),
)
def item_content(ctx, item_id):
    http.refuse_cross_site_read(ctx, item_id)
    item, content = items.read_content(ctx, item_id, ctx.today())
    return content_response(item, content)


# Served content is inert on govern's origin: a sandboxed, script-less document that may not be
# framed, even if a browser were to render it despite the attachment.
CONTENT_SECURITY_POLICY = "sandbox; default-src 'none'; frame-ancestors 'none'"
_EXTENSIONS = {shapes.JSON: ".json", shapes.CSV: ".csv", shapes.OPAQUE: ".bin"}
_UNSAFE_IN_NAME = re.compile(r'[/\\"<>:|?*]+')


def download_name(item, media_type: str) -> tuple[str, str]:
    """(ASCII fallback, full UTF-8 name) for the item's title with its type's extension."""
    return _names(item.id, item.title, media_type)[:2]


@functools.lru_cache(maxsize=1024)
def _names(item_id: int, title: str, media_type: str) -> tuple[str, str, str]:
    """The two names and the Content-Disposition header carrying them: worked out once per
    item, title and type, not on every read of the item."""
    base = shapes.base_type(media_type)
    ext = _EXTENSIONS.get(base) or mimetypes.guess_extension(base) or ".bin"
    # Control and format characters (a right-to-left override could disguise the extension)
    # go, and so does anything a file system or the header's quoting would read as syntax.
    visible = "".join(
        c for c in unicodedata.normalize("NFC", title) if unicodedata.category(c)[0] != "C"
    )
    title = _UNSAFE_IN_NAME.sub("_", visible).strip(" .")[:100]
    ascii_title = re.sub(r"[^A-Za-z0-9._-]+", "_", title).strip("._")
    fallback = (f"item-{item_id}-{ascii_title}" if ascii_title else f"item-{item_id}") + ext
    name = (title or f"item-{item_id}") + ext
    header = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
    return fallback, name, header


def content_headers(item, media_type: str | None = None) -> list[tuple[str, str]]:
    """The headers of served item content (the API's route, its direct read, the pages): always
    a download, never sniffed, never cached, never run as a page of govern's origin (uploaded
    HTML, SVG or script stays inert)."""
    media_type = media_type or item.media_type
    return [
        ("Content-Type", get_content_type(media_type, "utf-8")),
        ("Content-Disposition", _names(item.id, item.title, media_type)[2]),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ]


def content_response(item, content: bytes, media_type: str | None = None) -> Response:
    """Item content for the API and the pages alike, with its headers (content_headers)."""
    return Response(content, headers=content_headers(item, media_type))
