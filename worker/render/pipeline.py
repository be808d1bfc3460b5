"""The render pipeline behind the tasks: a group of items in, previews or finals out.

Previews: take each item (guarded) -> decode -> faces -> encode -> store latent -> edit -> render
at the preview cost (with the unedited projection in the same forward pass) -> store. Finals:
take each item -> edit the stored latent -> render at the final cost -> store. Items of the same
cost share forward passes of up to ``render_batch_size`` (finals: ``final_batch_size``), with
items of other messages gathered in (``worker.render.gather``); everything else is per item, so one bad
photo fails alone (its error code on the item) while its siblings go on. A soft time limit fails
what is still unfinished with ``timeout``. Each stage's seconds go to ``item.timings`` (a batched
stage records each item's share of the pass).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from celery.exceptions import SoftTimeLimitExceeded

from shared.codes.errors import ErrorCode
from shared.items.states import ItemStatus
from shared.platform import preview_lane
from shared.recipe.parse import Cost
from worker.render import assess, counters, gather, inversion, results, stages, store
from worker.render.faces.align import render_quad
from worker.render.images import PNG, encode_png, to_uint8
from worker.render.isolation import (
    INTERNAL_ERROR,
    Report,
    Timer,
    batched,
    by_cost,
    by_preview_cost,
    fail,
    live,
    per_item,
)
from worker.render.job import RenderJob
from worker.render.runtime import Runtime
from worker.render.synthesis import SynthesisSpec, wplus_for

log = logging.getLogger(__name__)

TIMEOUT = "timeout"
MODEL_MISMATCH = str(ErrorCode.MODEL_MISMATCH)
TIMEOUT_MESSAGE = "Rendering this photo took longer than the time limit."


# ----- stage steps (each works on a group and records per-item shares) ---------------------------

def _decode_and_find_faces(rt: Runtime, job: RenderJob) -> None:
    timer = Timer()
    data = store.read_upload(rt, job)
    job.add_time("read_upload", timer.lap())
    rgb = stages.decode(data, rt.settings.max_pixels)
    job.add_time("decode", timer.lap())
    detector = stages.face_detector(rt.settings.detector, rt.device)
    faces = stages.prepare_faces(rgb, rt.bundle, job.recipe, detector)
    job.add_time("faces", timer.lap())
    if job.recipe.output == "photo":
        job.photo = rgb  # kept for the paste-back of this pass
    job.crops = [f.rgb for f in faces]
    job.face_meta = [f.meta for f in faces]
    if rt.bundle.encoder is None:  # no encoder: the faces are projected by optimisation
        job.targets = assess.projection_targets(rt, job, rgb)


def _synthesise(rt: Runtime, job: RenderJob) -> None:
    """A synthesised item's W+ code from its seed spec, exact (no encoder, no projection
    error), stored as its latent so re-edits and finals start from it."""
    timer = Timer()
    spec = job.synthesis
    code = wplus_for(rt.bundle.generator, SynthesisSpec(
        seed=int(spec["seed"]), truncation=float(spec["truncation"]),
        mix_seed=spec.get("mix_seed"), mix_from_slot=spec.get("mix_from_slot")),
        rt.bundle.w_avg())
    job.latent = code.float()
    job.projection = {"method": "synthesis", "error": 0.0, "seed": int(spec["seed"])}
    job.add_time("synthesise", timer.lap())
    data, shape = stages.latent_to_bytes(job.latent)
    store.store_latent(rt, job, data, shape, 0.0)
    job.add_time("store_latent", timer.lap())


def _encode(rt: Runtime, group: list[RenderJob]) -> None:
    timer = Timer()
    crops = [crop for job in group for crop in job.crops]
    with rt.inference():
        wplus = stages.encode(rt.bundle, crops, rt.device)  # [sum F, L, S]
    share = timer.lap() / len(group)
    offset = 0
    for job in group:
        n = len(job.crops)
        job.latent = wplus[offset:offset + n].clone()
        offset += n
        job.add_time("encode", share)


def _store_latent(rt: Runtime, job: RenderJob) -> None:
    timer = Timer()
    data, shape = stages.latent_to_bytes(job.latent)
    seconds = job.timings.get("encode", job.timings.get("project", 0.0))
    store.store_latent(rt, job, data, shape, seconds)
    job.add_time("store_latent", timer.lap())


REFINE_MAX_RESOLUTION = 256


def _refine(rt: Runtime, job: RenderJob) -> None:
    """Recipe ``refine_steps`` > 0: optimise the item's W+ against its aligned faces before the
    final render. The optimisation compares at no more than ``REFINE_MAX_RESOLUTION`` on the
    full-width generator, rendered there when that output was measured consistent with the full
    one (Anycost's are; a 1024 px backward pass per step costs ~20 s on a CPU), else rendered at
    the model's own side and box-filtered (``assess.render_resolution``). Needs the stored
    transforms; crops of the old centre-crop kind have none and are rendered from the encoder's
    code."""
    transforms = [m.get("transform") for m in job.face_meta]
    if job.recipe.refine_steps <= 0 or not transforms or None in transforms:
        return
    timer = Timer()
    photo = results.full_photo(rt, job)
    size = min(job.cost.resolution, REFINE_MAX_RESOLUTION)
    targets = np.stack([render_quad(photo, np.asarray(t["quad"]), size) for t in transforms])
    job.latent, info = inversion.refine(rt.bundle, targets, job.latent, job.recipe.refine_steps,
                                        cost=Cost(channels=1.0, resolution=size),
                                        render_resolution=assess.render_resolution(rt, size))
    seconds = timer.lap()
    job.add_time("refine", seconds)
    job.add_time("refine_per_step", seconds / max(1, job.recipe.refine_steps))
    job.add_time("refine_error_before", info["error_before"])
    job.add_time("refine_error_after", info["error_after"])
    assess.after_refine(job, info)
    store.record_refine(rt, job, info)


def _needs_projected(job: RenderJob, kind: str) -> bool:
    """A preview pass renders the unedited projection when there is none yet, or when the face
    was projected again in this pass (decoded here: its crops are set)."""
    return kind == "preview" and (job.needs_projected or bool(job.crops))


def _render(rt: Runtime, group: list[RenderJob], kind: str) -> None:
    """Edit and render a group at its (shared) cost; with ``kind == "preview"`` also the unedited
    projection of the items that need one, in the same forward pass. Each preview goes to the
    preview lane as soon as it is encoded; then the quality steps on the float renders: realism,
    the encoder's projection error, a final's consistency."""
    timer = Timer()
    cost = group[0].cost
    with rt.inference():
        edited = [stages.edit_faces(rt.bundle, job.latent, job.edits_per_face(),
                                    job.user_directions) for job in group]
        edit_share = timer.lap() / len(group)
        projected = [j for j in group if _needs_projected(j, kind) and j.has_edits()]
        codes = edited + [j.latent for j in projected]
        rendered = stages.render(rt.bundle, torch.cat(codes), cost).float()
        images = to_uint8(rendered)
    render_seconds = timer.lap()
    counters.observe_render(cost, render_seconds, len(codes))
    render_share = render_seconds / len(group)
    offset = 0
    unedited: dict[str, torch.Tensor] = {}
    for job in group:
        n = len(job.latent)
        job.images[kind], job.mimes[kind] = results.encode_result(rt, job, images[offset:offset + n], kind)
        if kind == "preview":  # a client waiting for this version sees it now, before the rest
            preview_lane.publish(rt.settings.redis_url, job.item_id, job.edit_version,
                                 job.mimes[kind], job.images[kind])
        job.renders[kind] = rendered[offset:offset + n]
        if _needs_projected(job, kind) and not job.has_edits():
            # No edits: the projection is the same render (the crop of the first face).
            job.images["projected"] = (job.images["preview"] if job.mimes[kind] == PNG
                                       else encode_png(images[offset]))
            unedited[job.item_id] = job.renders[kind]
        offset += n
    for job in projected:
        job.images["projected"] = encode_png(images[offset])
        unedited[job.item_id] = rendered[offset:offset + len(job.latent)]
        offset += len(job.latent)
    png_share = timer.lap() / len(group)
    for job in group:
        faces = job.renders.pop(kind)
        assess.score(rt, job, kind, faces)
        if job.crops and job.projection is None and job.item_id in unedited:
            job.projection = assess.encoder_projection(
                job, unedited[job.item_id], rt.bundle.encoder_method or "encoder")
        if kind == "final":
            assess.final_consistency(job, faces)
    for job in group:
        job.add_time("edit" if kind == "preview" else "edit_final", edit_share)
        job.add_time(f"render_{kind}", render_share)
        job.add_time(f"png_{kind}", png_share)


# ----- the two entry points ---------------------------------------------------------------------

def _isolate_retakes(rt: Runtime, jobs: list[RenderJob], stage: ItemStatus) -> list[RenderJob]:
    """Takes in a group are not charged. A group holding an item taken again after its last
    take died (a killed pool process, a lost worker) may hold the photo that kills workers:
    keep one such item, give the others back uncharged and send each in a message of its own,
    so each is rendered alone and charged alone: only the culprit reaches the attempt cap.
    Whatever is rendered alone is charged now (before the work, so a crash counts)."""
    if len(jobs) > 1 and any(j.retaken for j in jobs):
        first = next(j for j in jobs if j.retaken)
        rest = [j for j in jobs if j is not first]
        # Charged before the others go: from the moment it is held alone, a crash is its own.
        kept = [first] if store.charge(rt, first, stage) else []
        ids = [j.item_id for j in rest]
        store.release(rt, ids)
        back = ItemStatus.QUEUED if stage == ItemStatus.PREVIEWING else ItemStatus.FINALIZING
        try:
            rt.sender.send_unheld(back, [(j.item_id, j.edit_version) for j in rest])
        except Exception as exc:  # unsent: the reconciler sends them
            log.warning("could not send %d retaken items singly: %s", len(ids), exc)
        log.warning("group taken again: rendering %s alone, %d others sent one per message",
                    first.item_id, len(ids))
        return kept
    if len(jobs) == 1 and not jobs[0].charged and not store.charge(rt, jobs[0], stage):
        return []
    return jobs


def run_previews(rt: Runtime, pairs: list[tuple[str, int]],
                 render_states: dict[str, dict] | None = None) -> Report:
    """Render previews for ``[(item_id, edit_version), ...]`` (one queue message).
    ``render_states``: item id -> the state its edit wrote, carried by an edit's message: an
    item this process holds warm renders from it before any take (``worker.render.warm``)."""
    report = Report()
    warm_jobs = rt.warm_items.jobs(pairs, render_states or {})
    warm_ids = {j.item_id for j in warm_jobs}
    cold = [(str(i), int(v)) for i, v in pairs if str(i) not in warm_ids]
    jobs = store.claim_previews(rt, cold) if cold else []
    jobs = _isolate_retakes(rt, jobs, ItemStatus.PREVIEWING)
    taken = {j.item_id for j in jobs}
    report.skipped.extend(i for i, _ in cold if i not in taken)
    jobs = warm_jobs + jobs
    gathered = gather.previews(rt, jobs)  # other messages' items of the same cost: one pass
    stage = ItemStatus.PREVIEWING
    if gathered:
        store.refund(rt, jobs, stage)  # no longer taken alone
    jobs = jobs + gathered
    again: list[tuple[str, int]] = []  # warm items not as remembered: rendered cold after
    try:
        for job in jobs:  # a message on the wrong model's queue: fail loudly, not render
            if job.model_name and job.model_name != rt.model_name:
                fail(rt, job, MODEL_MISMATCH, f"this item's model is {job.model_name}; "
                      f"this worker serves {rt.model_name}", stage, report)
        fresh = [j for j in live(jobs) if j.latent is None]
        for job in [j for j in fresh if j.synthesis is not None]:
            with per_item(rt, job, stage, report):
                _synthesise(rt, job)
        fresh = [j for j in fresh if j.synthesis is None]
        for job in fresh:
            with per_item(rt, job, stage, report):
                _decode_and_find_faces(rt, job)
        if rt.bundle.encoder is None:  # each face optimised from w_avg on its own
            for job in live(fresh):
                with per_item(rt, job, stage, report):
                    assess.optimise(rt, job)
        else:
            batched(rt, live(fresh), lambda g: _encode(rt, g), stage, report)
        for job in live(fresh):
            with per_item(rt, job, stage, report):
                _store_latent(rt, job)
        for group in by_cost(live(jobs)):
            batched(rt, group, lambda g: _render(rt, g, "preview"), stage, report)
        for job in live(jobs):
            with per_item(rt, job, stage, report):
                try:
                    finalize = store.complete_preview(rt, job)
                except store.NotAsRemembered as exc:
                    log.warning("warm preview of %s not stored (%s); rendered cold", job.item_id,
                                exc)
                    rt.warm_items.forget(job.item_id)
                    job.done = True
                    again.append((job.item_id, job.edit_version))
                    continue
                job.done = True
                if finalize is None:
                    report.skipped.append(job.item_id)
                    continue
                report.completed.append(job.item_id)
                rt.warm_items.remember(job)
                counters.observe_preview(job.warm)
                # One line per stored result, naming the worker that rendered it.
                log.info("preview v%d stored (%s)", job.edit_version,
                         "warm" if job.warm else "taken",
                         extra={"rendered_by": rt.worker_name, "kind": "preview",
                                "edit_version": job.edit_version, "warm": job.warm})
                if finalize:
                    report.finals_queued.append(job.item_id)
    except SoftTimeLimitExceeded:
        _time_out(rt, jobs, stage, report)
    except Exception:
        gather.give_back(rt, live(gathered))  # the task gives back its own message's items
        store.unsend(rt, [j.item_id for j in live(jobs) if j.warm])  # never taken
        raise
    _after(rt, jobs, report)
    if again:
        report.absorb(run_previews(rt, again))
    return report


def run_finals(rt: Runtime, item_ids: list[str]) -> Report:
    """Render finals at full cost from the stored latents (one queue message)."""
    report = Report()
    jobs = store.claim_finals(rt, [str(i) for i in item_ids])
    jobs = _isolate_retakes(rt, jobs, ItemStatus.FINALIZING)
    taken = {j.item_id for j in jobs}
    report.skipped.extend(str(i) for i in item_ids if str(i) not in taken)
    gathered = gather.finals(rt, jobs)
    stage = ItemStatus.FINALIZING
    if gathered:
        store.refund(rt, jobs, stage)  # no longer taken alone
    jobs = jobs + gathered
    try:
        for job in jobs:
            if job.latent is None:
                fail(rt, job, INTERNAL_ERROR, "no stored latent for this item", stage, report)
        for group in by_preview_cost(live(jobs)):
            batched(rt, group, lambda g: assess.render_last_previews(rt, g), stage, report)
        for job in live(jobs):
            with per_item(rt, job, stage, report):
                _refine(rt, job)
        for group in by_cost(live(jobs)):
            batched(rt, group, lambda g: _render(rt, g, "final"), stage, report,
                    rt.settings.final_batch_size)
        for job in live(jobs):
            with per_item(rt, job, stage, report):
                job.done = True
                if store.complete_final(rt, job):
                    report.completed.append(job.item_id)
                    log.info("final stored", extra={"rendered_by": rt.worker_name, "kind": "final",
                                                    "edit_version": job.edit_version})
                else:
                    report.skipped.append(job.item_id)
    except SoftTimeLimitExceeded:
        _time_out(rt, jobs, stage, report)
    except Exception:
        gather.give_back(rt, live(gathered))
        raise
    _after(rt, jobs, report)
    return report


def _time_out(rt: Runtime, jobs: list[RenderJob], stage: ItemStatus, report: Report) -> None:
    log.error("soft time limit reached with %d items unfinished", len(live(jobs)))
    for job in live(jobs):
        fail(rt, job, TIMEOUT, TIMEOUT_MESSAGE, stage, report)


def _after(rt: Runtime, jobs: list[RenderJob], report: Report) -> None:
    """Follow-up messages once the results are committed: auto-finalized items' finals, and the
    next queued items of each owner (fair queues)."""
    try:
        if report.finals_queued:  # unsent again if Redis fails: the reconciler sends them
            rt.sender.send_unheld(ItemStatus.FINALIZING, [(i, 0) for i in report.finals_queued])
        for owner_id in dict.fromkeys(j.owner_id for j in jobs):
            rt.sender.release_user(owner_id)
    except Exception as exc:  # the reconciler sends whatever this could not
        log.warning("could not send follow-up messages: %s", exc)
