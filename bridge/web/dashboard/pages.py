"""The dashboard's HTML pages, its diagrams and the course outputs (course.html, frames)."""

from __future__ import annotations

from flask import Flask, Response, render_template, request, send_file

from bridge import diagrams
from bridge.web.dashboard import data
from bridge.web.dashboard.app import Backend, problem
from statemachine.lifecycle import COURSE

PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Outputs are generated from a video and AI answers: shown sandboxed, apart from the dashboard.
OUTPUT_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"


def register(app: Flask, backend: Backend) -> None:
    store = backend.store

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        return response

    @app.get("/")
    def courses_page() -> Response:
        html = render_template("courses.html", statuses=COURSE.states)
        return Response(html, 200, mimetype="text/html")

    @app.get("/courses/<course_id>")
    def course_page(course_id: str) -> Response:
        if not data.COURSE_ID.match(course_id) or store.head(course_id) is None:
            return problem(404, "Unknown course", f"no course {course_id!r:.140}")
        svgs = {name: _diagram_svg(backend, name, course_id) for name in diagrams.NAMES}
        html = render_template(
            "course.html", course_id=course_id, svgs=svgs, diagram_css=diagrams.style_css()
        )
        return Response(html, 200, mimetype="text/html")

    @app.get("/courses/<course_id>/outputs/<name>")
    def output(course_id: str, name: str) -> Response:
        return _send_output(backend, course_id, name)

    @app.get("/courses/<course_id>/outputs/media/frames/<frame>")
    def frame(course_id: str, frame: str) -> Response:
        return _send_output(backend, course_id, f"media/frames/{frame}")

    @app.get("/diagrams/<name>.svg")
    def diagram(name: str) -> Response:
        if name not in diagrams.NAMES:
            return problem(404, "Unknown diagram", f"diagrams: {', '.join(diagrams.NAMES)}")
        course_id = request.args.get("course") or None
        if course_id is not None and (
            not data.COURSE_ID.match(course_id) or store.head(course_id) is None
        ):
            return problem(404, "Unknown course", f"no course {course_id!r:.140}")
        inline = request.args.get("inline") == "1"
        svg = _diagram_svg(backend, name, course_id, standalone=not inline)
        return Response(svg, 200, mimetype="image/svg+xml")


def _diagram_svg(
    backend: Backend, name: str, course_id: str | None, *, standalone: bool = False
) -> str:
    """The diagram, with the course's current states highlighted when a course is given."""
    marks: dict[str, str] = {}
    badges: dict[str, str] = {}
    if course_id is not None:
        detail = data.course_detail(backend.store, backend.artifacts_root, course_id)
        if detail is not None:
            marks = detail["highlight"].get(name, {})
            badges = detail["badges"].get(name, {})
    return diagrams.svg(diagrams.graph(name), marks, badges, standalone=standalone)


def _send_output(backend: Backend, course_id: str, name: str) -> Response:
    path = data.output_path(backend.artifacts_root, course_id, name)
    if path is None:
        return problem(404, "No such output", f"{course_id!r:.140}: {name!r:.200}")
    mimetype = {
        ".html": "text/html",
        ".json": "application/json",
        ".jpg": "image/jpeg",
        ".png": "image/png",
    }.get(path.suffix.lower(), "application/octet-stream")
    response = send_file(path, mimetype=mimetype, max_age=0)
    response.headers["Content-Security-Policy"] = OUTPUT_CSP
    return response
