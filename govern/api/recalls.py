"""Recall orders (clause 3.10), return confirmations, termination (clause 5.3),
declassification (clause 5.2) and destruction of items."""

from __future__ import annotations

from govern.actions import Action
from govern.api import endpoint
from govern.api.agreements import agreement_json, item_json
from govern.schema import Bool, Enum, Id, List, Schema, Str
from govern.services import recalls

RECALL_IN = Schema(
    "RecallCreate",
    item_ids=List(of=Id(), required=False, min_items=1, max_items=5000),
    all=Bool(required=False, description="recall every protected item of the agreement"),
    reason=Str(max_len=2000, multiline=True),
)
CONFIRM_IN = Schema(
    "ReturnConfirm",
    outcome=Enum(choices=recalls.OUTCOMES),
    note=Str(required=False, max_len=2000, multiline=True),
)
DECLASSIFY_IN = Schema(
    "ItemDeclassify",
    status=Enum(choices=("declassified", "public")),
    reason=Str(max_len=2000, multiline=True),
)

DESTROY_IN = Schema("ItemDestroy", reason=Str(max_len=2000))


@endpoint(
    "/agreements/<int:agreement_id>/recalls",
    "POST",
    summary="Recall items or everything (clause 3.10)",
    tag="recalls",
    body=RECALL_IN,
    status=201,
    action=Action.RECALL_CREATE,
)
def create_recall(ctx, data, agreement_id):
    row, _opened = recalls.recall(ctx, agreement_id, data)
    return recalls.recall_json(ctx, row)


@endpoint(
    "/agreements/<int:agreement_id>/recalls",
    summary="Recall orders and terminations, with their open confirmations",
    tag="recalls",
    action=Action.RECALL_LIST,
)
def list_recalls(ctx, agreement_id):
    return {"recalls": [recalls.recall_json(ctx, r) for r in recalls.list_for(ctx, agreement_id)]}


@endpoint(
    "/return-confirmations/<int:confirmation_id>/confirm",
    "POST",
    summary="Confirm one holder returned or destroyed one item",
    tag="recalls",
    body=CONFIRM_IN,
    action=Action.RECALL_CONFIRM,
)
def confirm_return(ctx, data, confirmation_id):
    return recalls.confirmation_json(ctx, recalls.confirm(ctx, confirmation_id, data))


@endpoint(
    "/agreements/<int:agreement_id>/terminate",
    "POST",
    summary="Terminate: all access ends, a return manifest is opened (clause 5.3)",
    tag="agreements",
    action=Action.AGREEMENT_TERMINATE,
)
def terminate_agreement(ctx, agreement_id):
    agreement, row, opened = recalls.terminate(ctx, agreement_id)
    return {
        "agreement": agreement_json(agreement),
        "recall_id": row.id,
        "return_manifest": recalls.manifest(ctx, opened),
    }


@endpoint(
    "/items/<int:item_id>/declassify",
    "POST",
    summary="Declassify an item or mark it public, with a reason (clause 5.2)",
    tag="items",
    body=DECLASSIFY_IN,
    action=Action.ITEM_DECLASSIFY,
)
def declassify_item(ctx, data, item_id):
    return item_json(recalls.declassify(ctx, item_id, data["status"], data["reason"]))


@endpoint(
    "/items/<int:item_id>/destroy",
    "POST",
    summary="Destroy an item: its data key is erased (crypto-shredding) and all access over it "
    "ends; its content can never be read again",
    tag="items",
    body=DESTROY_IN,
    action=Action.ITEM_DESTROY,
)
def destroy_item(ctx, data, item_id):
    return item_json(recalls.destroy(ctx, item_id, data["reason"]))
