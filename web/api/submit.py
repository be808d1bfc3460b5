"""``POST /api/v1/batches``: a JSON body is a synthesis batch (``web.api.synthesis``); else the
recipe (JSON checked for depth and control characters), an optional webhook URL (form field ``webhook_url`` or the recipe's ``webhook_url`` key), the photos,
an optional batch name (form field ``name``), ``partial=true`` to make the batch of the photos
that pass (the answer's ``refused`` lists the others; without it one bad file refuses the whole
request) and an optional ``Idempotency-Key`` (web.idempotency)."""

from __future__ import annotations

import logging

from flask import request

from shared.codes.errors import RequestErrorCode
from shared.items.webhooks import WebhookUrlError, check_destination, check_url
from shared.recipe.batch_names import NAME_FIELD, parse_batch_name
from shared.recipe.parse import model_default_costs, parse_recipe
from shared.store.tables import User
from web import idempotency
from web.api.serialize import created_dict
from web.api.uploads import read_some_uploads, read_uploads, recipe_text, wants_partial
from web.errors import ApiError
from web.extensions import services
from web.safe_input import loads_checked

log = logging.getLogger(__name__)
WEBHOOK_FIELD = "webhook_url"


def _recipe_and_webhook() -> tuple[dict, str | None]:
    text = recipe_text(request)
    try:
        raw = loads_checked(text, "recipe", invalid_raises=True) if text and text.strip() else {}
    except ValueError as exc:
        raise ApiError(400, "invalid_recipe", f"recipe: is not valid JSON ({exc})",
                       "recipe") from None
    if not isinstance(raw, dict):
        raise ApiError(400, "invalid_recipe", "recipe: must be a JSON object", "recipe")
    in_recipe = raw.pop(WEBHOOK_FIELD, None)
    in_form = request.form.get(WEBHOOK_FIELD) or None
    if in_recipe is not None and in_form is not None and in_recipe != in_form:
        raise ApiError(400, RequestErrorCode.INVALID_WEBHOOK_URL,
                       "two different webhook URLs (form field and recipe)", WEBHOOK_FIELD)
    url = in_form if in_form is not None else in_recipe
    if url is not None:
        if not isinstance(url, str):
            raise ApiError(400, RequestErrorCode.INVALID_WEBHOOK_URL, "must be a string",
                           WEBHOOK_FIELD)
        try:
            check_url(url)
            check_destination(url, services().settings.webhook_allow_private,
                              unresolvable_ok=True)
        except WebhookUrlError as exc:
            raise ApiError(400, RequestErrorCode.INVALID_WEBHOOK_URL, str(exc),
                           WEBHOOK_FIELD) from None
    return raw, url


def submit_batch(user: User):
    if request.is_json:  # new images from seeds, no photos: web/api/synthesis.py
        from web.api.synthesis import submit_synthesis

        return submit_synthesis(user)
    svc = services()
    key = idempotency.key_from(request)
    # The recipe is checked first: it is cheap, and a bad one should not cost an upload's storage.
    raw, webhook_url = _recipe_and_webhook()
    recipe = parse_recipe(raw, svc.model.resolution, svc.batches.edit_names(user.id),
                          model_default_costs(svc.model, svc.settings.weights_dir,
                                              svc.settings.preview_min_psnr))
    name = parse_batch_name(request.form.get(NAME_FIELD))  # 400 invalid_name (web.errors)
    if webhook_url and not user.webhook_secret:
        raise ApiError(409, RequestErrorCode.WEBHOOK_SECRET_MISSING,
                       "make a webhook secret first (POST /api/v1/webhooks/secret)", WEBHOOK_FIELD)
    refused = None
    if wants_partial(request):
        uploads, refused = read_some_uploads(request, svc.settings)
    else:
        uploads = read_uploads(request, svc.settings)
    # A name is part of what the request asks for (another name with the same key is a 422).
    named = {**recipe.as_dict(), "batch_name": name} if name else recipe.as_dict()
    print_ = idempotency.fingerprint(named, webhook_url, uploads)
    # Never waits on Redis for long: the send has a short timeout, and items it could not send
    # are sent by the reconciler (the batch is committed first). Over the user's quota: CommandError
    # 429 with Retry-After (web.errors).
    return idempotency.create_once(
        user.id, key, print_,
        lambda: svc.batches.create_batch(user.id, uploads, recipe, webhook_url=webhook_url,
                                      name=name),
        created_dict if refused is None else lambda batch: {**created_dict(batch), "refused": refused})
