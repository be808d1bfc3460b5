"""The portal's Generate page: new faces (or cars) from seeds. The page is a form and a grid;
its script (static/generate.js) calls the REST API directly with the session cookie and the
CSRF header (POST /api/v1/batches with a JSON synthesis body, GET /api/v1/models, polls the
batch), and every sample links to the existing item editor."""

from __future__ import annotations

from flask import render_template

from shared.recipe.batch_names import MAX_NAME_CHARS
from web.portal.auth import login_required
from web.portal.blueprint import bp
from web.portal.services import services


@bp.route("/generate")
@login_required
def generate_page():
    settings = services().settings
    return render_template("portal/generate.html", default_model=settings.model,
                           max_seeds=min(settings.max_seeds, settings.max_files_per_batch),
                           max_name_chars=MAX_NAME_CHARS)
