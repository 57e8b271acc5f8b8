"""`swapdrop face add|list|rm`: the stack's faces (faces/<name>.<ext>), through the jobs API."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from swapdrop.layout import IMAGE_EXTENSIONS, face_name_problem, printable

from swapdrop_cli.api import ApiError
from swapdrop_cli.errors import CliError, ExitCode

FACE_HELP = "add, list and remove the faces swaps use"
FACE_EXAMPLES = """\
Examples:
  swapdrop face add alice ~/photos/alice.jpg
  swapdrop face list
  swapdrop face rm alice"""
ADD_EXAMPLES = """\
Examples:
  swapdrop face add alice ~/photos/alice.jpg
  swapdrop --local face add grace grace.png --json
  swapdrop face add alice alice.png --replace

The name becomes faces/<name>.<ext> in the bucket and the FACE of `swapdrop swap`. Adding a face
that exists replaces its image when the type is the same; a face saved as another type (alice.png
for an alice.jpg) needs --replace. The image is a JPEG, PNG or WebP file (checked by its content)."""
LIST_EXAMPLES = """\
Examples:
  swapdrop face list
  swapdrop face list --json | jq -r .face"""
RM_EXAMPLES = """\
Examples:
  swapdrop face rm alice

Jobs already started with the face keep it; new swaps with it are refused."""

_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


def register(subparsers: Any) -> None:
    face = subparsers.add_parser("face", help=FACE_HELP, epilog=FACE_EXAMPLES)
    actions = subparsers.add_subparsers(face, dest="face_command", title="face commands")
    add = actions.add_parser("add", help="add (or replace) a face from an image file", epilog=ADD_EXAMPLES)
    add.add_argument("name", metavar="NAME", help="the face's name (one folder name: no '/')")
    add.add_argument("image", metavar="IMAGE", type=Path, help="a JPEG, PNG or WebP file")
    add.add_argument("--replace", action="store_true", help="replace the face even if saved as another image type")
    add.set_defaults(func=run_add)
    listing = actions.add_parser("list", help="list the faces", epilog=LIST_EXAMPLES)
    listing.set_defaults(func=run_list)
    remove = actions.add_parser("rm", help="delete a face", epilog=RM_EXAMPLES)
    remove.add_argument("name", metavar="NAME")
    remove.set_defaults(func=run_rm)


def image_type(path: Path) -> str:
    """The image's MIME type from its first bytes, or a CliError(USAGE) a person can act on."""
    if not path.exists():
        raise CliError(f"no such file: {path}", ExitCode.USAGE)
    if not path.is_file():
        raise CliError(f"{path} is not a file", ExitCode.USAGE)
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}", ExitCode.USAGE) from None
    for magic, content_type in _MAGIC:
        if head.startswith(magic):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    allowed = ", ".join(f".{ext}" for ext in IMAGE_EXTENSIONS)
    raise CliError(f"{path} is not a JPEG, PNG or WebP image ({allowed})", ExitCode.USAGE)


def check_face_name(name: str) -> None:
    problem = face_name_problem(name)
    if problem:
        raise CliError(problem, ExitCode.USAGE)


def run_add(args: argparse.Namespace, ctx: Any) -> int:
    check_face_name(args.name)
    content_type = image_type(args.image)
    try:
        answer = ctx.api.put_face(args.name, content_type)
    except ApiError as error:
        if error.code != "face_conflict":
            raise
        if not args.replace:
            raise CliError(
                f"face '{printable(args.name)}' exists as another image type",
                ExitCode.USAGE,
                hint=f"swapdrop face add {args.name} {args.image} --replace (or swapdrop face rm {args.name} first)",
            ) from None
        ctx.api.delete_face(args.name)
        answer = ctx.api.put_face(args.name, content_type)
    form = answer["upload"]
    size = args.image.stat().st_size
    max_bytes = int(form.get("maxBytes") or 0)
    if max_bytes and size > max_bytes:
        raise CliError(f"{args.image} is {size:,} bytes, over the stack's limit of {max_bytes:,}", ExitCode.USAGE)
    ctx.api.upload(form, args.image, content_type)
    record = {"face": answer["face"], "key": answer["key"], "bytes": size, "contentType": content_type}
    ctx.output.emit(record)
    ctx.output.line(f"added face '{printable(answer['face'])}' ({answer['key']}, {size:,} bytes)")
    return 0


def run_list(args: argparse.Namespace, ctx: Any) -> int:
    faces = list(ctx.api.list_faces())
    for face in faces:
        ctx.output.emit(face)
    ctx.output.table(
        ("FACE", "BYTES", "LAST MODIFIED", "KEY"),
        [(printable(f["face"]), f"{f['bytes']:,}", f.get("lastModified", ""), printable(f["key"])) for f in faces],
        empty=f"no faces in {ctx.target.description} yet: swapdrop face add NAME IMAGE",
    )
    return 0


def run_rm(args: argparse.Namespace, ctx: Any) -> int:
    check_face_name(args.name)
    ctx.api.delete_face(args.name)
    ctx.output.emit({"face": args.name, "deleted": True})
    ctx.output.line(f"deleted face '{printable(args.name)}'")
    return 0
