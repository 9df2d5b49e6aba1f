"""The HTTP routes, one ``APIRouter`` per resource: the page and health, models, tokens,
work (generate, translate, handout, evaluate: each queues a job), jobs, verify, reader
studies, and the PACS gate (``serve.gate_routes``). ``create_app`` includes them in this
order."""
