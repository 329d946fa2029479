"""``rnnkit serve``: trained models behind an HTTP JSON API (FastAPI + uvicorn, the optional
extra ``rnnkit[serve]``).

- :mod:`.app`      the routes, error handlers and the uvicorn app factory;
- :mod:`.guard`    bearer token and body cap, in front of everything;
- :mod:`.models`   the served models and their batched predictor calls;
- :mod:`.handlers` one handler per task (limits, predictor call, response);
- :mod:`.batcher`  micro-batching of concurrent requests;
- :mod:`.schemas`  the request/response bodies, one per task;
- :mod:`.config`   the options, passed to each worker process as JSON;
- ``static/index.html`` the page to try every model in a browser.

All model work goes through :func:`rnnkit.predictors.load` and the predictors' methods.
"""
