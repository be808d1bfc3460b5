"""The portal's HTML pages: sign in/out, my batches, new batch, a batch, the item editor.
Actions on a batch (finalize all, cancel) are plain forms that redirect back."""

from __future__ import annotations

import math

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from shared.catalog.directions import MIN_EXAMPLES
from shared.commands.errors import CommandError
from shared.recipe.batch_names import MAX_NAME_CHARS
from shared.recipe.parse import MAX_REFINE_STEPS, recipe_from_stored
from web.api.serialize import batch_summaries
from web.portal.auth import check_password_login, login_required, safe_next, sign_in, sign_out
from web.portal.blueprint import bp, model_outage
from web.portal.costs import cost_options, measured_macs_per_second
from web.portal.forms import ACCEPT, MAIN_SLIDERS, OTHER_SLIDERS, SLIDER_SCALE, read_batch_form
from web.portal.present import batch_label, batch_view, item_view, portal_sort
from web.portal.services import services
from web.portal.workspace import filmstrip, slider_groups

PER_PAGE = 20


@bp.route("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("portal.login"))
    return redirect(url_for("portal.batches"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    username = ""
    if request.method == "POST":
        username = request.form.get("username", "")
        password = request.form.get("password", "")
        user = check_password_login(username, password) if username and password else None
        if user is None:
            error = "Wrong username or password."
        else:
            sign_in(user)
            return redirect(safe_next(request.args.get("next")) or url_for("portal.batches"))
    status = 401 if error else 200
    return render_template("portal/login.html", error=error, username=username), status


@bp.route("/logout", methods=["POST"])
def logout():
    sign_out()
    flash("You are signed out.")
    return redirect(url_for("portal.login"))


@bp.route("/batches")
@login_required
def batches():
    page = max(1, request.args.get("page", 1, type=int) or 1)
    q = request.args.get("q", "").strip()[:MAX_NAME_CHARS]
    svc = services()
    with svc.sessions() as db:
        rows, total = svc.batches.list_batches(db, current_user.id, page=page, per_page=PER_PAGE,
                                            name_contains=q or None)
        summaries = batch_summaries(db, rows)
        listed = [{
            **summary, "created_at": b.created_at, "total": summary["item_count"],
            "status_label": batch_label(summary["status"], summary["counts"]),
            "edits": recipe_from_stored(b.recipe).edits,
        } for b, summary in zip(rows, summaries, strict=True)]
    pages = max(1, math.ceil(total / PER_PAGE))
    return render_template("portal/batches.html", batches=listed, page=page, pages=pages,
                           total=total, q=q)


def _new_batch_page(form=None, status: int = 200):
    svc = services()
    model = svc.model
    with svc.sessions() as db:
        costs = cost_options(model, measured_macs_per_second(db, current_user.id, model),
                             svc.settings)
    return render_template(
        "portal/new_batch.html", form=form, costs=costs, accept=ACCEPT, model=model,
        main_sliders=MAIN_SLIDERS, other_sliders=OTHER_SLIDERS, slider_scale=SLIDER_SCALE,
        max_refine_steps=MAX_REFINE_STEPS, max_name_chars=MAX_NAME_CHARS,
        limits={"max_file_mb": svc.settings.max_file_mb,
                "max_files": svc.settings.max_files_per_batch,
                "max_upload_mb": svc.settings.max_upload_mb},
    ), status


def _wants_json() -> bool:
    """The page's script sends the form itself (the files stay chosen) and reads JSON back."""
    return request.accept_mimetypes.best == "application/json"


def _refused_answer(form, status: int):
    """The form's refusal: the page again, or for its script JSON naming each refused file."""
    if not _wants_json():
        return _new_batch_page(form, status)
    return jsonify({"error": {
        "code": "files_refused" if form.refused and not form.errors else "invalid_form",
        "message": "The batch was not created.", "problems": form.errors,
        "refused": form.refused, "accepted": len(form.uploads),
    }}), status


@bp.route("/batches/new", methods=["GET", "POST"])
@login_required
def new_batch():
    if request.method == "GET":
        return _new_batch_page()
    svc = services()
    form = read_batch_form(request.form, request.files, svc.settings, svc.model)
    if not form.ok:
        return _refused_answer(form, 400)
    try:
        batch_id = svc.batches.create_batch(current_user.id, form.uploads, form.recipe,
                                         name=form.name)
    except CommandError as exc:
        form.errors.append(exc.message)
        return _refused_answer(form, exc.status)
    left_out = (f" {len(form.left_out)} left out: " + " ".join(form.left_out)
                if form.left_out else "")
    flash(f"Batch created with {len(form.uploads)} photo(s).{left_out} "
          "Previews appear as they render.")
    url = url_for("portal.batch_page", batch_id=batch_id)
    if _wants_json():
        return jsonify({"url": url, "refused": form.refused}), 201
    return redirect(url)


def _command_call(fn, *args):
    try:
        return fn(*args)
    except CommandError as exc:
        abort(exc.status, description=exc.message)


@bp.route("/batches/<batch_id>")
@login_required
def batch_page(batch_id: str):
    svc = services()
    with svc.sessions() as db:
        batch = _command_call(svc.batches.get_batch, db, current_user.id, batch_id)
        data = batch_view(batch, portal_sort())
        model = batch.model_name
    return render_template("portal/batch.html", batch=data, max_name_chars=MAX_NAME_CHARS,
                           min_examples=MIN_EXAMPLES, model_outage=model_outage(model))


@bp.route("/batches/<batch_id>/finalize", methods=["POST"])
@login_required
def finalize_batch(batch_id: str):
    n = _command_call(services().batches.finalize_batch, current_user.id, batch_id)
    flash(f"Finals queued for {n} photo(s)." if n else "No photo had a preview ready to finalize.")
    return redirect(url_for("portal.batch_page", batch_id=batch_id))


@bp.route("/batches/<batch_id>/cancel", methods=["POST"])
@login_required
def cancel_batch(batch_id: str):
    n = _command_call(services().batches.cancel_batch, current_user.id, batch_id)
    flash(f"Canceled {n} photo(s)." if n else "Nothing left to cancel.")
    return redirect(url_for("portal.batch_page", batch_id=batch_id))


@bp.route("/batches/<batch_id>/delete", methods=["POST"])
@login_required
def delete_batch(batch_id: str):
    """The batch and every byte of it (as ``DELETE /api/v1/batches/<id>``)."""
    _command_call(services().batches.delete_batch, current_user.id, batch_id)
    flash("The batch and all its photos are deleted.")
    return redirect(url_for("portal.batches"))


@bp.route("/items/<item_id>")
@login_required
def item_page(item_id: str):
    svc = services()
    with svc.sessions() as db:
        item = _command_call(svc.batches.get_item, db, current_user.id, item_id)
        data = item_view(item)
        recipe = recipe_from_stored(item.batch.recipe)
        batch_id = item.batch_id
        strip = filmstrip(item)
        # The item's own model: its costs, its directions, attributes only where it has them.
        model = svc.batches.model_config(item.batch.model_name)
        costs = cost_options(model, measured_macs_per_second(db, current_user.id, model),
                             svc.settings)
    current = data["edits"] if data["edits"] is not None else recipe.edits
    groups = slider_groups("boundary" in model.kinds, svc.directions.listing(current_user.id, model.name),
                           svc.settings.weights_dir, model.name)
    return render_template(
        "portal/item.html", item=data, batch_id=batch_id, current_edits=current,
        recipe_edits=recipe.edits, costs=costs, output=recipe.output, groups=groups,
        slider_scale=SLIDER_SCALE, filmstrip=strip,
    )
