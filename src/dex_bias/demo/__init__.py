"""Seeded synthetic faces named like UTKFace, with a known, planted bias.

``ensure_demo_faces(folder, DemoSettings(...))`` makes (or reuses) the demo set:
``{age}_{gender}_{race}_{stamp}.jpg`` files, 200 x 200 px by default, each a shaded face drawn
on a 68-point landmark template so that dlib's HOG frontal detector finds it, and a
``demo_manifest.json`` recording the settings. For race ``planted_race`` the visual age cues
are weakened by ``planted_strength`` (see :mod:`dex_bias.demo.generate`).
"""

from dex_bias.demo.generate import (
    MANIFEST_NAME,
    DemoFace,
    DemoFolderError,
    DemoSettings,
    age_cues,
    demo_labels,
    ensure_demo_faces,
    generate_demo_faces,
    plan_demo,
    read_manifest,
    render_demo_face,
)

__all__ = [
    "MANIFEST_NAME",
    "DemoFace",
    "DemoFolderError",
    "DemoSettings",
    "age_cues",
    "demo_labels",
    "ensure_demo_faces",
    "generate_demo_faces",
    "plan_demo",
    "read_manifest",
    "render_demo_face",
]
