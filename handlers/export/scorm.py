"""SCORM packages (1.2, and 2004 4th edition) of a finished course.

One SCO per lesson. A lesson is what the course's quizzes, timestamps and key frames are
built around, so one SCO each gives the LMS a completion, a score and a pass/fail per lesson
(gradebook rows, per-lesson reports, a learner resumes at the lesson they left), and keeps
every SCO small and stateless: it needs no bookmark (suspend data) to find its place. All
SCOs share one copy of the video, its captions and the scripts (an asset resource that
every SCO depends on); each plays its lesson's span of the video.

Layout inside the zip (everything relative, nothing fetched from the network):

    imsmanifest.xml
    lessons/<lesson id>.html       the SCOs
    shared/player.js, scorm.js, style.css
    media/video.mp4, media/captions.vtt, media/frames/<name>
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal
from xml.etree import ElementTree as ET

from handlers.export import page, webvtt
from handlers.export.page import e

Version = Literal["1.2", "2004"]
MASTERY = 80  # per cent of a lesson's questions to pass
Source = bytes | Path

NS_12 = {
    "": "http://www.imsproject.org/xsd/imscp_rootv1p1p2",
    "adlcp": "http://www.adlnet.org/xsd/adlcp_rootv1p2",
}
NS_2004 = {
    "": "http://www.imsglobal.org/xsd/imscp_v1p1",
    "adlcp": "http://www.adlnet.org/xsd/adlcp_v1p3",
    "adlseq": "http://www.adlnet.org/xsd/adlseq_v1p3",
    "adlnav": "http://www.adlnet.org/xsd/adlnav_v1p3",
    "imsss": "http://www.imsglobal.org/xsd/imsss",
}
XSI = "http://www.w3.org/2001/XMLSchema-instance"
LOCATIONS = {
    "1.2": {
        "": "imscp_rootv1p1p2.xsd",
        "adlcp": "adlcp_rootv1p2.xsd",
    },
    "2004": {
        "": "imscp_v1p1.xsd",
        "adlcp": "adlcp_v1p3.xsd",
        "adlseq": "adlseq_v1p3.xsd",
        "adlnav": "adlnav_v1p3.xsd",
        "imsss": "imsss_v1p0.xsd",
    },
}
VIDEO = "media/video.mp4"
CAPTIONS = "media/captions.vtt"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def frame_path(name: str) -> str:
    """Where a key frame goes in the package (a safe file name)."""
    return "media/frames/" + (_UNSAFE.sub("_", name).lstrip(".") or "frame")


def lessons(course: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(module, lesson) pairs in reading order."""
    return [(module, lesson) for module in course["modules"] for lesson in module["lessons"]]


def write_package(
    target: str | Path | IO[bytes],
    course: Mapping[str, Any],
    *,
    version: Version,
    video: Source | None,
    frames: Mapping[str, Source],
    mastery: int = MASTERY,
) -> None:
    """Write the zip. ``frames`` maps a key frame's name to its bytes or file; a frame without
    one is left out of its lesson."""
    files = _files(course, version, video is not None, frames, mastery)
    media = ([VIDEO] if video is not None else []) + [frame_path(name) for name in frames]
    listed = sorted({*files, *media})
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("imsmanifest.xml", manifest(course, version, listed, mastery))
        for name, data in files.items():
            archive.writestr(name, data)
        if video is not None:
            _store(archive, VIDEO, video)
        for name, source in frames.items():
            _store(archive, frame_path(name), source)


def _store(archive: zipfile.ZipFile, name: str, source: Source) -> None:
    """Media is compressed already: stored as is."""
    if isinstance(source, Path):
        archive.write(source, name, compress_type=zipfile.ZIP_STORED)
    else:
        archive.writestr(name, source, compress_type=zipfile.ZIP_STORED)


def _files(
    course: Mapping[str, Any],
    version: Version,
    has_video: bool,
    frames: Mapping[str, Source],
    mastery: int,
) -> dict[str, str]:
    files = {
        "shared/player.js": page.asset("player.js"),
        "shared/scorm.js": page.asset("scorm.js"),
        "shared/style.css": page.asset("style.css"),
        CAPTIONS: webvtt.render(webvtt.course_segments(course)),
    }
    for module, lesson in lessons(course):
        files[f"lessons/{lesson['id']}.html"] = sco_html(
            course, module, lesson, version, has_video, frames, mastery
        )
    return files


