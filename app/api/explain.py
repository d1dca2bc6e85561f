"""POST /explain: the prediction layer by layer, with token attributions (app/infer/explain.py)."""

from fastapi import APIRouter, Request

from app.api.errors import ERROR_RESPONSES, MODEL_ERROR_RESPONSES
from app.api.results import Explanation
from app.api.schemas import ExplainRequest, ExplainResponse
from app.http.auth import ApiKeyRoute
from app.http.dependencies import StateDep
from app.infer.explain import explanations_for

router = APIRouter(route_class=ApiKeyRoute)

_RESPONSES = {
    **MODEL_ERROR_RESPONSES,
    422: {
        **ERROR_RESPONSES[422],
        "description": "validation: wrong types, empty list, more than MAX_EXPLAIN_TEXTS texts, "
        "empty or over-long text",
    },
    429: {
        **ERROR_RESPONSES[429],
        "description": "overloaded: MAX_CONCURRENT_EXPLAIN explanations are running; retry after "
        "the Retry-After header's seconds (/classify is not affected)",
    },
}


@router.post(
    "/explain",
    response_model=ExplainResponse,
    responses=_RESPONSES,
    summary="Explain predictions layer by layer",
    tags=["explain"],
)
async def explain_texts(body: ExplainRequest, request: Request, state: StateDep) -> ExplainResponse:
    """The answer /classify gives, plus each text's path through the five layers (input,
    embedding, RNN, dense, softmax) and per-token attributions toward every label: how much
    the label's probability drops when the token is replaced by `<unk>`."""
    with state.registry.use(body.model, body.version, request.headers) as loaded:
        results = await explanations_for(loaded, body.texts, state.explain_slots)
    return ExplainResponse(
        model=loaded.ref, results=[Explanation.model_validate(e) for e in results]
    )
