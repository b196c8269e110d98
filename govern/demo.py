"""The demo: the real 2022 agreement (Annex 2, 保密协议) with a few items and one account per role."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from govern.context import Ctx
from govern.crypto import sha256_hex
from govern.models import Agreement, Item, User
from govern.services import accounts, agreements, items, ndas, subcontractors

OWNER = "常州市政务服务管理办公室"
VENDOR = "上海今点软件有限公司"
TITLE = "常州市一体化政务服务平台软件运维项目 保密协议"
ROLES = [
    ("handler", "office_handler", "经办人 (handler)"),
    ("approver", "office_approver", "分管负责人 (leader in charge)"),
    ("lead", "vendor_lead", "项目经理 (vendor project lead)"),
    ("staff", "vendor_staff", "运维工程师 (vendor engineer)"),
    ("audit", "auditor", "审计员 (auditor)"),
    ("secadmin", "security_admin", "安全管理员 (security administrator)"),
    ("sysadmin", "system_admin", "系统管理员 (system administrator)"),
]

CASES = [
    {
        "applicant": "张三",
        "id_number": "320402199001011234",
        "service": "营业执照",
        "status": "办结",
    },
    {
        "applicant": "李四",
        "id_number": "320402198502023456",
        "service": "户籍迁移",
        "status": "受理",
    },
]
CSV = "applicant,id_number,service,status\n" + "".join(
    f"{c['applicant']},{c['id_number']},{c['service']},{c['status']}\n" for c in CASES
)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode()


ITEMS = [
    (
        "办件数据样本 (case records, JSON)",
        "data",
        ["applicant", "id_number", "service", "status"],
        _b64(json.dumps(CASES, ensure_ascii=False)),
        "application/json",
        False,
    ),
    (
        "办件数据导出 (case records, CSV)",
        "data",
        ["applicant", "id_number", "service", "status"],
        _b64(CSV),
        "text/csv",
        False,
    ),
    (
        "平台部署架构图 (deployment design)",
        "design",
        [],
        _b64("<design document>"),
        "text/plain",
        False,
    ),
    (
        "数据库运维口令 (database credentials)",
        "credential",
        [],
        _b64("db-admin / demo-only"),
        "text/plain",
        False,
    ),
    (
        "办事指南公开页 (public service guide)",
        "business_document",
        [],
        _b64("<public guide>"),
        "text/html",
        True,
    ),
]


def load(ctx: Ctx) -> list[tuple[str, str, str]] | None:
    """Load once; returns (username, role, password) for each account, or None if loaded."""
    if ctx.db.scalar(select(Agreement.id).where(Agreement.title == TITLE)) is not None:
        return None
    created = []
    for username, role, display in ROLES:
        password = secrets.token_urlsafe(12)
        accounts.create_user(ctx, username, role, password, display)
        created.append((username, role, password))
    agreement = agreements.create(
        ctx,
        {
            "title": TITLE,
            "owner": OWNER,
            "vendor": VENDOR,
            "signed_on": date(2022, 6, 27),
            "term_years": 5,
            "contract_value": Decimal("3985000.00"),
            "currency": "CNY",
        },
    )
    for title, category, fields, content, media_type, public in ITEMS:
        items.create(
            ctx,
            agreement.id,
            {
                "title": title,
                "category": category,
                "fields": fields,
                "content_b64": base64.b64decode(content),
                "media_type": media_type,
                "public": public,
            },
        )
    return created


def load_vendor_side(runtime) -> str:
    """The vendor lead's part of the demo, through the same services as the API: NDAs for the
    lead and the engineer (clause 3.8), the engineer's need-to-know for the design (clause 3.5),
    and a subcontractor receiving two fields of the case records (clause 3.7).

    Returns the subcontractor's client token (shown once)."""
    from govern.runtime import unit_of_work

    with runtime.sessions() as db:
        lead = db.scalar(select(User).where(User.username == "lead"))
        agreement_id = db.scalar(select(Agreement.id).where(Agreement.title == TITLE))
        item_ids = dict(
            db.execute(select(Item.title, Item.id).where(Item.agreement_id == agreement_id)).all()
        )
    with unit_of_work(runtime, accounts.principal_for(lead)) as ctx:
        today = ctx.today()
        for who in ("lead", "staff"):
            ndas.create_nda(
                ctx,
                agreement_id,
                {
                    "username": who,
                    "signed_on": today - timedelta(days=30),
                    "expires_on": today + timedelta(days=335),
                    "document_sha256": sha256_hex(f"NDA of {who}".encode()),
                },
            )
        ndas.grant_need_to_know(
            ctx,
            agreement_id,
            {
                "username": "staff",
                "item_ids": [item_ids[ITEMS[2][0]]],
                "reason": "platform maintenance",
            },
        )
        agreement = ctx.db.get(Agreement, agreement_id)
        _, token = subcontractors.create(
            ctx,
            agreement_id,
            {
                "name": "工单统计云服务 (ticket statistics SaaS)",
                "service": "monthly service-level statistics",
                "dsa_signed_on": today - timedelta(days=10),
                "dsa_expires_on": today + timedelta(days=365),
                "dsa_sha256": sha256_hex(b"data-security agreement"),
                "purpose": "count cases per service and status for the monthly SLA report",
                "item_ids": [item_ids[ITEMS[0][0]], item_ids[ITEMS[1][0]]],
                "fields": ["service", "status"],
                "until": min(today + timedelta(days=180), agreements.term_ends_on(agreement)),
            },
        )
    return token
