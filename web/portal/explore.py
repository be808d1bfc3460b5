"""The direction explorer: for one item, a strip of previews along a direction (-1 .. +1), so
people see what a direction does and can keep it under a name. The page is a client of REST
API v1 (``/api/v1/items/<id>/strips``, ``/api/v1/strips/<id>``, ``/api/v1/directions``)."""

from __future__ import annotations

from flask import abort, render_template, url_for
from flask_login import current_user

from shared.catalog.directions import generator_directions
from shared.codes.attributes import ALIASES
from shared.commands.errors import CommandError
from shared.commands.user_directions import DEFAULT_STRIP_STEPS, STRIP_STEPS
from web.portal.auth import login_required
from web.portal.blueprint import bp
from web.portal.present import item_view
from web.portal.services import services


@bp.route("/items/<item_id>/explore")
@login_required
def explore_item(item_id: str):
    svc = services()
    user = current_user
    with svc.sessions() as db:
        try:
            item = svc.batches.get_item(db, user.id, item_id)
        except CommandError as exc:
            abort(exc.status, description=exc.message)
        data = item_view(item)
        batch_id = item.batch_id
        model = svc.batches.model_config(item.batch.model_name)
        has_code = item.latent is not None and item.latent.model_name == model.name
    choices = {
        "generator": [{"key": d["key"], "label": d["label"]}
                      for d in generator_directions(svc.settings.weights_dir, model.name)],
        "user": [{"key": d["key"], "label": d["name"]}
                 for d in svc.directions.listing(user.id, model.name)],
        "builtin": ([{"key": alias, "label": alias.replace("_", " ")} for alias in ALIASES]
                    if "boundary" in model.kinds else []),
    }
    return render_template(
        "portal/explore.html", item=data, batch_id=batch_id, has_code=has_code, choices=choices,
        steps=STRIP_STEPS, default_steps=DEFAULT_STRIP_STEPS, item_model=model.name,
        api={"strips": url_for("api.create_strip", item_id=item_id),
             "directions": url_for("api.list_directions")},
    )
