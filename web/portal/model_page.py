"""The model page: what the service runs, its evaluation jobs (FID, PPL, preview/final
consistency) with the settings each was measured with, and a form to start one."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from shared.catalog.configs import UnknownConfigError, get_model_config
from shared.commands.errors import CommandError
from shared.commands.evaluations import KINDS, Evaluations
from shared.recipe.parse import CHANNEL_RATIOS, allowed_resolutions
from web.api.serialize import evaluation_dict
from web.portal.auth import login_required
from web.portal.blueprint import bp
from web.portal.services import services

#: The number each metric's result rows are judged by, and its columns on the page.
COLUMNS = {"fid": ("fid",), "ppl": ("ppl", "median"), "consistency": ("lpips", "mse", "psnr")}


def _evaluations() -> Evaluations:
    svc = services()
    return Evaluations(svc.settings, svc.sessions, svc.dispatcher)


def _model(model_name: str):
    try:
        return get_model_config(model_name)
    except UnknownConfigError:
        abort(404, description=f"no model {model_name!r}")


def settings_of(evaluation: dict) -> dict:
    """The settings a person needs to read a number: n, cost, seed, data set, Inception file."""
    params, result = evaluation["params"], evaluation["result"] or {}
    cost = "every cost" if evaluation["kind"] != "ppl" else "full cost"
    if params.get("channels") is not None or params.get("resolution") is not None:
        cost = (f"channels {params.get('channels') or 'all'}, "
                f"{params.get('resolution') or 'all'} px")
    data = result.get("data") or {}
    out = {"n": params["n"], "cost": cost, "seed": params.get("seed", 0)}
    if evaluation["kind"] == "fid":
        out["data set"] = params.get("data") or "the full model's samples"
        if data.get("images"):
            out["data set"] += f" ({data['images']} images)"
        sha = (result.get("inception") or {}).get("sha256")
        out["Inception sha256"] = sha[:16] + "\u2026" if sha else "\u2014"
    protocol = result.get("protocol")
    if isinstance(protocol, dict) and protocol.get("name"):
        out["protocol"] = protocol["name"]
    distance = result.get("distance")
    if isinstance(distance, dict):  # PPL: the network and its files' hashes
        files = ", ".join(f"sha256 {f['sha256'][:12]}\u2026" for f in distance.get("files", []))
        out["distance"] = distance.get("name", "?") + (f" ({files})" if files else "")
    elif distance:
        out["distance"] = distance
    if result.get("compare"):
        out["compared"] = result["compare"]
    return out


def _page(model, form: dict | None = None, error: str | None = None, status: int = 200):
    with services().sessions() as db:
        rows = [evaluation_dict(e) for e in _evaluations().list(db, model.name, current_user.id)]
    for row in rows:
        row["settings"] = settings_of(row)
        row["columns"] = COLUMNS[row["kind"]]
    return render_template(
        "portal/model.html", model=model, evaluations=rows, kinds=KINDS, form=form or {},
        error=error, channel_ratios=CHANNEL_RATIOS,
        resolutions=allowed_resolutions(model.resolution),
    ), status


@bp.route("/models/<model_name>")
@login_required
def model_page(model_name: str):
    return _page(_model(model_name))


def _form_body(form) -> dict:
    body: dict = {"kind": form.get("kind", "")}
    for name, cast in (("n", int), ("seed", int), ("channels", float), ("resolution", int)):
        raw = (form.get(name) or "").strip()
        if raw:
            try:
                body[name] = cast(raw)
            except ValueError:
                body[name] = raw  # parse_request names the field
    data = (form.get("data") or "").strip()
    if data:
        body["data"] = data
    return body


@bp.route("/models/<model_name>/evaluations", methods=["POST"])
@login_required
def start_evaluation(model_name: str):
    model = _model(model_name)
    try:
        _evaluations().create(current_user.id, model, _form_body(request.form))
    except CommandError as exc:
        return _page(model, dict(request.form), exc.message, exc.status)
    flash("Evaluation queued. Results appear here when a worker on the evaluate queue is done.")
    return redirect(url_for("portal.model_page", model_name=model.name))
