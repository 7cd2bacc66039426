"""What the export tests share: a course with hostile and multilingual text, a short real
video, and validation of a SCORM manifest against the shipped XSDs (schemas/scorm/)."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
XSD = ROOT / "schemas" / "scorm"
HOSTILE = "<script>alert(1)</script>"
UNICODE = "Ünïcødé 🎉👩🏽‍🔬 שלום עולם 日本語の講義"

# The xml: namespace (xml:lang) comes first from the W3C's own xml.xsd: the SCORM 1.2 copy,
# ims_xml.xsd, binds it as the default namespace, which libxml2 (rightly) refuses to parse;
# imported first, the namespace is known and libxml2 skips the later import of ims_xml.xsd.
XML_NS = {"http://www.w3.org/XML/1998/namespace": "scorm2004_4th/xml.xsd"}
SCHEMAS = {
    "1.2": {
        **XML_NS,
        "http://www.imsproject.org/xsd/imscp_rootv1p1p2": "scorm12/imscp_rootv1p1p2.xsd",
        "http://www.adlnet.org/xsd/adlcp_rootv1p2": "scorm12/adlcp_rootv1p2.xsd",
    },
    "2004": {
        **XML_NS,
        "http://www.imsglobal.org/xsd/imscp_v1p1": "scorm2004_4th/imscp_v1p1.xsd",
        "http://www.adlnet.org/xsd/adlcp_v1p3": "scorm2004_4th/adlcp_v1p3.xsd",
        "http://www.adlnet.org/xsd/adlseq_v1p3": "scorm2004_4th/adlseq_v1p3.xsd",
        "http://www.adlnet.org/xsd/adlnav_v1p3": "scorm2004_4th/adlnav_v1p3.xsd",
        "http://www.imsglobal.org/xsd/imsss": "scorm2004_4th/imsss_v1p0.xsd",
    },
}


def schema_for(version: str) -> Any:
    """One lxml XMLSchema importing every namespace of the edition from the local files."""
    from lxml import etree

    imports = "".join(
        f'<xs:import namespace="{ns}" schemaLocation="{(XSD / path).as_uri()}"/>'
        for ns, path in SCHEMAS[version].items()
    )
    wrapper = f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">{imports}</xs:schema>'
    parser = etree.XMLParser(no_network=True, load_dtd=True, resolve_entities=False)
    return etree.XMLSchema(etree.fromstring(wrapper.encode(), parser, base_url=str(XSD) + "/"))


def question(answer: str, kind: str = "multiple_choice", prompt: str = "") -> dict[str, Any]:
    return {
        "kind": kind,
        "prompt": prompt or f"Which is {answer}?",
        "choices": [answer, "other", "neither"] if kind == "multiple_choice" else [],
        "answer": answer,
        "explanation": f"The lesson says {answer}.",
    }


def course(duration: float = 12.0, title: str = "Rivers: a short course") -> dict[str, Any]:
    """Two modules, three lessons of 4 s over a 12 s video, two questions each."""

    def lesson(n: str, name: str, start: float, term: str) -> dict[str, Any]:
        end = start + 4.0
        return {
            "id": n,
            "title": name,
            "start": start,
            "end": end,
            "summary": f"About {name}.",
            "transcript": f"{name} one. {name} two.",
            "segments": [
                {"start": start, "end": start + 2.0, "text": f"{name} one."},
                {"start": start + 2.0, "end": end, "text": f"{name} two."},
            ],
            "key_terms": [term],
            "key_frames": [
                {"name": f"frame_{n}.jpg", "t": start + 1.0, "ref": f"file:///x/{n}.jpg"}
            ],
            "quiz": [
                question(term),
                question(term, "cloze", f"Fill in the blank: the _____ of {name}."),
            ],
        }

    return {
        "course_id": "c-export-1",
        "title": title,
        "language": "en",
        "summary": "Water moves land.",
        "source": {"video_uri": "/tmp/lecture.mp4", "duration_s": duration},
        "modules": [
            {
                "title": "Erosion",
                "lessons": [
                    lesson("m1-l1", "Valleys", 0.0, "valley"),
                    lesson("m1-l2", "Meanders", 4.0, "meander"),
                ],
            },
            {"title": "Deposits", "lessons": [lesson("m2-l1", "Deltas", 8.0, "delta")]},
        ],
        "generated_by": {"coursegen": "0.1.0"},
    }


def hostile(base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Markup and any Unicode in every text the formats carry."""
    c = copy.deepcopy(base or course())
    c["title"] = f"{HOSTILE} {UNICODE}"
    c["summary"] = HOSTILE
    for module in c["modules"]:
        module["title"] = f"{HOSTILE} {UNICODE}"
        for lesson in module["lessons"]:
            lesson["title"] = f"{lesson['title']} {HOSTILE} {UNICODE}"
            lesson["key_terms"] = [HOSTILE]
            for segment in lesson["segments"]:
                segment["text"] = f"{segment['text']} {HOSTILE} {UNICODE}"
            lesson["transcript"] = " ".join(s["text"] for s in lesson["segments"])
            mc, cloze = lesson["quiz"]
            mc["prompt"] = f"{HOSTILE} {UNICODE} {{braces}} = # ~ : \\ ?"
            mc["choices"] = [f"{UNICODE} {HOSTILE}", "other", "neither"]
            mc["answer"] = mc["choices"][0]
            mc["explanation"] = f"{HOSTILE} {UNICODE}"
            cloze["prompt"] = f"Fill in the blank: {HOSTILE} _____ {UNICODE}."
            cloze["answer"] = "日本語"
    return c


def make_video(path: Path, seconds: float = 12.0) -> Path:
    """A real H.264/AAC mp4 (a test pattern and a tone) from the bundled ffmpeg."""
    import imageio_ffmpeg

    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc=size=320x180:rate=10:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
            "-movflags", "+faststart", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def make_frame(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (160, 90), (40, 90, 160)).save(path, "JPEG")
    return path
