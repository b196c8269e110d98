"""The demo: the real 2022 agreement (Annex 2, 保密协议) with a few items and one account per role."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from govern.actions import Action
from govern.context import Ctx
from govern.models import Agreement, Nda, NeedToKnow
from govern.services import accounts, agreements, items

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
    users = {}
    for username, role, display in ROLES:
        password = secrets.token_urlsafe(12)
        users[username] = accounts.create_user(ctx, username, role, password, display)
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
    made = []
    for title, category, fields, content, media_type, public in ITEMS:
        made.append(
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
        )
    today = ctx.today()
    # clause 3.8: the engineer has signed an NDA; clause 3.5: and needs the design document.
    for who in ("lead", "staff"):
        ctx.record(Action.NDA_CREATE, f"user:{who}", rule="demo data")
        ctx.db.add(
            Nda(
                agreement_id=agreement.id,
                user_id=users[who].id,
                signed_on=today - timedelta(days=30),
                expires_on=today + timedelta(days=335),
                document_sha256="0" * 64,
                registered_by=users["lead"].id,
            )
        )
    ctx.record(Action.NTK_GRANT, f"item:{made[2].id}", rule="demo data", user="staff")
    ctx.db.add(
        NeedToKnow(
            agreement_id=agreement.id,
            user_id=users["staff"].id,
            item_id=made[2].id,
            reason="platform maintenance",
            granted_by=users["lead"].id,
        )
    )
    return created
