"""`zhisuan data put | ls | show | replicate | share | rule | rm`: datasets in the centers' stores (Rucio's
datasets and replication rules; SkyPilot's storage, but placement weighs where the data is)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from zhisuan.cli.client import Token, Url, call, connect
from zhisuan.cli.common import console, fail

data_app = typer.Typer(help="Datasets: upload (put), list, show, replicate, share, rules, remove.",
                       no_args_is_help=True, rich_markup_mode=None)


def _size(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n:.0f} B"


def _files(path: Path) -> list[tuple[str, Path]]:
    """(path inside the dataset, local file): a file by its name, a folder's files by their relative path."""
    if path.is_file():
        return [(path.name, path)]
    out = [(p.relative_to(path).as_posix(), p) for p in sorted(path.rglob("*")) if p.is_file() and not p.is_symlink()]
    if not out:
        fail(f"{path}: no files to upload")
    return out


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@data_app.command("put")
def put(name: Annotated[str, typer.Argument(help="dataset name (letters, digits, . _ -)")],
        path: Annotated[Path, typer.Argument(help="a file or a folder")],
        center: Annotated[str, typer.Option("--center", "-c", help="the center whose store keeps it")],
        url: Url = None, token: Token = None) -> None:
    """Upload a dataset to a center's store: every file's MD5 is checked on arrival and again in the store;
    a failed upload is removed whole."""
    if not path.exists():
        fail(f"{path}: no such file or folder")
    files = _files(path)
    decl = [{"path": rel, "size": p.stat().st_size, "md5": _md5(p)} for rel, p in files]
    with connect(url, token) as client:
        made = call(client, "POST", "/v1/datasets", json={"name": name, "center": center, "files": decl})
        try:
            for rel, p in files:
                with p.open("rb") as f:
                    call(client, "PUT", f"/v1/datasets/{name}/files/{rel}", content=f)
            done = call(client, "POST", f"/v1/datasets/{name}/commit")
        except (SystemExit, KeyboardInterrupt):  # nothing half-written stays: the upload is removed whole
            client.request("DELETE", f"/v1/datasets/{name}")
            raise
    console.print(f"dataset {done['ref']}: {len(files)} file(s), {_size(done['size_bytes'])} at {made['home']}")


@data_app.command("ls")
def ls(url: Url = None, token: Token = None) -> None:
    """Your datasets and those shared with you."""
    with connect(url, token) as client:
        rows = call(client, "GET", "/v1/datasets")
    t = Table(title="datasets")
    for col in ["dataset", "state", "size", "files", "home", "shared with", "rule"]:
        t.add_column(col, justify="right" if col in ("size", "files") else "left")
    for d in rows:
        rule = d["rule"]
        t.add_row(d["ref"], d["state"], _size(d["size_bytes"]), str(d["files"]), d["home"],
                  ", ".join(d["shared_with"]) or "-",
                  f"{rule['copies']} copies {','.join(rule['regions'])}".strip() if rule["copies"] else "-")
    console.print(t)


@data_app.command("show")
def show(ref: Annotated[str, typer.Argument(help="NAME, or OWNER:NAME for one shared with you")],
         url: Url = None, token: Token = None) -> None:
    """A dataset's files and checksums, its replicas and their state, and its transfers."""
    with connect(url, token) as client:
        d = call(client, "GET", f"/v1/datasets/{ref}")
    console.print(f"dataset {d['ref']}: {d['state']}, {_size(d['size_bytes'])} in {d['files']} file(s), "
                  f"put at {d['home']}")
    replicas = Table(title="replicas")
    for col in ["center", "state", "size", "pinned", "last used"]:
        replicas.add_column(col)
    for r in d["replicas"]:
        replicas.add_row(r["center"], r["state"], _size(r["size_bytes"]), "yes" if r["pinned"] else "",
                         time.strftime("%Y-%m-%d %H:%M", time.localtime(r["last_used"])))
    console.print(replicas)
    if d["transfers"]:
        moves = Table(title="transfers")
        for col in ["id", "from", "to", "job", "state", "done", "rate", "¥", "error"]:
            moves.add_column(col)
        for x in d["transfers"]:
            moves.add_row(str(x["id"]), x["source"], x["target"], x["job"] or "-", x["state"],
                          f"{_size(x['bytes_done'])} / {_size(x['bytes_total'])}", f"{_size(x['rate'])}/s",
                          f"{x['cny']:,.2f}", (x["error"] or "")[:80])
        console.print(moves)
    files = Table(title="files")
    for col in ["path", "size", "md5"]:
        files.add_column(col)
    for f in d["file_list"]:
        files.add_row(f["path"], _size(f["size"]), f["md5"])
    console.print(files)


@data_app.command("replicate")
def replicate(name: Annotated[str, typer.Argument(help="your dataset")],
              to: Annotated[str, typer.Option("--to", help="the center to copy it to")],
              url: Url = None, token: Token = None) -> None:
    """Copy a dataset to another center's store now (you pay the transfer); `data show` follows it."""
    with connect(url, token) as client:
        x = call(client, "POST", f"/v1/datasets/{name}/replicas", json={"to": to})
    console.print(f"transfer {x['id']}: {name} from {x['source']} to {x['target']}, {_size(x['bytes_total'])}")


@data_app.command("share")
def share(name: Annotated[str, typer.Argument(help="your dataset")],
          tenants: Annotated[list[str], typer.Argument(help="tenants who may read it (none: nobody but you)")],
          url: Url = None, token: Token = None) -> None:
    """Let other tenants read a dataset (their jobs name it OWNER:NAME); they never see your other data."""
    with connect(url, token) as client:
        d = call(client, "PUT", f"/v1/datasets/{name}/sharing", json={"tenants": tenants})
    console.print(f"dataset {d['ref']}: shared with {', '.join(d['shared_with']) or 'nobody'}")


@data_app.command("rule")
def rule(name: Annotated[str, typer.Argument(help="your dataset")],
         copies: Annotated[int, typer.Option("--copies", min=1, max=64, help="replicas the network keeps")],
         regions: Annotated[list[str] | None, typer.Option("--region", help="one copy in this region (repeat)")] = None,
         url: Url = None, token: Token = None) -> None:
    """A replication rule (Rucio's sense): the network keeps COPIES replicas, one in each REGION first."""
    with connect(url, token) as client:
        call(client, "PUT", f"/v1/datasets/{name}/rule", json={"copies": copies, "regions": regions or []})
    console.print(f"dataset {name}: {copies} copies kept" + (f", in {', '.join(regions)}" if regions else ""))


@data_app.command("rm")
def rm(name: Annotated[str, typer.Argument(help="your dataset")], url: Url = None, token: Token = None) -> None:
    """Remove a dataset: gone for readers at once, its objects deleted from every store."""
    with connect(url, token) as client:
        call(client, "DELETE", f"/v1/datasets/{name}")
    console.print(f"dataset {name}: removed")