def sco_html(
    course: Mapping[str, Any],
    module: Mapping[str, Any],
    lesson: Mapping[str, Any],
    version: Version,
    has_video: bool,
    frames: Mapping[str, Source],
    mastery: int = MASTERY,
) -> str:
    """One lesson's page: it finds the LMS, plays the lesson's span, grades its quiz."""
    language = str(course.get("language") or "en")
    shown = [f for f in lesson.get("key_frames", ()) if f["name"] in frames]
    srcs = ["../" + frame_path(f["name"]) for f in shown]
    span = f"{page.clock(lesson['start'])} &ndash; {page.clock(lesson['end'])}"
    terms = "".join(f"<li>{e(term)}</li>" for term in lesson.get("key_terms", ()))
    player = (
        page.video_html(
            "../" + VIDEO,
            "../" + CAPTIONS,
            language,
            start=float(lesson["start"]),
            end=float(lesson["end"]),
        )
        if has_video
        else ""
    )
    csp = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "media-src 'self'; connect-src 'none'; form-action 'none'; base-uri 'none'"
    )
    parts = [
        "<!doctype html>",
        f'<html lang="{e(language)}" data-scorm="{version}" data-mastery="{mastery}">',
        '<head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(lesson['title'])} &middot; {e(course['title'])}</title>",
        '<link rel="stylesheet" href="../shared/style.css"></head>',
        '<body class="sco">',
        f'<header><p class="meta">{e(course["title"])} &middot; {e(module["title"])}</p>',
        f'<h1>{e(lesson["title"])}</h1><p class="time">{span}</p>',
        '<p id="lms-status" class="meta">Looking for the LMS&hellip;</p></header>',
        f'<main><article class="lesson" id="{e(lesson["id"])}">',
        player,
        f"<p>{e(lesson['summary'])}</p>" if lesson.get("summary") else "",
        f'<ul class="terms">{terms}</ul>' if terms else "",
        page.frames_html(shown, srcs),
        page.transcript_html(lesson.get("segments", ()), str(lesson.get("transcript", ""))),
        page.quiz_html(str(lesson["id"]), lesson.get("quiz", ())),
        "</article></main>",
        '<script src="../shared/player.js"></script>',
        '<script src="../shared/scorm.js"></script>',
        "</body></html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def manifest(
    course: Mapping[str, Any], version: Version, files: Sequence[str], mastery: int = MASTERY
) -> bytes:
    """imsmanifest.xml: metadata, one organisation (modules, lessons), the resources."""
    ns = NS_12 if version == "1.2" else NS_2004
    for prefix, uri in ns.items():
        ET.register_namespace(prefix, uri)

    def q(tag: str, prefix: str = "") -> str:
        return f"{{{ns[prefix]}}}{tag}"

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        prefix, _, local = tag.rpartition(":")
        child = ET.SubElement(parent, q(local, prefix), {_attr(k, ns): v for k, v in attrs.items()})
        if text is not None:
            child.text = text
        return child

    locations = " ".join(f"{ns[p]} {loc}" for p, loc in LOCATIONS[version].items())
    root = ET.Element(
        q("manifest"),
        {
            "identifier": "coursegen-" + _ncname(str(course["course_id"])),
            "version": "1",
            f"{{{XSI}}}schemaLocation": locations,
        },
    )
    meta = sub(root, "metadata")
    sub(meta, "schema", "ADL SCORM")
    sub(meta, "schemaversion", "1.2" if version == "1.2" else "2004 4th Edition")
    # No IMS metadata (LOM) record: the published IMS MD 1.2.1 XSD is not deterministic
    # (libxml2 rejects it), and SCORM 2004 4th edition ships no LOM XSD; the organisation,
    # item titles and the pages carry the course's titles.
    organizations = sub(root, "organizations", default="org")
    organization = sub(organizations, "organization", identifier="org")
    sub(organization, "title", str(course["title"]))
    for m, module in enumerate(course["modules"], start=1):
        group = sub(organization, "item", identifier=f"item-m{m}")
        sub(group, "title", str(module["title"]))
        for lesson in module["lessons"]:
            lid = _ncname(str(lesson["id"]))
            item = sub(group, "item", identifier=f"item-{lid}", identifierref=f"res-{lid}")
            sub(item, "title", str(lesson["title"]))
            if version == "1.2":
                sub(item, "adlcp:masteryscore", str(mastery))
            else:
                seq = sub(item, "imsss:sequencing")
                objectives = sub(seq, "imsss:objectives")
                primary = sub(
                    objectives,
                    "imsss:primaryObjective",
                    objectiveID=f"{lid}-mastery",
                    satisfiedByMeasure="true",
                )
                sub(primary, "imsss:minNormalizedMeasure", f"{mastery / 100:.2f}")
    if version == "2004":
        seq = sub(organization, "imsss:sequencing")
        sub(seq, "imsss:controlMode", choice="true", flow="true")
    resources = sub(root, "resources")
    scorm_type = "adlcp:scormtype" if version == "1.2" else "adlcp:scormType"
    for _, lesson in lessons(course):
        lid = _ncname(str(lesson["id"]))
        href = f"lessons/{lesson['id']}.html"
        resource = sub(
            resources,
            "resource",
            identifier=f"res-{lid}",
            type="webcontent",
            href=href,
            **{scorm_type: "sco"},
        )
        sub(resource, "file", href=href)
        sub(resource, "dependency", identifierref="shared")
    shared = sub(resources, "resource", identifier="shared", type="webcontent")
    shared.set(_attr(scorm_type, ns), "asset")
    for name in files:
        if not name.startswith("lessons/"):
            sub(shared, "file", href=name)
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body + b"\n"


def _attr(name: str, ns: Mapping[str, str]) -> str:
    prefix, _, local = name.rpartition(":")
    return f"{{{ns[prefix]}}}{local}" if prefix else local


def _ncname(value: str) -> str:
    """An xsd:ID-safe form of an id (letters, digits, - . _; not starting with a digit)."""
    safe = _UNSAFE.sub("_", value)
    return safe if safe[:1].isalpha() or safe[:1] == "_" else "_" + safe
