"""REST and server-sent-event endpoints under ``/medagent/`` (see docs/server-api.md)."""

from __future__ import annotations

import json

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.iostream import StreamClosedError

from jupyter_medagent.server.runs import RunError, RunManager, RunRequest

MAX_WAIT_S = 30.0


class MedagentHandler(APIHandler):
    @property
    def runs(self) -> RunManager:
        return self.settings["medagent_runs"]

    def body(self) -> dict:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise RunError(400, f"the body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise RunError(400, "the body must be a JSON object")
        return body

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = str(exc) if isinstance(exc, RunError) else (getattr(exc, "log_message", None) or self._reason)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}))

    def fail(self, exc: RunError):
        self.set_status(exc.status)
        self.finish(json.dumps({"message": str(exc)}))


class BackendsHandler(MedagentHandler):
    @web.authenticated
    def get(self):
        from jupyter_medagent.backends.config import backend_catalogue

        self.finish(json.dumps(backend_catalogue()))


class RunsHandler(MedagentHandler):
    @web.authenticated
    def get(self):
        """Every run, oldest first; ``?notebook_path=P`` only the runs of that notebook (a reloaded page
        re-attaches to its newest)."""
        notebook = self.get_argument("notebook_path", None)
        runs = [r for r in self.runs.runs.values() if notebook is None or r.spec.notebook_path == notebook]
        self.finish(json.dumps({"runs": [r.summary(self.runs.root) for r in runs]}))

    @web.authenticated
    async def post(self):
        try:
            run, created = await self.runs.start(RunRequest.from_json(self.body()))
        except RunError as exc:
            return self.fail(exc)
        self.set_status(201 if created else 200)
        self.finish(json.dumps({"run_id": run.id, "status": run.status, "attached": not created}))


class RunHandler(MedagentHandler):
    @web.authenticated
    def get(self, run_id: str):
        try:
            self.finish(json.dumps(self.runs.get(run_id).summary(self.runs.root)))
        except RunError as exc:
            self.fail(exc)


class EventsHandler(MedagentHandler):
    """Long poll: events after ``after`` (exclusive index), waiting up to ``wait`` seconds for new ones."""

    @web.authenticated
    async def get(self, run_id: str):
        try:
            run = self.runs.get(run_id)
            after = int(self.get_argument("after", "0"))
            wait = min(float(self.get_argument("wait", "0")), MAX_WAIT_S)
        except RunError as exc:
            return self.fail(exc)
        except ValueError:
            return self.fail(RunError(400, "after and wait must be numbers"))
        if wait > 0:
            await self.runs.wait_for(run, after, wait)
        events = run.events[after:]
        self.finish(json.dumps({"events": events, "next": after + len(events),
                                "done": run.done and after + len(events) >= len(run.events), "status": run.status}))


class StreamHandler(MedagentHandler):
    """Server-sent events: every event from ``after`` on, until the run is over."""

    @web.authenticated
    async def get(self, run_id: str):
        try:
            run = self.runs.get(run_id)
        except RunError as exc:
            return self.fail(exc)
        sent = int(self.get_argument("after", "0"))
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        try:
            while True:
                await self.runs.wait_for(run, sent, 15.0)
                for event in run.events[sent:]:
                    self.write(f"id: {event['seq']}\nevent: {event['kind']}\ndata: {json.dumps(event)}\n\n")
                    sent += 1
                if sent == 0 and not run.events:
                    self.write(": keep-alive\n\n")
                await self.flush()
                if run.done and sent >= len(run.events):
                    break
        except StreamClosedError:
            return
        self.finish()


class ApprovalHandler(MedagentHandler):
    @web.authenticated
    def post(self, run_id: str):
        try:
            body = self.body()
            if "cell_id" not in body or "decision" not in body:
                raise RunError(400, "an approval needs cell_id and decision (run, skip, edit or stop)")
            self.runs.get(run_id).decide(str(body["cell_id"]), str(body["decision"]), body.get("source"))
        except RunError as exc:
            return self.fail(exc)
        self.finish(json.dumps({"ok": True}))


class StopHandler(MedagentHandler):
    @web.authenticated
    def post(self, run_id: str):
        try:
            run = self.runs.get(run_id)
        except RunError as exc:
            return self.fail(exc)
        run.stop()
        self.finish(json.dumps({"status": "stopping" if not run.done else run.status}))


class NotebookHandler(MedagentHandler):
    """The refined notebook once the run is over, else the draft so far."""

    @web.authenticated
    def get(self, run_id: str):
        import nbformat

        try:
            run = self.runs.get(run_id)
        except RunError as exc:
            return self.fail(exc)
        path = run.agent.notebook_path
        if not path.exists():
            return self.fail(RunError(404, f"run {run_id} has not written a notebook yet"))
        summary = run.summary(self.runs.root)
        self.finish(json.dumps({"path": summary["notebook"], "final": run.done,
                                "notebook": nbformat.read(path, as_version=4)}))


def setup_handlers(web_app, runs: RunManager) -> None:
    web_app.settings["medagent_runs"] = runs
    base = url_path_join(web_app.settings["base_url"], "medagent")
    run = r"/runs/(?P<run_id>[0-9a-f]+)"
    web_app.add_handlers(".*$", [
        (url_path_join(base, "backends"), BackendsHandler),
        (url_path_join(base, "runs"), RunsHandler),
        (url_path_join(base, run), RunHandler),
        (url_path_join(base, run, "events"), EventsHandler),
        (url_path_join(base, run, "stream"), StreamHandler),
        (url_path_join(base, run, "approval"), ApprovalHandler),
        (url_path_join(base, run, "stop"), StopHandler),
        (url_path_join(base, run, "notebook"), NotebookHandler),
    ])
