"""Pydantic models of the API's JSON: every answer's shape and the JSON request bodies.

``web.openapi_components`` generates the OpenAPI document's ``components/schemas`` from
``COMPONENTS`` (the models they reference come along); the recipe's own models live in
``shared.recipe.schema``.
"""

from __future__ import annotations

from shared.recipe.schema import Cost, Recipe
from web.schemas import (
    batches,
    common,
    evaluations,
    served_models,
    service,
    synthesis,
    webhooks,
)

COMPONENTS = (
    common.Error, common.ModelRef, Cost, Recipe,
    batches.ItemRef, batches.Item, batches.Batch, batches.BatchSummary, batches.BatchPage,
    batches.BatchCreated, batches.Accepted, batches.Canceled, batches.BatchRename,
    batches.EditsRequest,
    service.Token, service.TokenList, service.TokenRequest, service.WebhookSecret,
    service.PasswordChange, service.Me, service.Attributes, service.CurrentModel,
    service.GeneratorDirection, service.UserDirection, service.Directions,
    service.LearnDirection, service.SaveDirection, service.StripRequest, service.Strip,
    evaluations.EvaluationRequest, evaluations.Evaluation, evaluations.EvaluationList,
    synthesis.SynthesisRequest, synthesis.SynthesisCreated,
    served_models.ServedModel, served_models.ServedModels, served_models.UnavailableModel,
    webhooks.WebhookDelivery, webhooks.WebhookDeliveryPage,
)
