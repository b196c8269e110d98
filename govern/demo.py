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
# A second vendor with an agreement of its own: its accounts see nothing of the first (isolation).
OTHER_VENDOR = "江苏云岫数据科技有限公司"
OTHER_TITLE = "常州市政务数据共享交换平台运维项目 保密协议"
ROLES = [
    ("handler", "office_handler", "王芳（经办人）", None),
    ("approver", "office_approver", "李明（分管负责人）", None),
    ("lead", "vendor_lead", "张伟（项目经理）", VENDOR),
    ("staff", "vendor_staff", "刘洋（运维工程师）", VENDOR),
    ("lead-b", "vendor_lead", "陈静（项目经理）", OTHER_VENDOR),
    ("staff-b", "vendor_staff", "赵磊（运维工程师）", OTHER_VENDOR),
    ("audit", "auditor", "孙丽（审计员）", None),
    ("secadmin", "security_admin", "周强（安全管理员）", None),
    ("sysadmin", "system_admin", "吴刚（系统管理员）", None),
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
        "办件数据样本（JSON）",
        "data",
        ["applicant", "id_number", "service", "status"],
        _b64(json.dumps(CASES, ensure_ascii=False)),
        "application/json",
        False,
    ),
    (
        "办件数据导出（CSV）",
        "data",
        ["applicant", "id_number", "service", "status"],
        _b64(CSV),
        "text/csv",
        False,
    ),
    (
        "平台部署架构图",
        "design",
        [],
        _b64("<design document>"),
        "text/plain",
        False,
    ),
    (
        "数据库运维口令",
        "credential",
        [],
        _b64("db-admin / demo-only"),
        "text/plain",
        False,
    ),
    (
        "办事指南公开页",
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
    for username, role, display, org in ROLES:
        password = secrets.token_urlsafe(12)
        accounts.create_user(ctx, username, role, password, display, org=org)
        created.append((username, role, password))
    _load_agreement(ctx)
    other = agreements.create(
        ctx,
        {
            "title": OTHER_TITLE,
            "owner": OWNER,
            "vendor": OTHER_VENDOR,
            "signed_on": date(2023, 3, 1),
            "term_years": 5,
            "contract_value": Decimal("1260000.00"),
            "currency": "CNY",
        },
    )
    items.create(
        ctx,
        other.id,
        {
            "title": "交换平台接口说明",
            "category": "technical_document",
            "fields": [],
            "content_b64": b"<interface design of the exchange platform>",
            "media_type": "text/plain",
        },
    )
    return created


def _load_agreement(ctx: Ctx) -> None:
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


def load_vendor_side(runtime) -> str:
    """The vendor's part of the demo, each step by whoever takes it, through the same services as
    the API: the office registers the lead's NDA, the lead its engineer's (clause 3.8) and the
    engineer's need-to-know for the design (clause 3.5); the lead files a subcontractor receiving
    two fields of the case records, the handler reviews it, the approver seals it (clause 3.5 +
    3.7), and the lead takes its client token.

    Returns the subcontractor's client token (shown once)."""
    from govern.runtime import unit_of_work

    with runtime.sessions() as db:
        people = {u.username: u for u in db.scalars(select(User))}
        agreement_id = db.scalar(select(Agreement.id).where(Agreement.title == TITLE))
        item_ids = dict(
            db.execute(select(Item.title, Item.id).where(Item.agreement_id == agreement_id)).all()
        )

    def as_(name):
        return unit_of_work(runtime, accounts.principal_for(people[name]))

    def nda_of(ctx, who):
        today = ctx.today()
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

    with as_("approver") as ctx:
        nda_of(ctx, "lead")
    with as_("lead") as ctx:
        nda_of(ctx, "staff")
        ndas.grant_need_to_know(
            ctx,
            agreement_id,
            {
                "username": "staff",
                "item_ids": [item_ids[ITEMS[2][0]]],
                "reason": "平台日常运维",
            },
        )
        today = ctx.today()
        agreement = ctx.db.get(Agreement, agreement_id)
        sub = subcontractors.create(
            ctx,
            agreement_id,
            {
                "name": "工单统计云服务",
                "service": "月度服务水平统计",
                "dsa_signed_on": today - timedelta(days=10),
                "dsa_expires_on": today + timedelta(days=365),
                "dsa_sha256": sha256_hex(b"data-security agreement"),
                "purpose": "按事项和状态统计办件量，用于月度服务水平报告",
                "item_ids": [item_ids[ITEMS[0][0]], item_ids[ITEMS[1][0]]],
                "fields": ["service", "status"],
                "until": min(today + timedelta(days=180), agreements.term_ends_on(agreement)),
            },
        )
        sub_id = sub.id
    with as_("handler") as ctx:
        subcontractors.review(ctx, sub_id)
    with as_("approver") as ctx:
        subcontractors.approve(ctx, sub_id)
    with as_("lead") as ctx:
        _, token, _expires = subcontractors.issue_token(ctx, sub_id)
    return token
